package turn

import (
	"net"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
)

func TestPermitPeer(t *testing.T) {
	lan, lo := permitPeer(net.ParseIP("10.99.0.1")), permitPeer(net.ParseIP("127.0.0.1"))
	for _, tc := range []struct {
		peer         string
		onLAN, onLoo bool
	}{
		{"10.99.0.7", true, true},
		{"198.51.100.20", true, true},
		{"fd99::7", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"0.0.0.0", false, false},
		{"224.0.0.251", false, false},
		{"ff02::fb", false, false},
	} {
		ip := net.ParseIP(tc.peer)
		if got := lan(nil, ip); got != tc.onLAN {
			t.Errorf("relay on a LAN address, peer %s: %v, want %v", tc.peer, got, tc.onLAN)
		}
		if got := lo(nil, ip); got != tc.onLoo {
			t.Errorf("relay on loopback, peer %s: %v, want %v", tc.peer, got, tc.onLoo)
		}
	}
}

// TestRelayRefusesOwnLoopback: a relay on a LAN address does not carry a
// terminal's packets to the node's own loopback services. It needs the
// namespace address 10.99.0.1 (scripts/netns-run).
func TestRelayRefusesOwnLoopback(t *testing.T) {
	s, err := New(Options{ListenAddr: "10.99.0.1:0", RelayIP: net.ParseIP("10.99.0.1")})
	if err != nil {
		t.Fatalf("relay on 10.99.0.1: %v (run under scripts/netns-run, which has that address)", err)
	}
	defer s.Close()
	user, pass, _ := s.Credentials("mallory", time.Minute)
	conn, err := net.ListenPacket("udp4", "10.99.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: s.Addr().String(), TURNServerAddr: s.Addr().String(),
		Username: user, Password: pass, Realm: DefaultRealm, Conn: conn, RTO: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	inside, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	outside, err := net.ListenPacket("udp4", "10.99.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()

	// A LAN peer is reached; the loopback one is not.
	relay.WriteTo([]byte("to-lan"), outside.LocalAddr())
	relay.WriteTo([]byte("to-loopback"), inside.LocalAddr())
	buf := make([]byte, 64)
	outside.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := outside.ReadFrom(buf); err != nil || string(buf[:n]) != "to-lan" {
		t.Fatalf("LAN peer read %q, %v", buf[:n], err)
	}
	inside.SetReadDeadline(time.Now().Add(time.Second))
	if n, _, err := inside.ReadFrom(buf); err == nil {
		t.Fatalf("the relay carried %q to the node's own loopback", buf[:n])
	}
}

// TestForeignClientRelaysOnlyToRelay: a client that authenticated with a
// foreign user's credentials (another node's terminal) may relay only to
// this relay's own relayed address; one of our terminals anywhere the
// base policy allows.
func TestForeignClientRelaysOnlyToRelay(t *testing.T) {
	relayIP := net.ParseIP("198.51.100.1") // advertised, not bound
	s, err := New(Options{ListenAddr: "127.0.0.1:0", RelayIP: relayIP})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	permit := s.permit(permitPeer(net.ParseIP("10.99.0.1")))
	foreign := &net.UDPAddr{IP: net.ParseIP("203.0.113.5"), Port: 40000}
	own := &net.UDPAddr{IP: net.ParseIP("10.99.0.7"), Port: 40001}
	elsewhere := net.ParseIP("10.99.0.20")

	fu, _, _ := s.Credentials(ForeignPrefix+"12D3KooWother", time.Minute)
	ou, _, _ := s.Credentials("terminal-1", time.Minute)
	if _, ok := s.authenticate(fu, DefaultRealm, foreign, true); !ok {
		t.Fatal("foreign credentials refused")
	}
	if _, ok := s.authenticate(ou, DefaultRealm, own, true); !ok {
		t.Fatal("own credentials refused")
	}
	if !permit(foreign, relayIP) {
		t.Error("a foreign client may not relay to the relay's own address")
	}
	if permit(foreign, elsewhere) {
		t.Error("a foreign client may relay into the LAN")
	}
	if !permit(own, elsewhere) {
		t.Error("our terminal may not relay into the LAN")
	}
	// Expired foreign credentials mark nothing.
	stranger := &net.UDPAddr{IP: net.ParseIP("203.0.113.6"), Port: 40002}
	if _, ok := s.authenticate("1:"+ForeignPrefix+"x", DefaultRealm, stranger, true); ok {
		t.Fatal("expired credentials accepted")
	}
	if s.isForeign(stranger) {
		t.Error("expired credentials marked a client foreign")
	}
}
