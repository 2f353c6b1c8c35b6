package turn

import (
	"net"
	"testing"
	"time"
)

// TestCloseFreesRelays: when Close returns, the relay sockets of the
// allocations are closed, so their ports can be bound again at once.
func TestCloseFreesRelays(t *testing.T) {
	for range 10 {
		s, err := New(Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		user, pass, _ := s.Credentials("alice", time.Minute)
		c := newClient(t, s, user, pass)
		relay, err := c.Allocate()
		if err != nil {
			s.Close()
			t.Fatal(err)
		}
		addr := relay.LocalAddr().String()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ln, err := net.ListenPacket("udp4", addr)
		if err != nil {
			t.Fatalf("relay %s still bound after Close: %v", addr, err)
		}
		ln.Close()
		relay.Close()
	}
}
