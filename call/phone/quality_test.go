package phone

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
)

func TestThresholds(t *testing.T) {
	th := Thresholds{MaxJitter: -1}.orDefaults(Thresholds{MaxRTT: time.Second})
	if th.MaxLoss != DefaultMaxLoss || th.MaxJitter != -1 || th.MaxRTT != time.Second {
		t.Fatalf("orDefaults: %+v", th)
	}
	for _, tc := range []struct {
		q    media.Quality
		want string
	}{
		{media.Quality{Loss: 0.01, Jitter: 0.01, RTT: 0.1}, ""},
		{media.Quality{Loss: 0.2}, "loss 20.0% > 5.0%"},
		{media.Quality{Jitter: 5}, ""}, // jitter check off
		{media.Quality{RTT: 1.5}, "rtt 1500 ms > 1000 ms"},
	} {
		if got := th.exceeded(tc.q); got != tc.want {
			t.Errorf("exceeded(%+v) = %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestMonitor(t *testing.T) {
	twoRoutes := map[string]bool{signal.RouteDirect: true, signal.RouteRelayed: true}
	m := newMonitor(Thresholds{}.orDefaults(Thresholds{}), RouteHoldDown, twoRoutes)
	now := time.Now()
	bad := media.Quality{Loss: 0.3, Route: signal.RouteDirect}
	good := media.Quality{Route: signal.RouteDirect}
	step := func(q media.Quality) string {
		now = now.Add(time.Second)
		to, _ := m.observe(q, now)
		return to
	}
	// Two bad samples, a good one: no switch; three bad in a row: switch.
	for i, q := range []media.Quality{bad, bad, good, bad, bad} {
		if to := step(q); to != "" {
			t.Fatalf("sample %d: switch to %q", i, to)
		}
	}
	if to := step(bad); to != signal.RouteRelayed {
		t.Fatalf("third bad sample: switch to %q, want relayed", to)
	}
	// While the change is under way, nothing else happens.
	if to := step(bad); to != "" {
		t.Fatalf("switch to %q while rerouting", to)
	}
	if r := m.settle(); r == nil || r.to != signal.RouteRelayed || r.from != signal.RouteDirect || !strings.HasPrefix(r.reason, "loss") {
		t.Fatalf("arrived: %+v", r)
	}
	// The relay is bad too, but direct was just left: hold down.
	badRelay := media.Quality{Loss: 0.3, Route: signal.RouteRelayed}
	for i := range 10 {
		if to := step(badRelay); to != "" {
			t.Fatalf("sample %d after the switch: switch to %q within the hold-down", i, to)
		}
	}
	// It stayed bad all along: the first sample after the hold-down moves.
	now = now.Add(RouteHoldDown)
	if to := step(badRelay); to != signal.RouteDirect {
		t.Fatalf("after the hold-down: switch to %q, want direct", to)
	}

	// A relay-only call never goes direct.
	m = newMonitor(Thresholds{}.orDefaults(Thresholds{}), RouteHoldDown, map[string]bool{signal.RouteRelayed: true})
	for range 2 * BadSamples {
		if to := step(badRelay); to != "" {
			t.Fatalf("relay-only call: switch to %q", to)
		}
	}
}

// With the other node's relay the routes go round: direct, relayed,
// relayed-peer, direct, skipping those in their hold-down and those the
// call cannot take.
func TestMonitorPeerRelay(t *testing.T) {
	const hold = 2 * time.Second
	all := map[string]bool{signal.RouteDirect: true, signal.RouteRelayed: true, signal.RouteRelayedPeer: true}
	m := newMonitor(Thresholds{}.orDefaults(Thresholds{}), hold, all)
	now := time.Now()
	// switchFrom feeds bad samples on route until the monitor moves.
	switchFrom := func(route string) string {
		t.Helper()
		for range BadSamples + 2 {
			now = now.Add(time.Second / 4) // within the hold-down
			if to, _ := m.observe(media.Quality{Loss: 0.3, Route: route}, now); to != "" {
				m.settle()
				return to
			}
		}
		return ""
	}
	for _, want := range []struct{ from, to string }{
		{signal.RouteDirect, signal.RouteRelayed},
		{signal.RouteRelayed, signal.RouteRelayedPeer},
		{signal.RouteRelayedPeer, signal.RouteDirect},
	} {
		if got := switchFrom(want.from); got != want.to {
			t.Fatalf("bad %s: switch to %q, want %s", want.from, got, want.to)
		}
		now = now.Add(hold) // the next one is out of its hold-down
	}
	// Both relays left just now: from direct the call stays.
	m.left = map[string]time.Time{signal.RouteRelayed: now, signal.RouteRelayedPeer: now}
	if got := switchFrom(signal.RouteDirect); got != "" {
		t.Fatalf("both relays in their hold-down: switch to %q", got)
	}
	// Only relayed in its hold-down: direct goes to relayed-peer.
	m.left = map[string]time.Time{signal.RouteRelayed: now}
	if got := switchFrom(signal.RouteDirect); got != signal.RouteRelayedPeer {
		t.Fatalf("relayed in its hold-down: switch to %q, want relayed-peer", got)
	}
	// No peer relay (a call within one node): relayed and direct only.
	m = newMonitor(Thresholds{}.orDefaults(Thresholds{}), hold, map[string]bool{signal.RouteDirect: true, signal.RouteRelayed: true})
	if got := switchFrom(signal.RouteRelayed); got != signal.RouteDirect {
		t.Fatalf("no peer relay: relayed switches to %q, want direct", got)
	}
}

func TestConferenceIDAndRecordPath(t *testing.T) {
	id := newCallID()
	for in, want := range map[string]bool{
		id:                  true,
		id[:31]:             false,
		strings.ToUpper(id): false,
		"":                  false,
	} {
		if got := validID(in); got != want {
			t.Errorf("validID(%q) = %v, want %v", in, got, want)
		}
	}
	if got := legRecordPath("/tmp/call.ogg", "bob"); got != "/tmp/call-bob.ogg" {
		t.Errorf("legRecordPath: %q", got)
	}
}

// monitorCase is a call's samples with the moves they make, for the
// monitor here and the web page's monitor.js alike (node
// TestBrowserMonitorCases). Thresholds in seconds; missing ones are the
// defaults.
type monitorCase struct {
	Name       string          `json:"name"`
	Can        map[string]bool `json:"can"`
	Thresholds struct {
		MaxLoss   float64 `json:"max_loss"`
		MaxJitter float64 `json:"max_jitter"`
		MaxRTT    float64 `json:"max_rtt"`
	} `json:"thresholds"`
	Steps []struct {
		T      float64       `json:"t"` // seconds into the call
		Q      media.Quality `json:"q"`
		Settle bool          `json:"settle"`
		To     string        `json:"to"`
		Reason string        `json:"reason"`
	} `json:"steps"`
}

func TestMonitorCases(t *testing.T) {
	data, err := os.ReadFile("testdata/monitor-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []monitorCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	secs := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			th := Thresholds{MaxLoss: tc.Thresholds.MaxLoss, MaxJitter: secs(tc.Thresholds.MaxJitter), MaxRTT: secs(tc.Thresholds.MaxRTT)}
			m := newMonitor(th.orDefaults(Thresholds{}), RouteHoldDown, tc.Can)
			start := time.Unix(1e9, 0)
			for i, s := range tc.Steps {
				if s.Settle {
					m.settle()
					continue
				}
				to, why := m.observe(s.Q, start.Add(secs(s.T)))
				if to != s.To || why != s.Reason && to != "" {
					t.Errorf("step %d (%+v): move to %q (%s), want %q (%s)", i, s.Q, to, why, s.To, s.Reason)
				}
			}
		})
	}
}
