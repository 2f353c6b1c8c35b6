package media

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/transport/v5/test"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/internal/testenv"
)

// TestRelayOnlyCallIPv6: two relay-only peers call each other through a
// TURN relay on ::1, with IPv6 relayed addresses, and carry audio. The
// peers' sockets are on fd99::1: with an IP filter pion binds its TURN
// client sockets to the filtered addresses, and never gathers ::1.
func TestRelayOnlyCallIPv6(t *testing.T) {
	ip := localIPv6(t)
	t.Cleanup(test.CheckRoutines(t))
	srv, err := turn.New(turn.Options{ListenAddr: "[::1]:0", RelayIP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "srv", srv)

	var received atomic.Int64
	p := newTapPair(t,
		Options{SettingEngine: ipv6Engine(ip), RelayOnly: true, ICEServers: srv.ICEServers("caller", time.Minute)},
		Options{SettingEngine: ipv6Engine(ip), RelayOnly: true, ICEServers: srv.ICEServers("callee", time.Minute),
			OnTrackPacket: func(*rtp.Packet) { received.Add(1) }})
	t.Cleanup(func() { p.close(t) })
	start := time.Now()
	p.negotiate(t, nil, nil)
	select {
	case <-p.caller.Connected():
	case <-time.After(waitLong):
		t.Fatalf("not connected; caller sent %q, callee sent %q", p.sent("caller"), p.sent("callee"))
	}
	wait(t, p.callee.Connected(), "callee connected")
	t.Logf("connected through the IPv6 relay after %v", time.Since(start))
	for _, side := range []string{"caller", "callee"} {
		sent := p.sent(side)
		if len(sent) == 0 {
			t.Errorf("%s sent no candidates", side)
		}
		for _, c := range sent {
			if f := strings.Fields(c); len(f) < 8 || f[7] != "relay" || !net.ParseIP(f[4]).Equal(net.IPv6loopback) {
				t.Errorf("%s sent %q, want relayed candidates on ::1 only", side, c)
			}
		}
	}
	for name, peer := range map[string]*Peer{"caller": p.caller, "callee": p.callee} {
		if r := peer.Route(); r != signal.RouteRelayed {
			t.Errorf("%s route %q, want relayed", name, r)
		}
		if s := selectedPair(peer); !isIPv6Pair(s) {
			t.Errorf("%s selected %q, want IPv6 on both ends", name, s)
		}
	}
	carriesAudio(t, p.pair, &received)
}
