package phone

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
)

// fakeCall runs a switcher as the live loop does, on a fake clock: a
// quality sample a second of the route the call is on, whose loss the
// test sets per route; a leg the switcher starts carries the call
// legDelay later, unless its route is down. TestRouteSwitchOnLoss runs
// the same decisions on real calls.
type fakeCall struct {
	t     *testing.T
	sw    *switcher
	now   time.Time
	route string             // the route the call's media takes
	loss  map[string]float64 // the loss on each route's path
	down  map[string]bool    // routes on which a new leg never comes up
	next  *leg               // the leg being brought up
	evs   []client.Event
}

const legDelay = 300 * time.Millisecond

func newFakeCall(t *testing.T, route string, hold time.Duration, can map[string]bool, outgoing bool) *fakeCall {
	sw := newSwitcher(Thresholds{}.orDefaults(Thresholds{}), hold, can, outgoing)
	sw.route = route // connected
	return &fakeCall{t: t, sw: sw, now: time.Unix(1e9, 0), route: route, loss: map[string]float64{}, down: map[string]bool{}}
}

func (f *fakeCall) emit(e client.Event) {
	e.Time = f.now
	f.evs = append(f.evs, e)
}

// run lets n seconds pass.
func (f *fakeCall) run(n int) {
	for range n {
		f.now = f.now.Add(time.Second)
		if l := f.next; l != nil && !f.down[l.route] && f.now.Sub(l.at) >= legDelay {
			f.next = nil
			f.route = l.route
			f.emit(f.sw.tookOver(l.route, l.reason))
		}
		var nextAt time.Time
		if f.next != nil {
			nextAt = f.next.at
		}
		d := f.sw.sample(media.Quality{Loss: f.loss[f.route], Route: f.route}, f.now, nextAt)
		for _, e := range d.events {
			f.emit(e)
		}
		if d.abandon != "" {
			f.emit(f.sw.abandoned(f.next.route, d.abandon))
			f.next = nil
		}
		if d.to != "" {
			if !f.sw.outgoing {
				f.t.Fatalf("the callee started a leg to %s", d.to)
			}
			f.next = &leg{route: d.to, reason: d.why, at: f.now}
		}
	}
}

// since returns the events of type typ after at.
func (f *fakeCall) since(typ string, at time.Time) []client.Event {
	var out []client.Event
	for _, e := range f.evs {
		if e.Type == typ && e.Time.After(at) {
			out = append(out, e)
		}
	}
	return out
}

func (f *fakeCall) String() string {
	var b strings.Builder
	for _, e := range f.evs {
		if e.Type != client.EventQuality {
			fmt.Fprintf(&b, "%s %s %s→%s %q; ", e.Time.Format("05"), e.Type, e.From, e.To, e.Reason)
		}
	}
	return b.String()
}

// checkMove checks a route event: from → to, because of loss.
func checkMove(t *testing.T, e client.Event, from, to string) {
	t.Helper()
	if e.From != from || e.To != to || e.Route != to || !strings.HasPrefix(e.Reason, "loss") {
		t.Errorf("route event %+v: want %s → %s because of loss", e, from, to)
	}
}

// Loss on the direct path moves the call to the relay after BadSamples
// samples, and it stays there (the hold-down keeps it off direct, which
// is still lossy): quality over the threshold, the route event, quality
// under it.
func TestSwitcherLoss(t *testing.T) {
	f := newFakeCall(t, signal.RouteDirect, RouteHoldDown, map[string]bool{signal.RouteDirect: true, signal.RouteRelayed: true}, true)
	f.run(3)
	if n := len(f.since(client.EventRoute, time.Time{})); n != 0 {
		t.Fatalf("%d route events without loss: %v", n, f)
	}
	start := f.now
	f.loss[signal.RouteDirect] = 0.25
	f.run(120)
	rs := f.since(client.EventRoute, start)
	if len(rs) != 1 {
		t.Fatalf("route events %v, want one (no flapping)", f)
	}
	checkMove(t, rs[0], signal.RouteDirect, signal.RouteRelayed)
	if took := rs[0].Time.Sub(start); took != BadSamples*time.Second+time.Second {
		t.Errorf("moved %v after the loss began, want the %d bad samples and the leg coming up by the next one", took, BadSamples)
	}
	qs := f.since(client.EventQuality, start)
	var before, after []client.Event
	for _, q := range qs {
		if q.Time.Before(rs[0].Time) {
			before = append(before, q)
		} else {
			after = append(after, q)
		}
	}
	if len(before) != BadSamples || before[len(before)-1].Loss <= DefaultMaxLoss || before[len(before)-1].Route != signal.RouteDirect {
		t.Errorf("quality before the route event %+v: want %d samples on direct over the threshold", before, BadSamples)
	}
	for _, q := range after {
		if q.Route != signal.RouteRelayed || q.Loss > DefaultMaxLoss {
			t.Fatalf("quality %+v after the move: want relayed under the threshold", q)
		}
	}
}

// A call relayed through its own node's relay, with loss on that relay's
// path, moves to the other node's relay (relayed-peer) and stays.
func TestSwitcherPeerRelay(t *testing.T) {
	can := map[string]bool{signal.RouteRelayed: true, signal.RouteRelayedPeer: true} // relay-only
	f := newFakeCall(t, signal.RouteRelayed, RouteHoldDown, can, true)
	f.run(2)
	start := f.now
	f.loss[signal.RouteRelayed] = 0.2
	f.run(60)
	rs := f.since(client.EventRoute, start)
	if len(rs) != 1 {
		t.Fatalf("route events %v, want one", f)
	}
	checkMove(t, rs[0], signal.RouteRelayed, signal.RouteRelayedPeer)
}

// A call moved from direct to the relay by loss moves back to direct when
// the relay loses packets, but not before the hold-down of the direct
// route is over; a call within one node has no other node's relay.
func TestSwitcherBackToDirect(t *testing.T) {
	f := newFakeCall(t, signal.RouteDirect, RouteHoldDown, map[string]bool{signal.RouteDirect: true, signal.RouteRelayed: true}, true)
	f.loss[signal.RouteDirect] = 0.25
	f.run(BadSamples + 1)
	rs := f.since(client.EventRoute, time.Time{})
	if len(rs) != 1 {
		t.Fatalf("route events %v, want the move to the relay", f)
	}
	checkMove(t, rs[0], signal.RouteDirect, signal.RouteRelayed)
	left := rs[0].Time.Add(-time.Second) // the sample that decided it

	// Now the direct path is clean and the relay's is not.
	f.loss[signal.RouteDirect], f.loss[signal.RouteRelayed] = 0, 0.2
	f.run(int(2 * RouteHoldDown / time.Second))
	rs = f.since(client.EventRoute, rs[0].Time)
	if len(rs) != 1 {
		t.Fatalf("route events %v, want one more: back to direct", f)
	}
	checkMove(t, rs[0], signal.RouteRelayed, signal.RouteDirect)
	if d := rs[0].Time.Sub(left); d < RouteHoldDown || d > RouteHoldDown+2*time.Second {
		t.Errorf("back on direct %v after leaving it, want right after the hold-down of %v", d, RouteHoldDown)
	}
	for _, q := range f.since(client.EventQuality, rs[0].Time) {
		if q.Route != signal.RouteDirect || q.Loss > DefaultMaxLoss {
			t.Fatalf("quality %+v after moving back: want direct under the threshold", q)
		}
	}
}

// A leg that does not come up within RerouteTimeout is given up with a
// warning; the call stays where it was and tries again while the quality
// stays bad.
func TestSwitcherRerouteTimeout(t *testing.T) {
	f := newFakeCall(t, signal.RouteDirect, RouteHoldDown, map[string]bool{signal.RouteDirect: true, signal.RouteRelayed: true}, true)
	f.loss[signal.RouteDirect] = 0.25
	f.down[signal.RouteRelayed] = true
	f.run(BadSamples + int(RerouteTimeout/time.Second) + 1)
	ws := f.since(client.EventWarning, time.Time{})
	if len(ws) != 1 || ws[0].Reason != "moving the call to the relayed route failed (timeout); it stays on the direct route" {
		t.Fatalf("warnings %+v, want the relayed leg given up", ws)
	}
	if len(f.since(client.EventRoute, time.Time{})) != 0 || f.next != nil {
		t.Fatalf("events %v: want no route change and no leg pending", f)
	}
	f.down[signal.RouteRelayed] = false
	f.run(BadSamples + 1)
	if rs := f.since(client.EventRoute, ws[0].Time); len(rs) != 1 {
		t.Fatalf("route events after the timeout %v, want the move tried again", f)
	} else {
		checkMove(t, rs[0], signal.RouteDirect, signal.RouteRelayed)
	}
}

// A route change the call did not make is reported too: "ice" when the
// ICE agent picked another pair, the other side's reason when it
// renegotiated the leg. The callee never moves the call itself.
func TestSwitcherFollows(t *testing.T) {
	f := newFakeCall(t, signal.RouteRelayed, RouteHoldDown, map[string]bool{signal.RouteDirect: true, signal.RouteRelayed: true}, false)
	f.loss[signal.RouteRelayed] = 0.5 // over the thresholds: still no move
	f.run(BadSamples + 2)
	f.route = signal.RouteDirect
	f.run(1)
	f.sw.updateWhy = ReasonMoved
	f.route = signal.RouteRelayed
	f.run(1)
	rs := f.since(client.EventRoute, time.Time{})
	if len(rs) != 2 || rs[0].Reason != "ice" || rs[0].To != signal.RouteDirect || rs[1].Reason != ReasonMoved || rs[1].To != signal.RouteRelayed {
		t.Fatalf("route events %v, want relayed → direct (ice), direct → relayed (%s)", f, ReasonMoved)
	}
}
