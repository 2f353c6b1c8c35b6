package media

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v5/test"
	"github.com/pion/webrtc/v4"
)

// dualStackEngine gathers UDP host candidates on 127.0.0.1 and on v6 (a
// unique local address of this machine: pion never gathers ::1).
func dualStackEngine(v6 net.IP) *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetIPFilter(func(a net.IP) bool { return a.Equal(net.IPv4(127, 0, 0, 1)) || a.Equal(v6) })
	return se
}

// selectedPair is the ICE candidate pair p's transport selected, as
// "<local> <-> <remote>" with each end "protocol address", "" if none.
func selectedPair(p *Peer) string {
	t := p.iceTransport()
	if t == nil {
		return ""
	}
	cp, err := t.GetSelectedCandidatePair()
	if err != nil || cp == nil || cp.Local == nil || cp.Remote == nil {
		return ""
	}
	return fmt.Sprintf("%s %s <-> %s %s", cp.Local.Protocol, cp.Local.Address, cp.Remote.Protocol, cp.Remote.Address)
}

// isIPv6Pair tells whether both ends of a selectedPair are IPv6 addresses.
func isIPv6Pair(s string) bool {
	f := strings.Fields(s)
	if len(f) != 5 {
		return false
	}
	for _, a := range []string{f[1], f[4]} {
		if ip := net.ParseIP(a); ip == nil || ip.To4() != nil {
			return false
		}
	}
	return true
}

// TestDualStackPrefersIPv6: when both terminals have IPv4 and IPv6 host
// candidates, every call selects the IPv6 pair on both sides (RFC 8421),
// and keeps it once the IPv4 candidates have followed. Left to itself pion
// picks whichever pair succeeds first (about one call in four on IPv4
// here), so ten calls in a row all on IPv6 show the preference.
func TestDualStackPrefersIPv6(t *testing.T) {
	v6 := localIPv6(t)
	t.Cleanup(test.CheckRoutines(t))
	const calls = 10
	var v4 int
	for i := range calls {
		p := newTapPair(t, Options{SettingEngine: dualStackEngine(v6)}, Options{SettingEngine: dualStackEngine(v6)})
		start := time.Now()
		t.Cleanup(func() { p.close(t) })
		p.negotiate(t, nil, nil)
		wait(t, p.caller.Connected(), "caller connected")
		t.Logf("call %d connected after %v", i, time.Since(start))
		wait(t, p.callee.Connected(), "callee connected")
		// The IPv4 candidates follow within ipv6HeadStart; the pair stays.
		for _, side := range []string{"caller", "callee"} {
			deadline := time.Now().Add(waitLong)
			for !sentFamilies(p.sent(side)) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !sentFamilies(p.sent(side)) {
				t.Fatalf("call %d: %s did not send both IPv4 and IPv6 candidates: %q", i, side, p.sent(side))
			}
		}
		time.Sleep(ipv6HeadStart) // checks of the IPv4 pairs
		for name, peer := range map[string]*Peer{"caller": p.caller, "callee": p.callee} {
			if s := selectedPair(peer); !isIPv6Pair(s) {
				t.Errorf("call %d: %s selected %q, want IPv6 on both ends", i, name, s)
				v4++
			}
		}
		p.close(t)
	}
	if v4 > 0 {
		t.Logf("%d of %d selected pairs not IPv6", v4, 2*calls)
	}
}

// sentFamilies tells whether cs hold both IPv4 and IPv6 candidates.
func sentFamilies(cs []string) bool {
	var v4, v6 bool
	for _, c := range cs {
		switch candidateFamily(webrtc.ICECandidateInit{Candidate: c}) {
		case 4:
			v4 = true
		case 6:
			v6 = true
		}
	}
	return v4 && v6
}

// TestDualStackToIPv4Only: a dual-stack terminal and an IPv4-only one
// connect, whichever calls, within the IPv6 head start or so.
func TestDualStackToIPv4Only(t *testing.T) {
	v6 := localIPv6(t)
	t.Cleanup(test.CheckRoutines(t))
	for _, dualCalls := range []bool{true, false} {
		caller, callee := Options{SettingEngine: dualStackEngine(v6)}, Options{SettingEngine: loopbackEngine()}
		if !dualCalls {
			caller, callee = callee, caller
		}
		p := newPair(t, caller, callee)
		t.Cleanup(func() { p.close(t) })
		start := time.Now()
		p.negotiate(t, nil, nil)
		wait(t, p.caller.Connected(), "caller connected")
		wait(t, p.callee.Connected(), "callee connected")
		t.Logf("dual-stack caller %v: connected after %v", dualCalls, time.Since(start))
		if s := selectedPair(p.caller); strings.Count(s, "127.0.0.1") != 2 {
			t.Errorf("dual-stack caller %v: selected %q, want 127.0.0.1 on both ends", dualCalls, s)
		}
		p.close(t)
	}
}

func TestPreferIPv6(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", "candidate:1 1 udp 2130706175 127.0.0.1 5000 typ host"},
		{"candidate:1 1 udp 2130706431 fd99::1 5000 typ host", "candidate:1 1 udp 2130706431 fd99::1 5000 typ host"},
		// Host candidates only (see preferIPv6).
		{"candidate:1 1 udp 1694498815 192.0.2.1 5000 typ srflx raddr 10.0.0.1 rport 5000", "candidate:1 1 udp 1694498815 192.0.2.1 5000 typ srflx raddr 10.0.0.1 rport 5000"},
		{"candidate:1 1 udp 16777983 192.0.2.1 5000 typ relay raddr 0.0.0.0 rport 0", "candidate:1 1 udp 16777983 192.0.2.1 5000 typ relay raddr 0.0.0.0 rport 0"},
		{"candidate:1 1 udp 2113929471 127.0.0.1 5000 typ host", "candidate:1 1 udp 2113929471 127.0.0.1 5000 typ host"}, // local preference 0
		{"candidate:1 1 udp 2130706431 abc.local 5000 typ host", "candidate:1 1 udp 2130706431 abc.local 5000 typ host"},
		{"candidate:1 1 udp x 127.0.0.1 5000 typ host", "candidate:1 1 udp x 127.0.0.1 5000 typ host"},
		{"", ""},
	} {
		if got := preferIPv6(webrtc.ICECandidateInit{Candidate: tc.in}).Candidate; got != tc.want {
			t.Errorf("preferIPv6(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	sdp := "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=candidate:2 1 udp 2130706431 fd99::1 5001 typ host\r\na=end-of-candidates\r\n"
	want := "v=0\r\na=candidate:1 1 udp 2130706175 127.0.0.1 5000 typ host\r\na=candidate:2 1 udp 2130706431 fd99::1 5001 typ host\r\na=end-of-candidates\r\n"
	if got := preferIPv6SDP(sdp); got != want {
		t.Errorf("preferIPv6SDP:\n%q\nwant\n%q", got, want)
	}
}
