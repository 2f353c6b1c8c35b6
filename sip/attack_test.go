package sip

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irmv/irmv/call/media"
)

// rawPhone is a SIP client on its own UDP socket at a loopback address
// of its choosing (127.0.0.0/8 is all loopback): another host on the LAN,
// as far as the node can tell.
type rawPhone struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

var rawSeq atomic.Int64

func newRawPhone(t *testing.T, e *testEnv, ip string) *rawPhone {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawPhone{t: t, conn: conn, to: e.s.Addr().(*net.UDPAddr)}
}

// register sends a REGISTER for aor with authz (if any) and returns the
// final response.
func (p *rawPhone) register(aor, authz string) *sip.Response {
	p.t.Helper()
	n := rawSeq.Add(1)
	local := p.conn.LocalAddr().String()
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-raw%d;rport\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=r%d\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: raw-%d\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:%s@%s>\r\nExpires: 300\r\nMax-Forwards: 70\r\n", p.to, local, n, aor, n, aor, n, aor, local)
	if authz != "" {
		msg += "Authorization: " + authz + "\r\n"
	}
	msg += "Content-Length: 0\r\n\r\n"
	if _, err := p.conn.WriteToUDP([]byte(msg), p.to); err != nil {
		p.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for {
		p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		k, _, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			p.t.Fatalf("REGISTER %s from %s: %v", aor, local, err)
		}
		m, err := sip.ParseMessage(buf[:k])
		if err != nil {
			p.t.Fatal(err)
		}
		res, ok := m.(*sip.Response)
		if !ok || res.IsProvisional() || !strings.Contains(res.CallID().Value(), fmt.Sprint("raw-", n)) {
			continue
		}
		return res
	}
}

// answer registers aor with pass: the challenge, then the digest answer.
// It returns the final response and the Authorization sent.
func (p *rawPhone) answer(aor, pass string) (*sip.Response, string) {
	p.t.Helper()
	res := p.register(aor, "")
	if res.StatusCode != 401 {
		p.t.Fatalf("REGISTER without credentials: %d, want 401", res.StatusCode)
	}
	ch, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		p.t.Fatal(err)
	}
	cred, err := digest.Digest(ch, digest.Options{Method: "REGISTER", URI: "sip:" + p.to.String(), Username: aor, Password: pass, Count: 1})
	if err != nil {
		p.t.Fatal(err)
	}
	return p.register(aor, cred.String()), cred.String()
}

func (e *testEnv) bindingSource(aor string) string {
	for _, b := range e.s.Bindings() {
		if b.AOR == aor {
			return b.Source
		}
	}
	return ""
}

// A REGISTER captured on the LAN and sent again from another address
// would move the binding there (and with it the phone's calls): each
// digest answer registers once.
func TestRegisterReplayRefused(t *testing.T) {
	e := newTestEnv(t)
	e.addUser("alice", "s3cret", "", "")
	phone := newRawPhone(t, e, "127.0.0.1")
	res, authz := phone.answer("alice", "s3cret")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	home := e.bindingSource("alice")
	thief := newRawPhone(t, e, "127.0.0.2")
	res = thief.register("alice", authz)
	if res.StatusCode == 200 {
		t.Fatalf("replayed REGISTER: 200, binding now from %s (was %s)", e.bindingSource("alice"), home)
	}
	if res.StatusCode != 401 {
		t.Fatalf("replayed REGISTER: %d, want 401 (a new challenge)", res.StatusCode)
	}
	if got := e.bindingSource("alice"); got != home {
		t.Fatalf("binding from %s, want %s", got, home)
	}
	// The phone's next registration, with a new answer, is taken.
	if res, _ := phone.answer("alice", "s3cret"); res.StatusCode != 200 {
		t.Fatalf("REGISTER again: %d", res.StatusCode)
	}
}

// Guessing a password: a source gets guessBurstSource wrong answers,
// then even the right one is refused unchecked; many sources together get
// guessBurstUser for one user, and then only the address the user's
// phone registered from is still heard.
func TestPasswordGuessesLimited(t *testing.T) {
	// The clock stands still but when moved: no bucket refills unseen.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	e := newTestEnv(t, func(o *Options) { o.Now = func() time.Time { return time.Unix(0, clock.Load()) } })
	e.addUser("alice", "s3cret", "", "")
	phone := newRawPhone(t, e, "127.0.0.1")
	if res, _ := phone.answer("alice", "s3cret"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	count := func(result string) float64 { return testutil.ToFloat64(e.s.m.registers.WithLabelValues(result)) }

	guesser := newRawPhone(t, e, "127.0.0.2")
	for i := range guessBurstSource {
		if res, _ := guesser.answer("alice", fmt.Sprint("guess", i)); res.StatusCode != 403 {
			t.Fatalf("guess %d: %d, want 403", i, res.StatusCode)
		}
	}
	if count("limited") != 0 {
		t.Fatalf("limited %v before the source's guesses ran out", count("limited"))
	}
	if res, _ := guesser.answer("alice", "s3cret"); res.StatusCode != 403 {
		t.Fatalf("the right password after %d guesses: %d, want 403 (not checked)", guessBurstSource, res.StatusCode)
	}
	if count("limited") != 1 || testutil.ToFloat64(e.s.m.dropped.WithLabelValues("guesses")) != 1 {
		t.Fatalf("limited %v, want 1", count("limited"))
	}
	// A guess comes back every 6 s.
	clock.Add(int64(6 * time.Second))
	if res, _ := guesser.answer("alice", "guess-late"); res.StatusCode != 403 || count("limited") != 1 {
		t.Fatalf("a guess 6 s later: %d, limited %v; want 403 checked", res.StatusCode, count("limited"))
	}
	if got := e.bindingSource("alice"); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Fatalf("binding from %s", got)
	}

	// Many sources, a few guesses each: the user's bucket runs out.
	left := guessBurstUser - guessBurstSource + int(6*guessRateUser) - 1
	for i := 0; left > 0; i++ {
		g := newRawPhone(t, e, fmt.Sprintf("127.0.1.%d", i+1))
		for range min(left, guessBurstSource-1) {
			if res, _ := g.answer("alice", "nope"); res.StatusCode != 403 {
				t.Fatalf("guess: %d", res.StatusCode)
			}
			left--
		}
	}
	stranger := newRawPhone(t, e, "127.0.2.1")
	if res, _ := stranger.answer("alice", "s3cret"); res.StatusCode != 403 {
		t.Fatalf("the right password from a new source after %d guesses: %d, want 403", guessBurstUser, res.StatusCode)
	}
	if count("limited") != 2 {
		t.Fatalf("limited %v, want 2", count("limited"))
	}
	// The real phone is not locked out.
	if res, _ := phone.answer("alice", "s3cret"); res.StatusCode != 200 {
		t.Fatalf("the phone's REGISTER while alice is limited: %d, want 200", res.StatusCode)
	}
	// Other users are not limited.
	e.addUser("bob", "pw-bob", "", "")
	if res, _ := newRawPhone(t, e, "127.0.3.1").answer("bob", "pw-bob"); res.StatusCode != 200 {
		t.Fatalf("bob: %d", res.StatusCode)
	}
}

// One address opening TCP connections in a loop holds MaxTCPPerSource;
// the rest are closed at once and counted, and other addresses are
// still served.
func TestTCPConnectionsLimited(t *testing.T) {
	e := newTestEnv(t)
	dial := func(ip string) *net.TCPConn {
		t.Helper()
		c, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP(ip)}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: e.s.Addr().(*net.UDPAddr).Port})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	const extra = 10
	var conns []*net.TCPConn
	for range MaxTCPPerSource + extra {
		conns = append(conns, dial("127.0.0.2"))
	}
	dropped := func() float64 { return testutil.ToFloat64(e.s.m.dropped.WithLabelValues("connections")) }
	deadline := time.Now().Add(20 * time.Second)
	for dropped() < extra {
		if time.Now().After(deadline) {
			t.Fatalf("%v connections refused, want %d", dropped(), extra)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The refused ones were closed: their reads end.
	for _, c := range conns[MaxTCPPerSource:] {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("a connection over the cap: read %v, want it closed", err)
		}
	}
	// A held one and another address are served.
	for _, c := range []*net.TCPConn{conns[0], dial("127.0.0.3")} {
		if res := tcpRegister(t, c, "alice"); res.StatusCode != 401 {
			t.Fatalf("REGISTER over TCP: %d, want 401", res.StatusCode)
		}
	}
	if dropped() != extra {
		t.Fatalf("%v refused, want %d", dropped(), extra)
	}
}

// tcpRegister sends a REGISTER without credentials over c and reads the
// answer.
func tcpRegister(t *testing.T, c net.Conn, aor string) *sip.Response {
	t.Helper()
	local := c.LocalAddr().String()
	fmt.Fprintf(c, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-tcp%d;rport\r\n"+
		"From: <sip:%s@127.0.0.1>;tag=t\r\nTo: <sip:%s@127.0.0.1>\r\nCall-ID: tcp-%d\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:%s@%s;transport=tcp>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		c.RemoteAddr(), local, rawSeq.Add(1), aor, aor, rawSeq.Load(), aor, local)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Response)
}

// A connection that never speaks is closed after the first-read
// deadline, one that stops speaking after the idle timeout; both free
// their place.
func TestTCPSilentConnectionsClosed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := &tcpLimiter{Listener: ln, first: 200 * time.Millisecond, idle: 400 * time.Millisecond,
		open: map[netip.Addr]int{}, full: map[netip.Addr]bool{}, refused: func(netip.Addr, bool) {}}
	for _, speak := range []bool{false, true} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if speak {
			c.Write([]byte("\r\n\r\n"))
		}
		sc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		start := time.Now()
		var n int
		for err == nil {
			var k int
			k, err = sc.Read(buf)
			n += k
		}
		if !isTimeout(err) || (speak && n != 4) {
			t.Fatalf("speak=%v: read %d bytes, then %v; want a timeout", speak, n, err)
		}
		if took := time.Since(start); speak && took < 400*time.Millisecond {
			t.Fatalf("an idle connection timed out after %v, before the idle timeout", took)
		}
		sc.Close()
	}
	if l.all != 0 || len(l.open) != 0 {
		t.Fatalf("after close: %d open, %v", l.all, l.open)
	}
}

// RTP sent to a plain call's bridge port from another host on the LAN (a
// port scan finds it) is neither heard nor latched to: the irmv side's
// audio keeps going to the phone, not to the injector.
func TestRTPInjectionDropped(t *testing.T) {
	bc, phone, _, wg := testBridgeCall(t, media.CodecPCMU, 0)
	bc.m = newMetrics(nil, nil)
	bc.mu.Lock()
	bc.sending = true
	bc.mu.Unlock()
	wg.Add(1)
	go func() { defer wg.Done(); bc.fromPhone() }()
	t.Cleanup(func() { bc.rtp.Close() })

	injector, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer injector.Close()
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, SSRC: 99}, Payload: make([]byte, 160)}
	b, _ := pkt.Marshal()
	if _, err := injector.WriteTo(b, bc.rtp.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	// Wait until the bridge took the packet: dropped, or latched to.
	latched := func() bool {
		bc.mu.Lock()
		defer bc.mu.Unlock()
		return bc.phone.IP.Equal(net.IPv4(127, 0, 0, 2))
	}
	dropped := func() float64 { return testutil.ToFloat64(bc.m.dropped.WithLabelValues("rtp_source")) }
	deadline := time.Now().Add(10 * time.Second)
	for !latched() && dropped() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the injected packet was neither dropped nor latched to")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if latched() {
		t.Fatal("the bridge latched to the injector's address")
	}
	bc.toPhone(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 5, Timestamp: 960}, Payload: []byte{1, 2, 3}})
	if got := readRTP(t, phone); got.SequenceNumber != 5 {
		t.Fatalf("the phone got sequence %d, want 5", got.SequenceNumber)
	}
	// The phone's own packets from a new port (a NAT rebinding) are
	// still followed.
	moved, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	moved.WriteTo(b, bc.rtp.LocalAddr())
	deadline = time.Now().Add(10 * time.Second)
	for {
		bc.mu.Lock()
		to := bc.phone.String()
		bc.mu.Unlock()
		if to == moved.LocalAddr().String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the phone's new port was not followed: RTP goes to %s", to)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if dropped() != 1 {
		t.Fatalf("%v dropped, want 1", dropped())
	}
}

// A source that spent its burst does not get a new one when requests
// from thousands of other addresses fill the table of sources.
func TestRateLimitNotForgotten(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	e := newTestEnv(t, func(o *Options) {
		o.Rate = 5
		o.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	dropped := func() float64 { return testutil.ToFloat64(e.s.m.dropped.WithLabelValues("rate")) }
	options := func(c *net.UDPConn) {
		fmt.Fprintf(c, "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-o%d\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\n"+
			"To: <sip:x@127.0.0.1>\r\nCall-ID: o-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			e.s.Addr(), c.LocalAddr(), rawSeq.Add(1), rawSeq.Load())
	}
	dial := func(ip string) *net.UDPConn {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, e.s.Addr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// flood sends n requests from c; when more are dropped than the burst
	// lets through, it waits for those drops.
	flood := func(c *net.UDPConn, n int, wantDropped float64) {
		t.Helper()
		for range n {
			options(c)
		}
		deadline := time.Now().Add(20 * time.Second)
		for dropped() < wantDropped {
			if time.Now().After(deadline) {
				t.Fatalf("%v dropped, want %v", dropped(), wantDropped)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	attacker := dial("127.0.0.2")
	defer attacker.Close()
	flood(attacker, 20, 20-11) // burst 11
	// Thousands of others, one answered request each.
	buf := make([]byte, 4096)
	for i := range maxSources {
		c := dial(fmt.Sprintf("127.1.%d.%d", i/250, i%250+1))
		options(c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("source %d: %v", i, err)
		}
		c.Close()
		if i == maxSources/2 {
			clock.Add(int64(time.Second)) // the others' buckets fill again, the attacker's gets 5
		}
	}
	// The attacker has the 5 of a second's refill, not a new burst of 11.
	flood(attacker, 11, 9+11-5)
	if got := dropped(); got != 9+11-5 {
		t.Fatalf("%v dropped, want %v", got, 9+11-5)
	}
}

// Challenges and refusals are stateless: a forged source gets one 407,
// not ten retransmissions over 32 s, and the node keeps no transaction
// for it (a retransmitted REGISTER is answered anew, with a new nonce).
func TestRefusalsStateless(t *testing.T) {
	e := newTestEnv(t)
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, e.s.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	buf := make([]byte, 65535)
	read := func(wait time.Duration) (*sip.Response, error) {
		c.SetReadDeadline(time.Now().Add(wait))
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		m, err := sip.ParseMessage(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		return m.(*sip.Response), nil
	}
	fmt.Fprintf(c, "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-sl1;rport\r\n"+
		"From: <sip:alice@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: sl-1\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:alice@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", local, local)
	for {
		res, err := read(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode == 407 {
			break
		}
	}
	// Timer G would resend it after 500 ms, then 1 s, 2 s, ...
	if res, err := read(1500 * time.Millisecond); err == nil {
		t.Fatalf("a second answer to one INVITE: %d (the 407 retransmitted)", res.StatusCode)
	}

	register := fmt.Sprintf("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-sl2;rport\r\n"+
		"From: <sip:alice@127.0.0.1>;tag=2\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: sl-2\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:alice@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", local, local)
	var nonces []string
	for range 2 { // the same REGISTER twice: a retransmission
		c.Write([]byte(register))
		res, err := read(10 * time.Second)
		if err != nil || res.StatusCode != 401 {
			t.Fatalf("REGISTER: %v %v, want 401", res, err)
		}
		ch, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
		if err != nil {
			t.Fatal(err)
		}
		nonces = append(nonces, ch.Nonce)
	}
	if nonces[0] == nonces[1] {
		t.Fatal("the retransmitted REGISTER got the stored 401: its transaction was kept")
	}
}

// A message over 64 KiB on TCP (a header without end) closes its
// connection and is counted; the node serves the next one.
func TestOversizedDropped(t *testing.T) {
	e := newTestEnv(t)
	c, err := net.Dial("tcp", e.s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nX-Long: "))
	chunk := []byte(strings.Repeat("a", 4096))
	var werr error
	for i := 0; i < 64 && werr == nil; i++ { // 256 KiB, or until the node closes
		_, werr = c.Write(chunk)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("after 256 KiB of one header: read %v, want the connection closed", err)
	}
	if got := testutil.ToFloat64(e.s.m.dropped.WithLabelValues("malformed")); got < 1 {
		t.Fatalf("malformed %v, want ≥ 1", got)
	}
	c2, err := net.Dial("tcp", e.s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if res := tcpRegister(t, c2, "alice"); res.StatusCode != 401 {
		t.Fatalf("REGISTER after: %d, want 401", res.StatusCode)
	}
}

// TestLargeMessageDropped: a TCP message over MaxMessage (16 KiB) closes
// its connection; at sipgo's default 64 KiB, 1,024 connections each
// holding a message just under it took an access point node from 40 MB
// to 156 MB (BenchmarkSIPFlood/partial-messages in node).
func TestLargeMessageDropped(t *testing.T) {
	e := newTestEnv(t)
	c, err := net.Dial("tcp", e.s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nX-Long: "))
	chunk := []byte(strings.Repeat("a", 4096))
	var werr error
	for i := 0; i < 6 && werr == nil; i++ { // 24 KiB, or until the node closes
		_, werr = c.Write(chunk)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("after 24 KiB of one header: read %v, want the connection closed", err)
	}
}

// A table of used digest answers filled by one user registering fast
// forgets some of them instead of refusing every new answer (which
// would lock every phone out).
func TestUsedCredentialsFull(t *testing.T) {
	var u usedCredentials
	now := time.Now()
	for i := range maxUsedCredentials {
		if !u.first(fmt.Sprint("flood-", i), now) {
			t.Fatalf("answer %d refused", i)
		}
	}
	if !u.first("the phone's", now) {
		t.Fatal("a new answer refused while the table is full")
	}
	if u.first("the phone's", now) {
		t.Fatal("a replay of it taken")
	}
	if n := len(u.seen); n > maxUsedCredentials*7/8+1 {
		t.Fatalf("%d answers kept, want at most %d", n, maxUsedCredentials*7/8+1)
	}
}

// An IPv6 host picks any address of its /64: its requests, guesses and
// connections count as one source.
func TestSourceKeyIPv6Prefix(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:1:2:3"},
		{"::ffff:10.0.0.1", "10.0.0.1"},
	} {
		if ka, kb := sourceKey(netip.MustParseAddr(c.a)), sourceKey(netip.MustParseAddr(c.b)); ka != kb {
			t.Errorf("%s → %s, %s → %s: want one source", c.a, ka, c.b, kb)
		}
	}
	if sourceKey(netip.MustParseAddr("2001:db8:1:2::1")) == sourceKey(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two /64s counted as one source")
	}
	if sourceKey(netip.MustParseAddr("10.0.0.1")) == sourceKey(netip.MustParseAddr("10.0.0.2")) {
		t.Error("two IPv4 hosts counted as one source")
	}
}
