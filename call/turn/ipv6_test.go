package turn

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestRelayIPv6: a relay can listen on ::1 and names it in its URLs.
// (Allocating through it is left to pion/ice: the pion/turn v4 client
// resolves its server address as IPv4 only.)
func TestRelayIPv6(t *testing.T) {
	s, err := New(Options{ListenAddr: "[::1]:0", RelayIP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if got := s.ICEServers("u", time.Minute)[1].URLs[0]; !strings.HasPrefix(got, "turn:[::1]:") {
		t.Errorf("TURN URL %q", got)
	}
	if a, ok := s.Addr().(*net.UDPAddr); !ok || !a.IP.Equal(net.IPv6loopback) {
		t.Errorf("listening on %v, want ::1", s.Addr())
	}
}
