package sip

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// inviteReq is an INVITE from user to target at the server, offering Opus.
func (e *testEnv) inviteReq(user, target string, seq int) *sip.Request {
	port := e.s.Addr().(*net.UDPAddr).Port
	req := sip.NewRequest(sip.INVITE, sip.Uri{User: target, Host: "127.0.0.1", Port: port})
	req.AppendHeader(sip.NewHeader("From", "<sip:"+user+"@127.0.0.1>;tag=f"+user))
	req.AppendHeader(sip.NewHeader("To", "<sip:"+target+"@127.0.0.1>"))
	req.AppendHeader(sip.NewHeader("Call-ID", "call-"+user+"-"+target))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: uint32(seq), MethodName: sip.INVITE})
	req.AppendHeader(sip.NewHeader("Contact", "<sip:"+user+"@127.0.0.1:5099>"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n"))
	return req
}

// answer is the digest answer to the challenge of res (the algorithm
// alg) for an INVITE to uri.
func answer(t *testing.T, res *sip.Response, alg, uri, user, pass string) string {
	t.Helper()
	for _, h := range res.GetHeaders("Proxy-Authenticate") {
		ch, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatal(err)
		}
		if ch.Algorithm != alg {
			continue
		}
		cred, err := digest.Digest(ch, digest.Options{Method: "INVITE", URI: uri, Username: user, Password: pass, Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	t.Fatalf("no %s challenge in %d %s", alg, res.StatusCode, res.Reason)
	return ""
}

func TestInviteDigest(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Algorithms = []string{"SHA-256", "MD5"} })
	e.addUser("alice", "s3cret", "", "")
	e.addUser("carol", "pw-carol", "", "") // never registers
	c := newClient(t)
	if res := registerAuth(t, c, e.registerReq("alice", "", "udp", 300), "alice", "s3cret"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	count := func(result string) float64 { return testutil.ToFloat64(e.s.m.invites.WithLabelValues(result)) }
	seq := 0
	invite := func(user, target, header, value string) *sip.Response {
		t.Helper()
		seq++
		req := e.inviteReq(user, target, seq)
		if header != "" {
			req.AppendHeader(sip.NewHeader(header, value))
		}
		return do(t, c, req)
	}

	// No credentials: a 407 with both algorithms, nothing else.
	chal := invite("alice", "bob", "", "")
	if chal.StatusCode != 407 || len(chal.GetHeaders("Proxy-Authenticate")) != 2 || count("challenged") != 1 {
		t.Fatalf("INVITE without credentials: %d with %d challenges (challenged %v), want 407 with 2",
			chal.StatusCode, len(chal.GetHeaders("Proxy-Authenticate")), count("challenged"))
	}
	uri := e.inviteReq("alice", "bob", 0).Recipient.String()

	// The right answer (SHA-256) is let through: 501 here, as this server
	// has no call switch; with one the call is placed.
	good := answer(t, chal, "SHA-256", uri, "alice", "s3cret")
	if res := invite("alice", "bob", "Proxy-Authorization", good); res.StatusCode != 501 || count("authorized") != 1 {
		t.Fatalf("authenticated INVITE: %d %s (authorized %v), want 501 and 1", res.StatusCode, res.Reason, count("authorized"))
	}
	// The same answer again is a replay: a new challenge, stale.
	res := invite("alice", "bob", "Proxy-Authorization", good)
	if res.StatusCode != 407 {
		t.Fatalf("replayed INVITE: %d %s, want 407", res.StatusCode, res.Reason)
	}
	if ch, err := digest.ParseChallenge(res.GetHeader("Proxy-Authenticate").Value()); err != nil || !ch.Stale {
		t.Fatalf("replay challenge %q: want stale=true", res.GetHeader("Proxy-Authenticate").Value())
	}
	// An answer to a 401 (Authorization, MD5) works as well.
	if res := invite("alice", "bob", "Authorization", answer(t, res, "MD5", uri, "alice", "s3cret")); res.StatusCode != 501 {
		t.Fatalf("INVITE with Authorization: %d %s, want 501", res.StatusCode, res.Reason)
	}

	forbidden := count("forbidden")
	for _, tc := range []struct {
		name, from, target, user, pass string
	}{
		{"wrong password", "alice", "bob", "alice", "wrong"},
		{"unknown user", "mallory", "bob", "mallory", "s3cret"},
		{"known user, not registered", "carol", "bob", "carol", "pw-carol"},
		{"From another user than the credentials", "alice", "bob", "carol", "pw-carol"},
		{"credentials for another callee", "alice", "dave", "alice", "s3cret"},
	} {
		ch := invite(tc.from, tc.target, "", "")
		if ch.StatusCode != 407 {
			t.Fatalf("%s: first INVITE %d, want 407", tc.name, ch.StatusCode)
		}
		ans := answer(t, ch, "MD5", uri, tc.user, tc.pass) // uri names bob
		if res := invite(tc.from, tc.target, "Proxy-Authorization", ans); res.StatusCode != 403 {
			t.Errorf("%s: %d %s, want 403", tc.name, res.StatusCode, res.Reason)
		}
	}
	if got := count("forbidden") - forbidden; got != 5 {
		t.Errorf("forbidden counted %v times, want 5", got)
	}
	if res := invite("alice", "bob", "Proxy-Authorization", `Digest username="alice", nonce=`); res.StatusCode != 400 {
		t.Errorf("malformed credentials: %d, want 400", res.StatusCode)
	}
	if n := len(e.s.calls); n != 0 {
		t.Errorf("%d bridged calls, want none", n)
	}
}

// From a trusted network a registered phone calls without credentials,
// from the address it registered from; other users are refused.
func TestInviteOpenNet(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.OpenNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	c := newClient(t)
	if res := do(t, c, e.registerReq("alice", "", "udp", 300)); res.StatusCode != 200 {
		t.Fatalf("open REGISTER: %d", res.StatusCode)
	}
	if res := do(t, c, e.inviteReq("alice", "bob", 1)); res.StatusCode != 501 {
		t.Fatalf("INVITE from a trusted network: %d %s, want 501 (no call switch here)", res.StatusCode, res.Reason)
	}
	if res := do(t, c, e.inviteReq("eve", "bob", 1)); res.StatusCode != 403 {
		t.Fatalf("INVITE from an unregistered user: %d %s, want 403", res.StatusCode, res.Reason)
	}
	if got := testutil.ToFloat64(e.s.m.invites.WithLabelValues("trusted")); got != 1 {
		t.Fatalf("trusted %v, want 1", got)
	}
}

// INVITEs count against a source's rate like every request: a flood is
// dropped before parsing; only the burst is challenged.
func TestInviteRateLimited(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Rate = 5 })
	conn, err := net.Dial("udp", e.s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	start := time.Now()
	const n = 100
	for i := range n {
		fmt.Fprintf(conn, "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-%d;rport\r\n"+
			"From: <sip:alice@127.0.0.1>;tag=%d\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: flood-%d\r\nCSeq: 1 INVITE\r\n"+
			"Contact: <sip:alice@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", local, i, i, i, local)
	}
	dropped := func() float64 { return testutil.ToFloat64(e.s.m.dropped.WithLabelValues("rate")) }
	challenged := func() float64 { return testutil.ToFloat64(e.s.m.invites.WithLabelValues("challenged")) }
	deadline := time.Now().Add(20 * time.Second)
	for dropped()+challenged() < n {
		if time.Now().After(deadline) {
			t.Fatalf("of %d INVITEs %v dropped, %v challenged", n, dropped(), challenged())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if most := 2*5 + 1 + 5*time.Since(start).Seconds() + 1; challenged() > most {
		t.Fatalf("%v INVITEs challenged, want at most the burst and the refill (%.0f)", challenged(), most)
	}
}
