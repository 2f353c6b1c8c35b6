package phone

import (
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
)

// switcher decides what a live call does about its route: fed the
// quality samples, the legs' progress and the time each happened, it
// says which events to emit and whether to start or give up a leg. It
// holds no peers and reads no clock: the live loop runs it on the wall
// clock, switcher_test.go on a fake one. Not safe for concurrent use: the
// call's live loop owns it.
type switcher struct {
	mon      *monitor
	outgoing bool   // the caller moves the call; the callee follows
	route    string // the route the call's events said last; "" before connected
	// updateWhy is the reason the other side gave for renegotiating the
	// current leg (an ICE restart): the route change it brings says so.
	updateWhy string
}

func newSwitcher(th Thresholds, holdDown time.Duration, can map[string]bool, outgoing bool) *switcher {
	return &switcher{mon: newMonitor(th, holdDown, can), outgoing: outgoing}
}

// decision is what a sample leads to: the events to emit, in order; the
// leg being brought up given up (abandon, why); a leg to start for route
// to, why.
type decision struct {
	events  []client.Event
	abandon string
	to, why string
}

// sample takes the quality q of the current leg (its Route named with
// routeName) at now; nextAt is when the leg being brought up started,
// zero if there is none.
func (s *switcher) sample(q media.Quality, now, nextAt time.Time) decision {
	d := decision{events: []client.Event{{Type: client.EventQuality, Loss: q.Loss, JitterMS: q.Jitter * 1000, RTTMS: q.RTT * 1000, Route: q.Route,
		NoAudioMS: q.NoAudio * 1000, Disconnected: q.Disconnected}}}
	if q.Route != s.route && q.Route != media.RouteUnknown {
		why := "ice" // the ICE agent picked another pair by itself
		if s.updateWhy != "" {
			why, s.updateWhy = s.updateWhy, ""
		}
		d.events = append(d.events, client.Event{Type: client.EventRoute, Route: q.Route, From: s.route, To: q.Route, Reason: why})
		s.route = q.Route
	}
	if !nextAt.IsZero() && now.Sub(nextAt) > RerouteTimeout {
		d.abandon = "timeout"
		return d // observed again at the next sample
	}
	if s.outgoing {
		d.to, d.why = s.mon.observe(q, now)
	}
	return d
}

// tookOver is the route event of a new leg (made for reason) that now
// carries the call on route to.
func (s *switcher) tookOver(to, reason string) client.Event {
	s.mon.settle()
	e := client.Event{Type: client.EventRoute, Route: to, From: s.route, To: to, Reason: reason}
	s.route = to
	return e
}

// abandoned is the warning for a leg made for route that was given up
// (why); the call stays where it is and may move again.
func (s *switcher) abandoned(route, why string) client.Event {
	s.mon.settle()
	return client.Event{Type: client.EventWarning, Reason: "moving the call to the " + route + " route failed (" + why + "); it stays on the " + s.route + " route"}
}

// rejoinRoute is the route a caller brings a new leg up on after a
// rejoin: the one it is on if it may still take it (can: the routes as
// they are now, on the node it is on now), else direct, else relayed.
func (s *switcher) rejoinRoute(can map[string]bool) string {
	switch {
	case s.route != "" && s.route != media.RouteUnknown && can[s.route]:
		return s.route
	case can[signal.RouteDirect]:
		return signal.RouteDirect
	}
	return signal.RouteRelayed
}
