package phone

import (
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// checkRoute checks a route event: from → to because of loss.
func checkRoute(t *testing.T, who string, e client.Event, from, to string) {
	t.Helper()
	if e.From != from || e.To != to || e.Route != to || !strings.HasPrefix(e.Reason, "loss") {
		t.Errorf("%s route event %+v: want %s → %s because of loss", who, e, from, to)
	}
}

// checkQuality waits for three quality samples after at and checks that
// they are on route with the loss under the threshold.
func checkQuality(t *testing.T, ev *events, call string, at time.Time, route string) {
	t.Helper()
	for _, q := range ev.samples(t, call, at, 3) {
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
	c, bc := lp.callOn(t, CallOptions{RelayOnly: true}, signal.RouteRelayed)
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
	for _, q := range evA.samples(t, c.ID(), time.Now(), 2) {
		if q.Loss > DefaultMaxLoss || q.Route != signal.RouteRelayed {
			t.Fatalf("quality %+v before any loss was injected", q)
		}
	}

	lossStart := time.Now()
	lp.ln.lossyTURN(turnA, 20)
	rA := evA.waitAfter(t, client.EventRoute, c.ID(), lossStart)
	rB := evB.waitAfter(t, client.EventRoute, c.ID(), lossStart)
	t.Logf("caller route %s → %s after %v (%s); callee %s → %s (%s)", rA.From, rA.To, rA.Time.Sub(lossStart).Round(time.Millisecond), rA.Reason, rB.From, rB.To, rB.Reason)
	checkRoute(t, "caller", rA, signal.RouteRelayed, signal.RouteRelayedPeer)
	checkRoute(t, "callee", rB, signal.RouteRelayed, signal.RouteRelayedPeer)

	// The call carries on through the callee's node's relay, the loss
	// back under the threshold (the loss on the way to the caller's node's
	// relay goes on).
	checkQuality(t, evA, c.ID(), rA.Time, signal.RouteRelayedPeer)
	checkQuality(t, evB, c.ID(), rB.Time.Add(time.Second), signal.RouteRelayedPeer)
	if n := len(evA.after(client.EventRoute, c.ID(), lossStart)); n != 1 {
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
	if allocs == 0 {
		t.Error("the callee's node's relay granted the caller no allocation")
	}
	var sentB1, sentA1 int
	nodetest.WaitFor(t, "a second of audio to the callee's node's relay", func() bool {
		sentB1, _ = lp.netA.counts(turnB)
		sentA1, _ = lp.netA.counts(turnA)
		return sentB1-sentB0 >= 50 // 50 audio packets a second
	})
	t.Logf("caller: %d allocations on the callee's node's relay; %d packets to it while %d went to its own node's relay", allocs, sentB1-sentB0, sentA1-sentA0)
	if sentA1-sentA0 > 5 { // consent checks and refreshes at most
		t.Errorf("the caller still sends to its own node's relay: %d packets while %d went to the other", sentA1-sentA0, sentB1-sentB0)
	}
	if err := c.Hangup(); err != nil {
		t.Fatal(err)
	}
	if endB := evB.wait(t, client.EventEnded, c.ID()); endB.Reason != "hangup" {
		t.Errorf("callee ended: %q", endB.Reason)
	}
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
		c, _ := lp.callOn(b, CallOptions{RelayOnly: true}, signal.RouteRelayed)
		time.Sleep(time.Second)
		start := time.Now()
		lp.ln.lossyTURN(turnA, 20)
		r := lp.evA.waitAfter(b, client.EventRoute, c.ID(), start)
		if r.To != signal.RouteRelayedPeer {
			b.Fatalf("route event %+v", r)
		}
		total += r.Time.Sub(start)
		var last time.Time
		for _, q := range lp.evA.after(client.EventQuality, c.ID(), start) {
			if q.Time.Before(r.Time) {
				last = q.Time
			}
		}
		leg += r.Time.Sub(last)
		lp.ln.turnPct.Store(0)
		c.Hangup()
		lp.evB.wait(b, client.EventEnded, c.ID())
		waitIdle(b, lp.b)
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(time.Millisecond), "ms-to-switch")
	b.ReportMetric(float64(leg)/float64(b.N)/float64(time.Millisecond), "leg-ms")
}
