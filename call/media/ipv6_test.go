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
)

// pion never gathers ::1 (ice's isSupportedIPv6Partial takes it for an
// IPv4-compatible address), so the test needs another IPv6 address of this
// machine: a unique local one (fc00::/7), such as the fd99::1 that
// scripts/netns-run can give its private namespace's ifb interface.
func localIPv6(t *testing.T) net.IP {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP[0]&0xfe == 0xfc {
			return n.IP
		}
	}
	t.Skip("no unique local IPv6 address (pion does not gather ::1); run in scripts/netns-run after: ip -6 addr add fd99::1/64 dev d0 nodad")
	return nil
}

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
	if r := p.caller.Route(); r != RouteDirect {
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
