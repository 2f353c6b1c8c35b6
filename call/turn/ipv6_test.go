package turn

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/transport/v5/test"
	pionturn "github.com/pion/turn/v5"

	"github.com/irmv/irmv/internal/testenv"
)

// allocate gets a relay from the server at server through a client socket
// on local, asking for family (0: the server's default).
func allocate(t *testing.T, s *Server, server net.Addr, local string, family pionturn.RequestedAddressFamily) net.PacketConn {
	t.Helper()
	conn, err := net.ListenPacket("udp", local)
	if err != nil {
		t.Fatal(err)
	}
	user, pass, _ := s.Credentials("alice", time.Minute)
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: server.String(), TURNServerAddr: server.String(),
		Username: user, Password: pass, Realm: DefaultRealm, Conn: conn,
		RTO: 100 * time.Millisecond, RequestedAddressFamily: family,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := conn.Close(); err != nil {
			t.Errorf("closing the client's socket: %v", err)
		}
	})
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate through %v from %s: %v", server, local, err)
	}
	testenv.Close(t, "relay", relay)
	return relay
}

// roundTrip sends through relay to a peer socket on peerIP and back.
func roundTrip(t *testing.T, relay net.PacketConn, peerIP string) {
	t.Helper()
	peer, err := net.ListenPacket("udp", net.JoinHostPort(peerIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "peer socket", peer)
	if _, err := relay.WriteTo([]byte("ping"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("ping")) {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err = relay.ReadFrom(buf); err != nil || !bytes.Equal(buf[:n], []byte("pong")) {
		t.Fatalf("relay read %q, %v", buf[:n], err)
	}
}

func relayIP(relay net.PacketConn) net.IP {
	a, _ := relay.LocalAddr().(*net.UDPAddr)
	if a == nil {
		return nil
	}
	return a.IP
}

// TestRelayIPv6: a relay on ::1 names it in its URLs and allocates IPv6
// relayed addresses that carry packets.
func TestRelayIPv6(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	s, err := New(Options{ListenAddr: "[::1]:0", RelayIP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "s", s)
	if got := s.ICEServers("u", time.Minute)[1].URLs; len(got) != 1 || !strings.HasPrefix(got[0], "turn:[::1]:") {
		t.Errorf("TURN URLs %q", got)
	}
	if a, ok := s.Addr().(*net.UDPAddr); !ok || !a.IP.Equal(net.IPv6loopback) {
		t.Errorf("listening on %v, want ::1", s.Addr())
	}
	relay := allocate(t, s, s.Addr(), "[::1]:0", 0)
	if ip := relayIP(relay); !ip.Equal(net.IPv6loopback) {
		t.Fatalf("relayed address %v, want ::1", relay.LocalAddr())
	}
	roundTrip(t, relay, "::1")
}

// TestRelayDualStack: a relay on all addresses listens on both families on
// one port, gives out a URL per family, and allocates relayed addresses of
// the family asked for, by default that of the socket reached. (An IPv4
// relay cannot be asked for over IPv6: pion's client leaves the attribute
// out for IPv4, RFC 6156 section 4.1.1, and pion's server then takes the
// socket's family, unless ServerConfig.StrictAddressFamily.) It binds
// the unspecified addresses, so it runs only in scripts/netns-run's
// private namespace (10.99.0.1 and fd99::1 on d0).
func TestRelayDualStack(t *testing.T) {
	testenv.Namespace(t)
	t.Cleanup(test.CheckRoutines(t))
	// RelayIP6 nil: the namespace's only global address, fd99::1, is found.
	s, err := New(Options{ListenAddr: "0.0.0.0:0", RelayIP: net.ParseIP("10.99.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "s", s)
	addrs := s.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("listening on %v, want an IPv4 and an IPv6 socket", addrs)
	}
	v4, v6 := addrs[0].(*net.UDPAddr), addrs[1].(*net.UDPAddr)
	if v4.IP.To4() == nil || v6.IP.To4() != nil || v4.Port != v6.Port {
		t.Fatalf("listening on %v, want 0.0.0.0 and [::] on one port", addrs)
	}
	servers := s.ICEServers("u", time.Minute)
	port := s.Addr().(*net.UDPAddr).Port
	wantTURN := []string{
		"turn:" + net.JoinHostPort("10.99.0.1", strconv.Itoa(port)) + "?transport=udp",
		"turn:" + net.JoinHostPort("fd99::1", strconv.Itoa(port)) + "?transport=udp",
	}
	if got := servers[1].URLs; strings.Join(got, " ") != strings.Join(wantTURN, " ") {
		t.Errorf("TURN URLs %q, want %q", got, wantTURN)
	}
	if got := servers[0].URLs; len(got) != 2 || got[1] != "stun:[fd99::1]:"+strconv.Itoa(port) {
		t.Errorf("STUN URLs %q", got)
	}
	at4 := &net.UDPAddr{IP: net.ParseIP("10.99.0.1"), Port: port}
	at6 := &net.UDPAddr{IP: net.ParseIP("fd99::1"), Port: port}
	for _, tc := range []struct {
		name   string
		server *net.UDPAddr
		local  string
		family pionturn.RequestedAddressFamily
		want   string
	}{
		{"over IPv4", at4, "10.99.0.1:0", 0, "10.99.0.1"},
		{"over IPv6", at6, "[fd99::1]:0", 0, "fd99::1"},
		{"IPv6 relay over IPv4", at4, "10.99.0.1:0", pionturn.RequestedAddressFamilyIPv6, "fd99::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := allocate(t, s, tc.server, tc.local, tc.family)
			if ip := relayIP(relay); !ip.Equal(net.ParseIP(tc.want)) {
				t.Fatalf("relayed address %v, want %s", relay.LocalAddr(), tc.want)
			}
			roundTrip(t, relay, tc.want)
		})
	}
}
