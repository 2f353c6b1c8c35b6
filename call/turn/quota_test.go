package turn

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/internal/testenv"
)

// allocsOf is how many allocations foreign user holds, as the relay counts.
func (s *Server) allocsOf(user string) int {
	s.allocsMu.Lock()
	defer s.allocsMu.Unlock()
	return s.allocs[user]
}

// TestForeignAllocationQuota: a foreign user holds at most
// MaxForeignAllocations allocations at once, however few credentials it
// asked for; closing one frees its place; the node's own terminals are not
// limited by it.
func TestForeignAllocationQuota(t *testing.T) {
	s, err := New(Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MaxForeignAllocations: 2})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "TURN server", s)
	user := ForeignPrefix + "12D3KooWnode"
	u, p, _ := s.Credentials(user, time.Minute) // one grant, several allocations
	a1, err := newClient(t, s, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	a2, err := newClient(t, s, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if a3, err := newClient(t, s, u, p).Allocate(); err == nil {
		a3.Close()
		t.Fatal("a third allocation was granted over the quota of 2")
	}
	// Another node's terminals have their own quota.
	u2, p2, _ := s.Credentials(ForeignPrefix+"12D3KooWother", time.Minute)
	b, err := newClient(t, s, u2, p2).Allocate()
	if err != nil {
		t.Fatalf("another node's allocation: %v", err)
	}
	defer b.Close()
	// Closing one frees its place.
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.allocsOf(user) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d allocations counted after one of two closed", s.allocsOf(user))
		}
		time.Sleep(10 * time.Millisecond)
	}
	a4, err := newClient(t, s, u, p).Allocate()
	if err != nil {
		t.Fatalf("allocation after one was closed: %v", err)
	}
	defer a4.Close()
	// Our own terminals: no such quota.
	ou, op, _ := s.Credentials("bob", time.Minute)
	for i := range 3 {
		r, err := newClient(t, s, ou, op).Allocate()
		if err != nil {
			t.Fatalf("own terminal's allocation %d: %v", i+1, err)
		}
		defer r.Close()
	}
}

// TestAllocationOutlivesCredentials: credentials that expire during a call
// keep its allocation working (a permission for a new peer is still
// granted and relays), while they no longer make new allocations.
func TestAllocationOutlivesCredentials(t *testing.T) {
	s := startServer(t)
	u, p, exp := s.Credentials("alice", 2*time.Second)
	c := newClient(t, s, u, p)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	for !time.Now().After(exp.Add(100 * time.Millisecond)) {
		time.Sleep(50 * time.Millisecond) // waiting for the clock itself
	}
	if r, err := newClient(t, s, u, p).Allocate(); err == nil {
		r.Close()
		t.Fatal("expired credentials made a new allocation")
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// A new peer needs a CreatePermission, authenticated with the expired
	// credentials.
	if _, err := relay.WriteTo([]byte("late"), peer.LocalAddr()); err != nil {
		t.Fatalf("permission after expiry: %v", err)
	}
	buf := make([]byte, 100)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := peer.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("late")) {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
}

// TestSetPublicIP: once a NAT's public address is known, relayed
// addresses and the URLs for foreign users carry it; the node's own
// terminals keep the address they reach the relay at.
func TestSetPublicIP(t *testing.T) {
	s := startServer(t)
	pub := net.IPv4(11, 0, 0, 5) // only named, never sent to
	s.SetPublicIP(pub)
	if !s.PublicIP().Equal(pub) {
		t.Fatalf("PublicIP() = %v", s.PublicIP())
	}
	u, p, _ := s.Credentials("alice", time.Minute)
	relay, err := newClient(t, s, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if ip := relay.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(pub) {
		t.Errorf("relayed address %v, want the public %v", relay.LocalAddr(), pub)
	}
	foreign := s.ICEServers(ForeignPrefix+"12D3KooWnode", time.Minute)
	own := s.ICEServers("alice", time.Minute)
	if !strings.Contains(foreign[1].URLs[0], "11.0.0.5:") || !strings.Contains(own[1].URLs[0], "127.0.0.1:") {
		t.Errorf("foreign URLs %v, own URLs %v: want the public address for foreign users only", foreign[1].URLs, own[1].URLs)
	}
	allowed := s.permit(permitPeer(net.IPv4(127, 0, 0, 1)))
	client := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	s.noteForeign(client, time.Now().Add(time.Minute))
	if !allowed(client, pub) || allowed(client, net.IPv4(11, 0, 0, 9)) {
		t.Error("a foreign client may relay to the public relay address, and only there")
	}

	// Withdrawn (the NAT stopped forwarding): the relay's own address
	// again, for new allocations and for foreign users' URLs.
	s.SetPublicIP(nil)
	if ip := s.PublicIP(); !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("PublicIP() after withdrawal = %v, want the relay's own 127.0.0.1", ip)
	}
	relay2, err := newClient(t, s, u, p).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay2.Close()
	if ip := relay2.LocalAddr().(*net.UDPAddr).IP; ip.Equal(pub) {
		t.Errorf("relayed address %v after withdrawal: still the withdrawn %v", relay2.LocalAddr(), pub)
	}
	if f := s.ICEServers(ForeignPrefix+"12D3KooWnode", time.Minute); strings.Contains(f[1].URLs[0], "11.0.0.5:") {
		t.Errorf("foreign URLs %v after withdrawal: still the withdrawn address", f[1].URLs)
	}
	if allowed(client, pub) {
		t.Error("a foreign client may still relay to the withdrawn address")
	}
}

// TestForeignAllocationTotal: all foreign users together hold at most
// MaxForeignTotal allocations (peer IDs are free: without it, every
// made-up node got its own MaxForeignAllocations, up to one allocation
// per remembered foreign client, 4,096: as many sockets);
// a freed one makes room; the node's own terminals are not limited by it.
func TestForeignAllocationTotal(t *testing.T) {
	s, err := New(Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MaxForeignAllocations: 2, MaxForeignTotal: 3})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "TURN server", s)
	userA := ForeignPrefix + "12D3KooWone"
	ua, pa, _ := s.Credentials(userA, time.Minute)
	ub, pb, _ := s.Credentials(ForeignPrefix+"12D3KooWtwo", time.Minute)
	a1, err := newClient(t, s, ua, pa).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ u, p string }{{ua, pa}, {ub, pb}} {
		r, err := newClient(t, s, c.u, c.p).Allocate()
		if err != nil {
			t.Fatalf("%s: %v", c.u, err)
		}
		defer r.Close()
	}
	if r, err := newClient(t, s, ub, pb).Allocate(); err == nil {
		r.Close()
		t.Fatal("a fourth foreign allocation was granted over the total of 3")
	}
	ou, op, _ := s.Credentials("bob", time.Minute)
	own, err := newClient(t, s, ou, op).Allocate()
	if err != nil {
		t.Fatalf("own terminal's allocation at the foreign total: %v", err)
	}
	defer own.Close()
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.allocsOf(userA) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d allocations counted after one of two closed", s.allocsOf(userA))
		}
		time.Sleep(10 * time.Millisecond)
	}
	r, err := newClient(t, s, ub, pb).Allocate()
	if err != nil {
		t.Fatalf("a foreign allocation once one was freed: %v", err)
	}
	defer r.Close()
}
