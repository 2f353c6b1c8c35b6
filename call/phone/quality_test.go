package phone

import (
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/media"
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
	m := newMonitor(Thresholds{}.orDefaults(Thresholds{}), true)
	now := time.Now()
	bad := media.Quality{Loss: 0.3, Route: media.RouteDirect}
	good := media.Quality{Route: media.RouteDirect}
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
	if to := step(bad); to != media.RouteRelayed {
		t.Fatalf("third bad sample: switch to %q, want relayed", to)
	}
	// While the change is under way, nothing else happens.
	if to := step(bad); to != "" {
		t.Fatalf("switch to %q while rerouting", to)
	}
	if r := m.settle(); r == nil || r.to != media.RouteRelayed || r.from != media.RouteDirect || !strings.HasPrefix(r.reason, "loss") {
		t.Fatalf("arrived: %+v", r)
	}
	// The relay is bad too, but direct was just left: hold down.
	badRelay := media.Quality{Loss: 0.3, Route: media.RouteRelayed}
	for i := range 10 {
		if to := step(badRelay); to != "" {
			t.Fatalf("sample %d after the switch: switch to %q within the hold-down", i, to)
		}
	}
	// It stayed bad all along: the first sample after the hold-down moves.
	now = now.Add(RouteHoldDown)
	if to := step(badRelay); to != media.RouteDirect {
		t.Fatalf("after the hold-down: switch to %q, want direct", to)
	}

	// A relay-only call never goes direct.
	m = newMonitor(Thresholds{}.orDefaults(Thresholds{}), false)
	for range 2 * BadSamples {
		if to := step(badRelay); to != "" {
			t.Fatalf("relay-only call: switch to %q", to)
		}
	}
}

func TestConfOf(t *testing.T) {
	id := newCallID()
	for in, want := range map[string]string{
		"conference:" + id:                  id,
		"conference:" + id[:31]:             "",
		"conference:" + strings.ToUpper(id): "",
		"hangup":                            "",
		"":                                  "",
	} {
		if got := confOf(in); got != want {
			t.Errorf("confOf(%q) = %q, want %q", in, got, want)
		}
	}
	if got := legRecordPath("/tmp/call.ogg", "bob"); got != "/tmp/call-bob.ogg" {
		t.Errorf("legRecordPath: %q", got)
	}
}
