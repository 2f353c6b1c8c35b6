package sip

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
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

// FuzzSDP feeds the bridge's SDP readers (parseAudio, parseSDES and the
// a=crypto lines in them): no input panics; every crypto line taken
// prints and parses back to itself; the bridge's answer to an SRTP offer
// reads back with its key under the phone's tag.
func FuzzSDP(f *testing.F) {
	for _, seed := range []string{
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/48000\r\n",
		"v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0 8 111\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:111 opus/48000/2\r\n" +
			"a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31\r\n" +
			"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4\r\n" +
			"a=crypto:3 AEAD_AES_128_GCM inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3OA\r\n",
		"v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 0 RTP/SAVPF 111\r\nm=audio 9 RTP/SAVPF 111\r\na=crypto:9 F8_128_HMAC_SHA1_80 inline:x\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if a, err := parseAudio(data); err == nil && a.addr == nil {
			t.Fatal("audio stream without an address accepted")
		}
		o, err := parseSDES(data)
		if err != nil {
			return
		}
		for _, c := range o.cryptos {
			back, err := parseCrypto(c.String())
			if err != nil || back.tag != c.tag || back.suite != c.suite || !bytes.Equal(back.keySalt, c.keySalt) {
				t.Fatalf("crypto line %q does not read back: %+v, %v", c.String(), back, err)
			}
			if _, ok := suiteProfile(c.suite); !ok {
				t.Fatalf("unknown suite %q taken", c.suite)
			}
		}
		remote, ok := o.choose()
		if !ok {
			if o.savp() {
				t.Fatal("RTP/SAVP taken without a crypto line")
			}
			return
		}
		ours := newCrypto(remote.tag, remote.suite)
		if _, err := newSRTPLeg(ours, remote); err != nil {
			t.Fatalf("SRTP with the chosen line %q: %v", remote.String(), err)
		}
		answer := withSDES(opusAnswer(), "RTP/SAVP", ours)
		back, err := parseSDES(answer)
		if err != nil {
			t.Fatalf("our answer does not parse: %v", err)
		}
		if c, ok := back.answered(ours); !ok || !bytes.Equal(c.keySalt, ours.keySalt) {
			t.Fatalf("our answer %q lost the key", answer)
		}
	})
}

// FuzzDigest feeds the digest check of REGISTER and INVITE: made-up
// credentials never verify, whatever they say; credentials computed for
// a challenge of ours verify when they parse back unchanged (format,
// parse and check agree); the digest uri check never panics.
func FuzzDigest(f *testing.F) {
	f.Add(`Digest username="alice", realm="irmv", nonce="AAAA", uri="sip:bob@127.0.0.1", response="00", algorithm=MD5, cnonce="x", qop=auth, nc=00000001`, "0a4f113b", uint32(1), "sip:bob@127.0.0.1:5060")
	f.Add(`Digest username="alice",realm="irmv",nonce="x",uri="sip:127.0.0.1",response="0",algorithm=SHA-256`, `a"b`, uint32(0), "sips:[::1]")
	f.Add("Basic YWxpY2U6cHc=", "", uint32(7), "")
	s := &Server{nonces: newNonces(), users: &users{realm: DefaultRealm, byU: map[string]User{
		"alice": {User: "alice", Realm: DefaultRealm, HA1MD5: ha1(md5.New(), "alice", DefaultRealm, "pw"),
			HA1SHA256: ha1(sha256.New(), "alice", DefaultRealm, "pw")},
	}}}
	ruri := sip.Uri{User: "bob", Host: "127.0.0.1", Port: 5060}
	f.Fuzz(func(t *testing.T, header, cnonce string, nc uint32, uri string) {
		now := time.Now()
		if _, err := s.verify(header, "INVITE", "alice", now); err == nil {
			t.Fatalf("made-up credentials %q verified", header)
		}
		sameTarget(uri, ruri)
		if cnonce == "" || nc == 0 {
			return
		}
		for _, c := range s.nonces.challenges(DefaultRealm, []string{"SHA-256", "MD5"}, now, false) {
			ch, err := digest.ParseChallenge(c)
			if err != nil {
				t.Fatalf("our challenge %q does not parse: %v", c, err)
			}
			cred, err := digest.Digest(ch, digest.Options{Method: "INVITE", URI: ruri.String(), Username: "alice", Password: "pw",
				Cnonce: cnonce, Count: int(nc)})
			if err != nil {
				return
			}
			back, err := digest.ParseCredentials(cred.String())
			if err != nil || back.Cnonce != cnonce || back.Nc != int(nc) {
				return // the cnonce does not survive quoting: not a credential a phone could send
			}
			if _, err := s.verify(cred.String(), "INVITE", "alice", now); err != nil {
				t.Fatalf("our own %s credentials %q: %v", ch.Algorithm, cred.String(), err)
			}
			if _, err := s.verify(cred.String(), "REGISTER", "alice", now); err == nil {
				t.Fatal("INVITE credentials verified for a REGISTER")
			}
		}
	})
}
