package sip

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// FuzzRegister feeds the registrar's parsing entry points: sipgo's
// message parser, parseRegister and the digest check of Authorization.
func FuzzRegister(f *testing.F) {
	for _, seed := range []string{
		"REGISTER sip:127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK8d347b4479276a2d;rport\r\n" +
			"Contact: <sip:alice-0x56071830ca60@127.0.0.1:15060>;expires=300\r\nMax-Forwards: 70\r\nTo: <sip:alice@127.0.0.1:5070>\r\n" +
			"From: \"Alice Example\" <sip:alice@127.0.0.1:5070>;tag=fdf70dd9206461ec\r\nCall-ID: a9e46086bd896e71\r\nCSeq: 40032 REGISTER\r\n" +
			"User-Agent: baresip v1.0.0 (x86_64/linux)\r\nContent-Length: 0\r\n\r\n",
		"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1;rport\r\nFrom: <sip:alice@127.0.0.1>;tag=1\r\n" +
			"To: <sip:alice@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\n" +
			"Authorization: Digest username=\"alice\", realm=\"irmv\", nonce=\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", uri=\"sip:127.0.0.1\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, cnonce=\"x\", qop=auth, nc=00000001\r\nContent-Length: 0\r\n\r\n",
		"OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	s := &Server{nonces: newNonces(), users: &users{realm: DefaultRealm, byU: map[string]User{
		"alice": {User: "alice", Realm: DefaultRealm, HA1MD5: "00", HA1SHA256: "00"},
	}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := sip.ParseMessage(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		r, err := parseRegister(req)
		if err != nil {
			return
		}
		if r.wildcard && r.expires != 0 {
			t.Fatalf("wildcard accepted with expires %s", r.expires)
		}
		if h := req.GetHeader("Authorization"); h != nil {
			if _, err := s.verify(h.Value(), string(req.Method), r.aor, time.Now()); err == nil {
				t.Fatal("made-up credentials verified")
			}
		}
	})
}
