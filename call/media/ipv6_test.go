package media

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5/test"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/internal/testenv"
)

// localIPv6 is a unique local IPv6 address of this machine (see
// testenv.LocalIPv6).
func localIPv6(t *testing.T) net.IP { return testenv.LocalIPv6(t) }

// ipv6Engine gathers UDP candidates on ip only.
func ipv6Engine(ip net.IP) *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6})
	se.SetIPFilter(func(a net.IP) bool { return a.Equal(ip) })
	return se
}

// TestCallIPv6: two peers with nothing but one IPv6 address connect and
// carry audio.
func TestCallIPv6(t *testing.T) {
	ip := localIPv6(t)
	t.Cleanup(test.CheckRoutines(t))
	var received atomic.Int64
	p := newTapPair(t,
		Options{SettingEngine: ipv6Engine(ip)},
		Options{SettingEngine: ipv6Engine(ip), OnTrackPacket: func(*rtp.Packet) { received.Add(1) }})
	t.Cleanup(func() { p.close(t) })
	start := time.Now()
	p.negotiate(t, nil, nil)
	select {
	case <-p.caller.Connected():
	case <-time.After(waitLong):
		t.Fatalf("not connected; caller sent %q, callee sent %q", p.sent("caller"), p.sent("callee"))
	}
	wait(t, p.callee.Connected(), "callee connected")
	t.Logf("connected over IPv6 after %v", time.Since(start))
	if r := p.caller.Route(); r != signal.RouteDirect {
		t.Errorf("route %q, want direct", r)
	}
	for _, side := range []string{"caller", "callee"} {
		sent := p.sent(side)
		if len(sent) == 0 {
			t.Errorf("%s sent no candidates", side)
		}
		for _, c := range sent {
			if f := strings.Fields(c); len(f) < 5 || !net.ParseIP(f[4]).Equal(ip) {
				t.Errorf("%s candidate not on %s: %s", side, ip, c)
			}
		}
	}
	carriesAudio(t, p.pair, &received)
}
