package phone

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// lossyNet injects loss into the pion sockets of the terminals made on it
// (net): on the direct path (dropPct of the packets that one terminal's
// host socket sends to another's) and on the path through chosen TURN
// servers (turnPct of the packets to and from them).
type lossyNet struct {
	dropPct atomic.Int32
	turnPct atomic.Int32
	mu      sync.Mutex
	hosts   map[string]bool // local addresses of the host sockets
	turns   map[string]bool // addresses of the TURN servers with loss
}

func newLossyNet(tb testing.TB) *lossyNet {
	return &lossyNet{hosts: map[string]bool{}, turns: map[string]bool{}}
}

// lossyTURN puts loss on the path through the TURN server at addr.
func (n *lossyNet) lossyTURN(addr string, pct int32) {
	n.mu.Lock()
	n.turns[addr] = true
	n.mu.Unlock()
	n.turnPct.Store(pct)
}

// pionNet is one terminal's network on a lossyNet. It counts what its
// TURN client sockets exchange with each TURN server.
type pionNet struct {
	*stdnet.Net
	ln     *lossyNet
	mu     sync.Mutex
	allocs map[string]int // TURN server → allocations it granted (Allocate success responses)
	sent   map[string]int // TURN server → packets sent to it
}

func (n *lossyNet) net(tb testing.TB) *pionNet {
	tb.Helper()
	sn, err := stdnet.NewNet()
	if err != nil {
		tb.Fatal(err)
	}
	return &pionNet{Net: sn, ln: n, allocs: map[string]int{}, sent: map[string]int{}}
}

// counts is what n sent to the TURN server at addr and the allocations
// that server granted it.
func (n *pionNet) counts(addr string) (sent, allocs int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent[addr], n.allocs[addr]
}

// ListenUDP makes the host (and server-reflexive) candidate sockets; the
// TURN client's sockets come from ListenPacket.
func (n *pionNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	n.ln.mu.Lock()
	n.ln.hosts[c.LocalAddr().String()] = true
	n.ln.mu.Unlock()
	return &lossyConn{UDPConn: c, n: n.ln}, nil
}

// ListenPacket makes the TURN client's sockets.
func (n *pionNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return &turnConn{PacketConn: c, n: n}, nil
}

func (n *lossyNet) drop(to net.Addr) bool {
	pct := n.dropPct.Load()
	if pct == 0 || to == nil {
		return false
	}
	n.mu.Lock()
	direct := n.hosts[to.String()]
	n.mu.Unlock()
	return direct && rand.Int32N(100) < pct
}

func (n *lossyNet) dropTURN(peer net.Addr) bool {
	pct := n.turnPct.Load()
	if pct == 0 || peer == nil {
		return false
	}
	n.mu.Lock()
	lossy := n.turns[peer.String()]
	n.mu.Unlock()
	return lossy && rand.Int32N(100) < pct
}

type lossyConn struct {
	transport.UDPConn
	n *lossyNet
}

func (c *lossyConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if c.n.drop(to) {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, to)
}

func (c *lossyConn) WriteToUDP(b []byte, to *net.UDPAddr) (int, error) {
	if c.n.drop(to) {
		return len(b), nil
	}
	return c.UDPConn.WriteToUDP(b, to)
}

// turnConn is a TURN client socket: loss both ways on the lossy TURN
// servers' paths, and counts.
type turnConn struct {
	net.PacketConn
	n *pionNet
}

func (c *turnConn) WriteTo(b []byte, to net.Addr) (int, error) {
	c.n.mu.Lock()
	c.n.sent[to.String()]++
	c.n.mu.Unlock()
	if c.n.ln.dropTURN(to) {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, to)
}

// stunAllocateSuccess is the STUN message type of an Allocate success
// response (RFC 8656 section 17).
const stunAllocateSuccess = 0x0103

func (c *turnConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.n.ln.dropTURN(from) {
			if err == nil && n >= 20 && binary.BigEndian.Uint16(b) == stunAllocateSuccess {
				c.n.mu.Lock()
				c.n.allocs[from.String()]++
				c.n.mu.Unlock()
			}
			return n, from, err
		}
	}
}

// playLoop plays data into call c over and over until it ends, on the
// peer that carries it (a Play carries on across a route change, the next
// one starts on the new peer).
func playLoop(tb testing.TB, c *Call, data []byte) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			peer := c.Peer()
			err := peer.Play(bytes.NewReader(data))
			select {
			case <-c.Done():
				return
			default:
			}
			if errors.Is(err, media.ErrClosed) && c.Peer() != peer {
				continue // the old leg, closed after the route change
			}
			if err != nil {
				if !errors.Is(err, media.ErrClosed) {
					tb.Errorf("play: %v", err)
				}
				return
			}
		}
	}()
	tb.Cleanup(func() { c.Peer().Close(); wg.Wait() })
}

// qualityAfter returns the quality events of call after time at.
func (e *events) after(typ, call string, at time.Time) []client.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []client.Event
	for _, ev := range e.list {
		if ev.Type == typ && ev.Call == call && ev.Time.After(at) {
			out = append(out, ev)
		}
	}
	return out
}

// lossyPair is a caller (a on nodes[0]) and an auto-answering, recording
// callee (b on the last of nodes) whose pion sockets share one lossyNet.
type lossyPair struct {
	ln         *lossyNet
	netA, netB *pionNet
	nodes      []*node.Node
	a, b       *Phone
	evA, evB   *events
	res        client.Result
	data       []byte
}

// newLossyPair puts the two phones on two nodes.
func newLossyPair(tb testing.TB) *lossyPair {
	const n = 2
	nodes := startNodes(tb, n)
	data, err := os.ReadFile(fixture)
	if err != nil {
		tb.Fatal(err)
	}
	lp := &lossyPair{ln: newLossyNet(tb), nodes: nodes, evA: newEvents(), evB: newEvents(), data: data}
	lp.netA, lp.netB = lp.ln.net(tb), lp.ln.net(tb)
	engine := func(n *pionNet) *webrtc.SettingEngine {
		se := loopbackEngine()
		se.SetNet(n)
		return se
	}
	lp.b = startPhone(tb, nodes[n-1], Options{
		Registration:  client.Registration{Name: "Lossy Bob"},
		Answer:        AnswerAuto,
		OnEvent:       lp.evB.add,
		SettingEngine: engine(lp.netB),
		RecordDir:     tb.TempDir(),
	})
	lp.a = startPhone(tb, nodes[0], Options{
		Registration:  client.Registration{UID: "lossy-a"},
		OnEvent:       lp.evA.add,
		SettingEngine: engine(lp.netA),
	})
	lp.res = find(tb, apiClient(tb, nodes[0]), "lossy bob", lp.b.Ack().Terminal)
	return lp
}

// call places a call on the direct route with both sides playing the
// fixture over and over, and waits for its first quality sample.
func (lp *lossyPair) call(tb testing.TB) (c, bc *Call) {
	return lp.callOn(tb, CallOptions{}, signal.RouteDirect)
}

// callOn places a call with options o that must connect on route.
func (lp *lossyPair) callOn(tb testing.TB, o CallOptions, route string) (c, bc *Call) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := lp.a.Call(ctx, lp.res, o)
	if err != nil {
		tb.Fatalf("Call: %v (events %s)", err, lp.evA)
	}
	bc = incoming(tb, lp.b)
	playLoop(tb, c, lp.data)
	playLoop(tb, bc, lp.data)
	if e := lp.evA.wait(tb, client.EventConnected, c.ID()); e.Route != route {
		tb.Fatalf("connected on %q, want %s", e.Route, route)
	}
	lp.evA.wait(tb, client.EventQuality, c.ID())
	return c, bc
}

// samples waits for n quality samples of call after time at and returns
// them.
func (e *events) samples(tb testing.TB, call string, at time.Time, n int) []client.Event {
	tb.Helper()
	for {
		e.mu.Lock()
		ch := e.changed // before looking: an event added meanwhile closes it
		e.mu.Unlock()
		if qs := e.after(client.EventQuality, call, at); len(qs) >= n {
			return qs[:n]
		}
		select {
		case <-ch:
		case <-time.After(waitLong):
			tb.Fatalf("fewer than %d quality samples of call %q after %s; got %s", n, call, at.Format(time.StampMilli), e)
		}
	}
}

// waitAfter returns the first event of type typ of call after time at.
func (e *events) waitAfter(tb testing.TB, typ, call string, at time.Time) client.Event {
	tb.Helper()
	deadline := time.After(waitLong)
	for {
		e.mu.Lock()
		ch := e.changed // before looking: an event added meanwhile closes it
		e.mu.Unlock()
		if evs := e.after(typ, call, at); len(evs) > 0 {
			return evs[0]
		}
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("no %q event for call %q after %s; got %s", typ, call, at.Format(time.StampMilli), e)
		}
	}
}

// TestRouteSwitchOnLoss: loss on the direct path of a real call moves it
// to the relay, make-before-break, on both sides; the audio and the
// recording carry on. The decisions themselves (when to move, where, the
// hold-down, timeouts) are tested on a fake clock in switcher_test.go.
func TestRouteSwitchOnLoss(t *testing.T) {
	lp := newLossyPair(t)
	evA, evB := lp.evA, lp.evB
	c, bc := lp.call(t)
	// A few clean samples first.
	for _, q := range evA.samples(t, c.ID(), time.Now(), 2) {
		if q.Loss > DefaultMaxLoss {
			t.Fatalf("loss %.3f before any was injected", q.Loss)
		}
	}

	lossStart := time.Now()
	lp.ln.dropPct.Store(25)
	rA := evA.wait(t, client.EventRoute, c.ID())
	took := rA.Time.Sub(lossStart)
	rB := evB.wait(t, client.EventRoute, c.ID())
	t.Logf("caller route %s → %s after %v (%s); callee %s → %s (%s)", rA.From, rA.To, took.Round(time.Millisecond), rA.Reason, rB.From, rB.To, rB.Reason)
	if rA.From != signal.RouteDirect || rA.To != signal.RouteRelayed || !strings.HasPrefix(rA.Reason, "loss") {
		t.Errorf("caller route event %+v: want direct → relayed because of loss", rA)
	}
	if rB.From != signal.RouteDirect || rB.To != signal.RouteRelayed || rB.Reason != rA.Reason {
		t.Errorf("callee route event %+v: want direct → relayed, reason %q", rB, rA.Reason)
	}
	// The caller's events in order: quality over the threshold, the route
	// change, quality under it.
	qs := evA.after(client.EventQuality, c.ID(), lossStart)
	var before, after []client.Event
	for _, q := range qs {
		if q.Time.Before(rA.Time) {
			before = append(before, q)
		} else {
			after = append(after, q)
		}
	}
	if len(before) == 0 || before[len(before)-1].Loss <= DefaultMaxLoss || before[len(before)-1].Route != signal.RouteDirect {
		t.Errorf("quality before the route event: %+v; want direct with loss over %.2f", before, DefaultMaxLoss)
	}

	// The call carries on over the relay, with the loss back under the
	// threshold (the loss on the direct path goes on).
	for _, q := range evA.samples(t, c.ID(), rA.Time, 3) {
		t.Logf("after the switch: loss %.3f jitter %.1f ms rtt %.1f ms route %s", q.Loss, q.JitterMS, q.RTTMS, q.Route)
		if q.Route != signal.RouteRelayed || q.Loss > DefaultMaxLoss {
			t.Errorf("quality %+v: want relayed with loss under %.2f", q, DefaultMaxLoss)
		}
	}
	if n := len(evA.after(client.EventRoute, c.ID(), lossStart)); n != 1 {
		t.Errorf("%d route events; want 1 (hold-down, no flapping)", n)
	}
	select {
	case <-c.Done():
		t.Fatalf("call ended: %s", evA)
	default:
	}
	if c.Peer().Route() != signal.RouteRelayed || bc.Peer().Route() != signal.RouteRelayed {
		t.Errorf("routes now: caller %q, callee %q", c.Peer().Route(), bc.Peer().Route())
	}
	before2 := bc.Peer().Stats().PacketsReceived
	var newLeg uint32
	nodetest.WaitFor(t, "the callee receiving audio over the relay", func() bool {
		newLeg = bc.Peer().Stats().PacketsReceived
		return newLeg > before2
	})
	if err := c.Hangup(); err != nil {
		t.Fatal(err)
	}
	endB := evB.wait(t, client.EventEnded, c.ID())
	if endB.Reason != "hangup" {
		t.Errorf("callee ended: %q", endB.Reason)
	}

	// One recording across both legs: more than the new leg delivered,
	// and every packet one of those played.
	rec, err := os.ReadFile(endB.Record)
	if err != nil {
		t.Fatal(err)
	}
	played := map[string]bool{}
	for _, p := range oggPackets(t, lp.data) {
		played[string(p)] = true
	}
	got := oggPackets(t, rec)
	t.Logf("recorded %d packets; the relayed leg delivered %d", len(got), newLeg)
	if len(got) < int(newLeg)+100 {
		t.Errorf("recorded %d packets, the relayed leg alone delivered %d: the direct leg's are missing", len(got), newLeg)
	}
	for i, p := range got {
		if !played[string(p)] {
			t.Fatalf("recorded packet %d was never played", i)
		}
	}
}

// BenchmarkRouteSwitch: 25% loss injected on the direct path of a running
// call; from the loss starting to the caller's route event (relayed). The
// detection alone takes BadSamples one-second samples; leg-ms is the rest:
// from the quality sample that decided it (the new leg is started right
// after it) to the new leg carrying the call.
func BenchmarkRouteSwitch(b *testing.B) {
	lp := newLossyPair(b)
	var total, leg time.Duration
	for range b.N {
		lp.ln.dropPct.Store(0)
		c, _ := lp.call(b)
		time.Sleep(time.Second)
		start := time.Now()
		lp.ln.dropPct.Store(25)
		r := lp.evA.wait(b, client.EventRoute, c.ID())
		if r.To != signal.RouteRelayed {
			b.Fatalf("route event %+v", r)
		}
		total += r.Time.Sub(start)
		qs := lp.evA.after(client.EventQuality, c.ID(), start)
		var last time.Time
		for _, q := range qs {
			if q.Time.Before(r.Time) {
				last = q.Time
			}
		}
		leg += r.Time.Sub(last)
		lp.ln.dropPct.Store(0)
		c.Hangup()
		lp.evB.wait(b, client.EventEnded, c.ID())
		waitIdle(b, lp.b)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(time.Millisecond), "ms-to-switch")
	b.ReportMetric(float64(leg)/float64(b.N)/float64(time.Millisecond), "leg-ms")
}
