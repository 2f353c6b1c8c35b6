package phone

import (
	"fmt"
	"strings"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/policy"
	"github.com/irmv/irmv/call/signal"
)

// Quality thresholds and route switching (call/policy, which the node
// serves to the web page too); see the package doc.
const (
	// DefaultMaxLoss is the packet loss (a fraction) a call tolerates.
	DefaultMaxLoss = policy.DefaultMaxLoss
	// DefaultMaxJitter is the interarrival jitter a call tolerates.
	DefaultMaxJitter = policy.DefaultMaxJitter
	// DefaultMaxRTT is the round-trip time a call tolerates.
	DefaultMaxRTT = policy.DefaultMaxRTT
	// BadSamples is how many consecutive one-second samples over a
	// threshold move the call to another route.
	BadSamples = policy.BadSamples
	// RouteHoldDown is how long a route that was left is not taken again,
	// unless Options.RouteHoldDown says otherwise.
	RouteHoldDown = policy.RouteHoldDown
	// RerouteTimeout is how long a new leg may take to come up before the
	// call gives it up and stays where it is.
	RerouteTimeout = policy.RerouteTimeout
)

// Thresholds are the worst quality a call tolerates before it moves to
// another route. A zero field means its default, a negative one turns that
// check off.
type Thresholds struct {
	MaxLoss   float64       // fraction of packets lost, 0..1
	MaxJitter time.Duration // interarrival jitter
	MaxRTT    time.Duration // round-trip time
}

// orDefaults fills in the zero fields from d, then the defaults.
func (t Thresholds) orDefaults(d Thresholds) Thresholds {
	if t.MaxLoss == 0 {
		t.MaxLoss = d.MaxLoss
	}
	if t.MaxJitter == 0 {
		t.MaxJitter = d.MaxJitter
	}
	if t.MaxRTT == 0 {
		t.MaxRTT = d.MaxRTT
	}
	if t.MaxLoss == 0 {
		t.MaxLoss = DefaultMaxLoss
	}
	if t.MaxJitter == 0 {
		t.MaxJitter = DefaultMaxJitter
	}
	if t.MaxRTT == 0 {
		t.MaxRTT = DefaultMaxRTT
	}
	return t
}

// exceeded says which threshold q is over, "" if none.
func (t Thresholds) exceeded(q media.Quality) string {
	switch {
	case t.MaxLoss > 0 && q.Loss > t.MaxLoss:
		return fmt.Sprintf("loss %.1f%% > %.1f%%", q.Loss*100, t.MaxLoss*100)
	case t.MaxJitter > 0 && q.Jitter > t.MaxJitter.Seconds():
		return fmt.Sprintf("jitter %.0f ms > %.0f ms", q.Jitter*1000, ms(t.MaxJitter))
	case t.MaxRTT > 0 && q.RTT > t.MaxRTT.Seconds():
		return fmt.Sprintf("rtt %.0f ms > %.0f ms", q.RTT*1000, ms(t.MaxRTT))
	}
	return ""
}

// monitor decides when a call moves to another route. Not safe for
// concurrent use: the call's live loop owns it.
type monitor struct {
	th       Thresholds
	holdDown time.Duration
	can      map[string]bool      // the routes this call may take
	bad      int                  // consecutive samples over a threshold
	left     map[string]time.Time // route → when the call left it
	pending  *reroute             // a route change under way
}

// reroute is a route change under way.
type reroute struct {
	from, to, reason string
	at               time.Time
}

// routeOrder is the order in which a call tries the routes: from a bad
// route it moves to the next one in it (after the last, the first) that
// it may take and has not left within the hold-down.
var routeOrder = policy.RouteOrder

// newMonitor watches a call that may take the routes of can (those
// missing or false are skipped).
func newMonitor(th Thresholds, holdDown time.Duration, can map[string]bool) *monitor {
	return &monitor{th: th, holdDown: holdDown, can: can, left: map[string]time.Time{}}
}

// next is the route to try when route is bad at now, "" if there is none.
func (m *monitor) next(route string, now time.Time) string {
	i := 0
	for i < len(routeOrder) && routeOrder[i] != route {
		i++
	}
	if i == len(routeOrder) {
		return ""
	}
	for k := 1; k < len(routeOrder); k++ {
		to := routeOrder[(i+k)%len(routeOrder)]
		if at, held := m.left[to]; !m.can[to] || held && now.Sub(at) < m.holdDown {
			continue
		}
		return to
	}
	return ""
}

// hasTURN reports whether servers include a TURN server: the relayed
// routes need one.
func hasTURN(servers []signal.ICEServer) bool {
	for _, s := range servers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
				return true
			}
		}
	}
	return false
}

// observe takes a sample and returns the route to move to and why, or ""
// to stay. A route left less than the hold-down ago is not taken again.
func (m *monitor) observe(q media.Quality, now time.Time) (to, reason string) {
	if m.pending != nil || q.Route == media.RouteUnknown {
		return "", ""
	}
	reason = m.th.exceeded(q)
	if reason == "" {
		m.bad = 0
		return "", ""
	}
	m.bad++
	if m.bad < BadSamples {
		return "", ""
	}
	to = m.next(q.Route, now)
	if to == "" {
		return "", ""
	}
	m.bad = 0
	m.left[q.Route] = now
	m.pending = &reroute{from: q.Route, to: to, reason: reason, at: now}
	return to, reason
}

// settle ends the pending change (its leg took over or was given up); it
// returns the change, nil if none was pending.
func (m *monitor) settle() *reroute {
	r := m.pending
	m.pending = nil
	return r
}

// sipLegRTT is a bridged call's round trip between the bridging node and
// the SIP phone, in ms: what the RTCP reports' round trip, which the
// bridge makes span both legs, has beyond the WebRTC leg's (the selected
// pair's). Nil while either is not known.
func sipLegRTT(q media.Quality) *float64 {
	if q.ReportRTT <= 0 || q.RTT <= 0 || q.RTT == q.ReportRTT {
		return nil
	}
	ms := max(q.ReportRTT-q.RTT, 0) * 1000
	return &ms
}
