package sip

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/share"
)

// testEnv is a registrar on loopback over a real register of terminals.
type testEnv struct {
	t    *testing.T
	dir  string
	reg  *share.Registry
	norm *ident.Normalizer
	s    *Server
	opts Options
}

func newTestEnv(t *testing.T, mod ...func(*Options)) *testEnv {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := ident.NewNormalizer("DE")
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, dir: t.TempDir(), norm: norm}
	e.reg, err = share.Open(share.Options{Path: filepath.Join(e.dir, "share.db"), NodeKey: key, Normalizer: norm})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "e.reg", e.reg)
	e.opts = Options{Addr: "127.0.0.1:0", DBPath: filepath.Join(e.dir, "sip.db"), Directory: e.reg, Normalizer: norm}
	for _, m := range mod {
		m(&e.opts)
	}
	e.start()
	return e
}

func (e *testEnv) start() {
	e.t.Helper()
	e.opts.Registerer = prometheus.NewRegistry()
	s, err := New(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.s = s
	testenv.Close(e.t, "s", s)
}

func (e *testEnv) addUser(user, pass, name, phone string) {
	e.t.Helper()
	if _, err := e.s.AddUser(client.SIPUser{User: user, Password: pass, Name: name, Phone: phone}); err != nil {
		e.t.Fatal(err)
	}
}

// client is a SIP user agent on loopback.
func newClient(t *testing.T) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ua.Close() })
	return c
}

func (e *testEnv) registerReq(user, display, transport string, expires int) *sip.Request {
	addr := e.s.Addr().(*net.UDPAddr)
	recipient := sip.Uri{Host: "127.0.0.1", Port: addr.Port}
	if transport == "tcp" {
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", "tcp")
	}
	req := sip.NewRequest(sip.REGISTER, recipient)
	aor := "<sip:" + user + "@127.0.0.1>"
	if display != "" {
		aor = `"` + display + `" ` + aor
	}
	req.AppendHeader(sip.NewHeader("To", aor))
	req.AppendHeader(sip.NewHeader("From", aor+";tag=t1"))
	req.AppendHeader(sip.NewHeader("Contact", "<sip:"+user+"@127.0.0.1:5099>"))
	if expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	}
	return req
}

func do(t *testing.T, c *sipgo.Client, req *sip.Request) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// registerAuth registers with digest auth (the first challenge: SHA-256).
func registerAuth(t *testing.T, c *sipgo.Client, req *sip.Request, user, pass string) *sip.Response {
	t.Helper()
	res := do(t, c, req)
	if res.StatusCode != 401 {
		t.Fatalf("first REGISTER: %d %s, want 401", res.StatusCode, res.Reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pass})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *testEnv) terminalByUID(uid string) (client.Terminal, bool) {
	for _, term := range e.reg.List() {
		if term.Identifiers.UID == uid {
			return term, true
		}
	}
	return client.Terminal{}, false
}

func TestRegisterDigest(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Algorithms = []string{"SHA-256", "MD5"} })
	e.addUser("alice", "s3cret", "", "")
	e.addUser("4930123456", "pw", "Desk 7", "")
	c := newClient(t)

	// The challenge: SHA-256 first, then MD5.
	res := do(t, c, e.registerReq("alice", "Alice Example", "udp", 300))
	chals := res.GetHeaders("WWW-Authenticate")
	if res.StatusCode != 401 || len(chals) != 2 {
		t.Fatalf("got %d with %d challenges, want 401 with 2", res.StatusCode, len(chals))
	}
	for i, alg := range []string{"SHA-256", "MD5"} {
		ch, err := digest.ParseChallenge(chals[i].Value())
		if err != nil || ch.Algorithm != alg || ch.Realm != DefaultRealm || !ch.SupportsQOP("auth") {
			t.Fatalf("challenge %d = %q (%v), want %s", i, chals[i].Value(), err, alg)
		}
	}

	res = registerAuth(t, c, e.registerReq("alice", "Alice Example", "udp", 300), "alice", "s3cret")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	// Over UDP the expiry is capped.
	if ct := res.GetHeader("Contact"); ct == nil || !strings.Contains(ct.Value(), "expires=120") {
		t.Fatalf("Contact in 200: %v, want expires=120", ct)
	}
	term, ok := e.terminalByUID("alice")
	if !ok || term.Identifiers.Name != "Alice Example" || term.Address != "127.0.0.1" || term.Status.String() != "online" {
		t.Fatalf("terminal %+v (found %t)", term, ok)
	}

	// MD5, by hand, over TCP; a number as user part is the phone number,
	// the operator's name wins over the display name.
	req := e.registerReq("4930123456", "Someone", "tcp", 600)
	res = do(t, c, req)
	ch, err := digest.ParseChallenge(res.GetHeaders("WWW-Authenticate")[1].Value())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(), Username: "4930123456", Password: "pw"})
	if err != nil || cred.Algorithm != "MD5" {
		t.Fatal(err, cred)
	}
	req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	req.CSeq().SeqNo++
	req.RemoveHeader("Via")
	res = do(t, c, req)
	if res.StatusCode != 200 || !strings.Contains(res.GetHeader("Contact").Value(), "expires=600") {
		t.Fatalf("MD5 REGISTER over TCP: %d %s %v", res.StatusCode, res.Reason, res.GetHeader("Contact"))
	}
	term, ok = e.terminalByUID("4930123456")
	if !ok || term.Identifiers.Phone != "+4930123456" || term.Identifiers.Name != "Desk 7" {
		t.Fatalf("terminal %+v (found %t)", term, ok)
	}
	if b := e.s.Bindings(); len(b) != 2 {
		t.Fatalf("%d bindings, want 2", len(b))
	}

	// Durable: a restarted server still has the bindings.
	e.s.Close()
	e.start()
	if b := e.s.Bindings(); len(b) != 2 {
		t.Fatalf("%d bindings after restart, want 2", len(b))
	}

	// Expires: 0 removes the binding and the terminal.
	c2 := newClient(t)
	res = registerAuth(t, c2, e.registerReq("alice", "", "udp", 0), "alice", "s3cret")
	if res.StatusCode != 200 {
		t.Fatalf("unREGISTER: %d", res.StatusCode)
	}
	if _, ok := e.terminalByUID("alice"); ok {
		t.Fatal("alice still registered after Expires: 0")
	}
	if b := e.s.Bindings(); len(b) != 1 {
		t.Fatalf("%d bindings, want 1", len(b))
	}
}

func TestRegisterRefused(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("alice", "s3cret", "", "")
	e.addUser("bob", "bobpw", "", "")
	for _, tc := range []struct {
		name, aor, user, pass string
		expires, want         int
	}{
		{"wrong password", "alice", "alice", "wrong", 300, 403},
		{"unknown user", "carol", "carol", "x", 300, 403},
		{"another AOR", "alice", "bob", "bobpw", 300, 403},
		{"too brief", "alice", "alice", "s3cret", 30, 423},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := registerAuth(t, newClient(t), e.registerReq(tc.aor, "", "udp", tc.expires), tc.user, tc.pass)
			if res.StatusCode != tc.want {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tc.want)
			}
			if tc.want == 423 && res.GetHeader("Min-Expires") == nil {
				t.Fatal("423 without Min-Expires")
			}
		})
	}
	if n := e.reg.Count(); n != 0 {
		t.Fatalf("%d terminals registered, want none", n)
	}
	if b := e.s.Bindings(); len(b) != 0 {
		t.Fatalf("bindings %+v, want none", b)
	}
	if got := testutil.ToFloat64(e.s.m.registers.WithLabelValues("forbidden")); got != 3 {
		t.Fatalf("forbidden count %v, want 3", got)
	}
}

func TestOpenRegistration(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.OpenNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	res := do(t, newClient(t), e.registerReq("guest", "Guest Phone", "udp", 90))
	if res.StatusCode != 200 {
		t.Fatalf("open REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	if term, ok := e.terminalByUID("guest"); !ok || term.Identifiers.Name != "Guest Phone" {
		t.Fatalf("terminal %+v (found %t)", term, ok)
	}
	// Closed by default.
	e2 := newTestEnv(t)
	if res := do(t, newClient(t), e2.registerReq("guest", "", "udp", 90)); res.StatusCode != 401 {
		t.Fatalf("REGISTER without credentials: %d, want 401", res.StatusCode)
	}
}

func TestStaleNonce(t *testing.T) {
	var skew atomic.Int64
	e := newTestEnv(t, func(o *Options) { o.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) } })
	e.addUser("alice", "s3cret", "", "")
	c := newClient(t)
	req := e.registerReq("alice", "", "udp", 300)
	res := do(t, c, req)
	ch, _ := digest.ParseChallenge(res.GetHeaders("WWW-Authenticate")[0].Value())
	skew.Store(int64(nonceLifetime + time.Minute))
	cred, _ := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(), Username: "alice", Password: "s3cret"})
	req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	req.CSeq().SeqNo++
	req.RemoveHeader("Via")
	res = do(t, c, req)
	ch2, err := digest.ParseChallenge(res.GetHeaders("WWW-Authenticate")[0].Value())
	if res.StatusCode != 401 || err != nil || !ch2.Stale {
		t.Fatalf("old nonce: %d, stale=%v, want 401 stale", res.StatusCode, ch2 != nil && ch2.Stale)
	}
	if e.reg.Count() != 0 {
		t.Fatal("registered with a stale nonce")
	}
}

func TestMalformedDropped(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("alice", "s3cret", "", "")
	conn, err := net.Dial("udp", e.s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range []string{
		"garbage\r\n\r\n",
		"REGISTER sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n",
		"REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK1\r\nCSeq: 1 REGISTER\r\nCall-ID: a\r\nTo: <sip:al ice@127.0.0.1>\r\nFrom: <sip:alice@127.0.0.1>;tag=1\r\nContent-Length: 0\r\n\r\n",
	} {
		conn.Write([]byte(m))
	}
	// A good client is still served.
	res := registerAuth(t, newClient(t), e.registerReq("alice", "", "udp", 300), "alice", "s3cret")
	if res.StatusCode != 200 {
		t.Fatalf("after garbage: %d", res.StatusCode)
	}
	if got := testutil.ToFloat64(e.s.m.dropped.WithLabelValues("malformed")); got < 2 {
		t.Fatalf("malformed count %v, want ≥ 2", got)
	}
	if e.reg.Count() != 1 {
		t.Fatalf("%d terminals, want 1", e.reg.Count())
	}
}

func TestRateLimited(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Rate = 5 })
	conn, err := net.Dial("udp", e.s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 100 {
		conn.Write([]byte("OPTIONS sip:127.0.0.1 SIP/2.0\r\n\r\n"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(e.s.m.dropped.WithLabelValues("rate")) < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("rate drops %v, want ≥ 50", testutil.ToFloat64(e.s.m.dropped.WithLabelValues("rate")))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fullDirectory is a register that hosts its most terminals.
type fullDirectory struct{ Directory }

func (fullDirectory) RegisterChecked(client.Registration, func(string) error) (client.Ack, error) {
	return client.Ack{}, fmt.Errorf("%w: 2048 terminals registered", share.ErrFull)
}

// TestRegisterWhenFull: a phone with the right password whose node hosts
// its most terminals gets 503 (try later), not 500.
func TestRegisterWhenFull(t *testing.T) {
	e := newTestEnv(t, func(o *Options) { o.Directory = fullDirectory{o.Directory} })
	e.addUser("alice", "s3cret", "", "")
	res := registerAuth(t, newClient(t), e.registerReq("alice", "", "udp", 300), "alice", "s3cret")
	if res.StatusCode != 503 {
		t.Fatalf("REGISTER at a full node: %d %s, want 503", res.StatusCode, res.Reason)
	}
}
