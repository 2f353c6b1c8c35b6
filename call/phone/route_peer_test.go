package phone

import (
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/node/nodetest"
)

// checkRoute checks a route event: from → to because of loss.
func checkRoute(t *testing.T, who string, e Event, from, to string) {
	t.Helper()
	if e.From != from || e.To != to || e.Route != to || !strings.HasPrefix(e.Reason, "loss") {
		t.Errorf("%s route event %+v: want %s → %s because of loss", who, e, from, to)
	}
}

// checkQuality checks that the caller's quality samples after at are on
// route with the loss under the threshold, and that there are some.
func checkQuality(t *testing.T, ev *events, call string, at time.Time, route string) {
	t.Helper()
	qs := ev.after(EventQuality, call, at)
	if len(qs) < 3 {
		t.Fatalf("only %d quality samples after %s", len(qs), at.Format(time.StampMilli))
	}
	for _, q := range qs {
		if q.Route != route || q.Loss > DefaultMaxLoss {
			t.Errorf("quality %+v: want %s with loss under %.2f", q, route, DefaultMaxLoss)
		}
	}
}

// TestRouteToPeerRelay: a call relayed through the caller's node's relay
// loses packets on the way to and from that relay only; the caller moves
// it to the callee's node's relay (route relayed-peer), which allocates
// for the caller with the credentials the callee's node sent in accept.
func TestRouteToPeerRelay(t *testing.T) {
	lp := newLossyPair(t)
	evA, evB := lp.evA, lp.evB
	turnA := lp.nodes[0].TURN().Addr().String()
	turnB := lp.nodes[1].TURN().Addr().String()
	// Relay-only on the caller's side: the call starts on its own relay.
	c, bc := lp.callOn(t, CallOptions{RelayOnly: true}, media.RouteRelayed)
	// Each side learnt the other node's relay.
	if !hasTURN(c.peerICE) || !hasTURN(bc.peerICE) {
		t.Fatalf("peer ICE servers: caller %v, callee %v", c.peerICE, bc.peerICE)
	}
	if !strings.Contains(c.peerICE[len(c.peerICE)-1].URLs[0], turnB) || !strings.Contains(bc.peerICE[len(bc.peerICE)-1].URLs[0], turnA) {
		t.Errorf("peer ICE servers: caller %v (want %s), callee %v (want %s)", c.peerICE, turnB, bc.peerICE, turnA)
	}
	if _, allocs := lp.netA.counts(turnB); allocs != 0 {
		t.Fatalf("the caller has %d allocations on the callee's node's relay before any loss", allocs)
	}
	time.Sleep(2 * time.Second)
	for _, q := range evA.after(EventQuality, c.ID(), time.Now().Add(-time.Second)) {
		if q.Loss > DefaultMaxLoss || q.Route != media.RouteRelayed {
			t.Fatalf("quality %+v before any loss was injected", q)
		}
	}

	lossStart := time.Now()
	lp.ln.lossyTURN(turnA, 20)
	rA := evA.waitAfter(t, EventRoute, c.ID(), lossStart)
	rB := evB.waitAfter(t, EventRoute, c.ID(), lossStart)
	t.Logf("caller route %s → %s after %v (%s); callee %s → %s (%s)", rA.From, rA.To, rA.Time.Sub(lossStart).Round(time.Millisecond), rA.Reason, rB.From, rB.To, rB.Reason)
	checkRoute(t, "caller", rA, media.RouteRelayed, signal.RouteRelayedPeer)
	checkRoute(t, "callee", rB, media.RouteRelayed, signal.RouteRelayedPeer)

	// The call carries on through the callee's node's relay, the loss
	// back under the threshold (the loss on the way to the caller's node's
	// relay goes on).
	time.Sleep(5 * time.Second)
	checkQuality(t, evA, c.ID(), rA.Time, signal.RouteRelayedPeer)
	checkQuality(t, evB, c.ID(), rB.Time.Add(time.Second), signal.RouteRelayedPeer)
	if n := len(evA.after(EventRoute, c.ID(), lossStart)); n != 1 {
		t.Errorf("%d route events; want 1", n)
	}
	select {
	case <-c.Done():
		t.Fatalf("call ended: %s", evA)
	default:
	}
	// The callee's node's relay allocated for the caller and carries its
	// media; the caller's node's relay carries nothing any more.
	sentB0, allocs := lp.netA.counts(turnB)
	sentA0, _ := lp.netA.counts(turnA)
	time.Sleep(time.Second)
	sentB1, _ := lp.netA.counts(turnB)
	sentA1, _ := lp.netA.counts(turnA)
	t.Logf("caller: %d allocations on the callee's node's relay; packets in 1 s to it %d, to its own node's relay %d", allocs, sentB1-sentB0, sentA1-sentA0)
	if allocs == 0 {
		t.Error("the callee's node's relay granted the caller no allocation")
	}
	if sentB1-sentB0 < 25 { // 50 audio packets a second
		t.Errorf("the caller sent %d packets in 1 s to the callee's node's relay", sentB1-sentB0)
	}
	if sentA1-sentA0 > 5 {
		t.Errorf("the caller still sends to its own node's relay: %d packets in 1 s", sentA1-sentA0)
	}
	if err := c.Hangup(); err != nil {
		t.Fatal(err)
	}
	if endB := evB.wait(t, EventEnded, c.ID()); endB.Reason != "hangup" {
		t.Errorf("callee ended: %q", endB.Reason)
	}
}

// TestRouteBackToDirect: a call moved from the direct route to the relay
// by loss on the direct path moves back to direct when the relay loses
// packets, once the hold-down (2 s here) of the direct route is over. The
// two phones share one node, so there is no other node's relay to try.
func TestRouteBackToDirect(t *testing.T) {
	const hold = 2 * time.Second
	lp := newLossyPairOn(t, 1, hold)
	evA, evB := lp.evA, lp.evB
	relay := lp.nodes[0].TURN().Addr().String()
	c, _ := lp.call(t)
	if len(c.peerICE) != 0 {
		t.Fatalf("a call within one node got peer ICE servers %v", c.peerICE)
	}

	lossStart := time.Now()
	lp.ln.dropPct.Store(25)
	r1 := evA.waitAfter(t, EventRoute, c.ID(), lossStart)
	checkRoute(t, "caller", r1, media.RouteDirect, media.RouteRelayed)

	// Now the direct path is clean and the relay's is not.
	lp.ln.dropPct.Store(0)
	lp.ln.lossyTURN(relay, 20)
	relayLoss := time.Now()
	r2 := evA.waitAfter(t, EventRoute, c.ID(), r1.Time)
	var r2B Event
	nodetest.WaitFor(t, "the callee's second route event", func() bool {
		rs := evB.after(EventRoute, c.ID(), lossStart)
		if len(rs) < 2 {
			return false
		}
		r2B = rs[1]
		return true
	})
	t.Logf("direct → relayed after %v; relayed → direct %v after the relay's loss began, %v after leaving direct (%s)",
		r1.Time.Sub(lossStart).Round(time.Millisecond), r2.Time.Sub(relayLoss).Round(time.Millisecond), r2.Time.Sub(r1.Time).Round(time.Millisecond), r2.Reason)
	checkRoute(t, "caller", r2, media.RouteRelayed, media.RouteDirect)
	if r2B.From != media.RouteRelayed || r2B.To != media.RouteDirect {
		t.Errorf("callee's second route event %+v: want relayed → direct", r2B)
	}
	if r2.Time.Sub(r1.Time) < hold {
		t.Errorf("back on direct %v after leaving it: within the hold-down %v", r2.Time.Sub(r1.Time), hold)
	}

	time.Sleep(5 * time.Second)
	checkQuality(t, evA, c.ID(), r2.Time, media.RouteDirect)
	if n := len(evA.after(EventRoute, c.ID(), lossStart)); n != 2 {
		t.Errorf("%d route events; want 2", n)
	}
	select {
	case <-c.Done():
		t.Fatalf("call ended: %s", evA)
	default:
	}
	if err := c.Hangup(); err != nil {
		t.Fatal(err)
	}
	evB.wait(t, EventEnded, c.ID())
}

// BenchmarkRouteSwitchPeerRelay: a call relayed through the caller's
// node's relay; 20% loss injected on the path to and from that relay; from
// the loss starting to the caller's route event (relayed-peer: the call
// carried by the callee's node's relay). leg-ms is the part after the
// quality sample that decided it, as in BenchmarkRouteSwitch.
func BenchmarkRouteSwitchPeerRelay(b *testing.B) {
	lp := newLossyPair(b)
	turnA := lp.nodes[0].TURN().Addr().String()
	var total, leg time.Duration
	for range b.N {
		lp.ln.turnPct.Store(0)
		c, _ := lp.callOn(b, CallOptions{RelayOnly: true}, media.RouteRelayed)
		time.Sleep(time.Second)
		start := time.Now()
		lp.ln.lossyTURN(turnA, 20)
		r := lp.evA.waitAfter(b, EventRoute, c.ID(), start)
		if r.To != signal.RouteRelayedPeer {
			b.Fatalf("route event %+v", r)
		}
		total += r.Time.Sub(start)
		var last time.Time
		for _, q := range lp.evA.after(EventQuality, c.ID(), start) {
			if q.Time.Before(r.Time) {
				last = q.Time
			}
		}
		leg += r.Time.Sub(last)
		lp.ln.turnPct.Store(0)
		c.Hangup()
		lp.evB.wait(b, EventEnded, c.ID())
		waitIdle(b, lp.b)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(time.Millisecond), "ms-to-switch")
	b.ReportMetric(float64(leg)/float64(b.N)/float64(time.Millisecond), "leg-ms")
}
