package portcheck

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/internal/wire"
)

// pair is an asking host connected to a checking host, both on 127.0.0.1.
func pair(t *testing.T) (asker, checker host.Host, srv *Server) {
	t.Helper()
	mk := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, "host", h)
		return h
	}
	asker, checker = mk(), mk()
	srv = Serve(checker, nil)
	testenv.Close(t, "server", srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := asker.Connect(ctx, peer.AddrInfo{ID: checker.ID(), Addrs: checker.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return asker, checker, srv
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestCheckAnswered: a node's real STUN/TURN relay answers the checker's
// Binding request at the address the checker sees the node at.
func TestCheckAnswered(t *testing.T) {
	asker, checker, _ := pair(t)
	relay, err := turn.New(turn.Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "relay", relay)
	r, err := Check(ctxT(t), asker, checker.ID(), relay.Addr().(*net.UDPAddr).Port, nil)
	if err != nil || !r.Answered || r.Sent || r.Relayed || !r.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("check: %+v, err %v; want 127.0.0.1, answered, nothing sent to a relayed port", r, err)
	}
}

// relayServer is a real STUN/TURN relay on 127.0.0.1 relaying on ports
// of min..max (0, 0: any).
func relayServer(t *testing.T, min, max uint16) *turn.Server {
	t.Helper()
	relay, err := turn.New(turn.Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MinPort: min, MaxPort: max})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "relay", relay)
	return relay
}

func allocate(t *testing.T, relay *turn.Server) *turn.SelfAllocation {
	t.Helper()
	a, err := relay.AllocateSelf(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "allocation", a)
	return a
}

// TestCheckRelayedPort: with an allocation on the asker's own relay, the
// checker also sends to the relayed port, and the nonce comes through
// the allocation (its permission let the checker's address in).
func TestCheckRelayedPort(t *testing.T) {
	asker, checker, _ := pair(t)
	relay := relayServer(t, 0, 0)
	a := allocate(t, relay)
	for i := range 2 { // one allocation serves several checks
		r, err := Check(ctxT(t), asker, checker.ID(), relay.Addr().(*net.UDPAddr).Port, a)
		if err != nil || !r.Answered || !r.Sent || !r.Relayed {
			t.Fatalf("check %d: %+v, err %v; want answered, sent, relayed", i+1, r, err)
		}
	}
}

// otherPort is an allocation that names another port than its own: a
// NAT that does not forward the relayed port to the relay.
type otherPort struct {
	*turn.SelfAllocation
	port int
}

func (o otherPort) Port() int { return o.port }

// notPermitted is an allocation that lets no one in.
type notPermitted struct{ *turn.SelfAllocation }

func (notPermitted) Permit(net.IP) error { return nil }

// TestCheckRelayedPortUnreachable: a relayed port the datagram does not
// reach (nothing there, or the relay's permission keeps the sender out)
// is not confirmed, though the TURN port answered.
func TestCheckRelayedPortUnreachable(t *testing.T) {
	asker, checker, _ := pair(t)
	relay := relayServer(t, 0, 0)
	a := allocate(t, relay)
	closed, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := closed.LocalAddr().(*net.UDPAddr).Port
	closed.Close()
	// A fresh allocation for the latter: the former's permits 127.0.0.1.
	for _, r := range []Relay{otherPort{a, port}, notPermitted{allocate(t, relay)}} {
		res, err := Check(ctxT(t), asker, checker.ID(), relay.Addr().(*net.UDPAddr).Port, r)
		if err != nil || !res.Answered || !res.Sent || res.Relayed {
			t.Fatalf("%T: %+v, err %v; want answered and sent, not relayed", r, res, err)
		}
	}
}

// TestCheckNotAnswered: a port where something takes the packets and
// never answers, and one where nothing listens, are not confirmed.
func TestCheckNotAnswered(t *testing.T) {
	asker, checker, _ := pair(t)
	mute, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 16)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := mute.ReadFrom(buf)
			if err != nil {
				close(got)
				return
			}
			got <- n
		}
	}()
	port := mute.LocalAddr().(*net.UDPAddr).Port
	a := allocate(t, relayServer(t, 0, 0))
	r, err := Check(ctxT(t), asker, checker.ID(), port, a)
	if err != nil || r.Answered || r.Sent || !r.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("mute port: %+v, err %v; want 127.0.0.1, not answered, nothing sent to the relayed port", r, err)
	}
	mute.Close()
	n := 0
	for size := range got {
		if size > 28 {
			t.Errorf("a %d-byte packet: want Binding requests of 28 bytes", size)
		}
		n++
	}
	if n < 1 || n > Tries {
		t.Errorf("%d packets sent, want 1..%d", n, Tries)
	}
	// Nothing there now (port unreachable).
	if r, err := Check(ctxT(t), asker, checker.ID(), port, nil); err != nil || r.Answered {
		t.Fatalf("closed port: %+v, err %v; want not answered", r, err)
	}
}

// TestCheckerSendsOnlyToTheAsker: a request cannot name the address to
// send to; the checker sends to the connection's remote IP.
func TestCheckerSendsOnlyToTheAsker(t *testing.T) {
	asker, checker, _ := pair(t)
	st, err := asker.NewStream(ctxT(t), checker.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Write(append([]byte{byte(len(`{"port":9,"ip":"10.99.0.1","addr":"10.99.0.1:9"}`))},
		`{"port":9,"ip":"10.99.0.1","addr":"10.99.0.1:9"}`...)); err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := wire.Read(bufio.NewReader(st), &resp, MaxResponse); err != nil {
		t.Fatal(err)
	}
	if resp.IP != "127.0.0.1" || resp.Answered {
		t.Fatalf("answer %+v: want sent to 127.0.0.1, not answered", resp)
	}
}

// TestCheckBadRequests: bad ports, garbage, over-long frames and relayed
// connections get an error or a reset and change nothing; a node over its
// quota is refused while another is still served.
func TestCheckBadRequests(t *testing.T) {
	asker, checker, srv := pair(t)
	for _, port := range []int{0, -1, 65536, 1 << 40} {
		if _, err := Check(ctxT(t), asker, checker.ID(), port, nil); !errors.Is(err, ErrRefused) {
			t.Errorf("port %d: err %v, want refused", port, err)
		}
	}
	for _, req := range []Request{{Port: 9, Relay: 9}, {Port: 9, Relay: 9, Nonce: make([]byte, NonceSize+1)}, {Port: 9, Relay: 65536, Nonce: make([]byte, NonceSize)}, {Port: 9, Relay: -1}} {
		if r := srv.answer(ma.StringCast("/ip4/127.0.0.1/tcp/1"), nil, asker.ID(), req); r.Error == "" {
			t.Errorf("request %+v answered %+v, want an error", req, r)
		}
	}
	for _, raw := range [][]byte{{0xff, 0xff, 0xff, 0xff, 0x0f}, {3, 'x', 'y', 'z'}, append([]byte{100}, strings.Repeat("a", 100)...)} {
		st, err := asker.NewStream(ctxT(t), checker.ID(), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		st.Write(raw)
		st.CloseWrite()
		if _, err := bufio.NewReader(st).ReadByte(); err == nil {
			t.Errorf("request %q answered, want the stream reset", raw)
		}
		st.Close()
	}
	if _, err := remoteIP(ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/p2p-circuit")); err == nil {
		t.Error("a relayed connection's address taken")
	}
	if r := srv.answer(ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/p2p-circuit"), nil, asker.ID(), Request{Port: 9}); r.Error == "" {
		t.Errorf("relayed connection answered %+v", r)
	}
	// The quota: the bad ports above cost nothing; Burst checks pass.
	for i := range Burst {
		if _, err := Check(ctxT(t), asker, checker.ID(), 9, nil); err != nil {
			t.Fatalf("check %d: %v", i+1, err)
		}
	}
	if _, err := Check(ctxT(t), asker, checker.ID(), 9, nil); !errors.Is(err, ErrRefused) {
		t.Fatalf("over the quota: err %v, want refused", err)
	}
	other, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "other", other)
	if err := other.Connect(ctxT(t), peer.AddrInfo{ID: checker.ID(), Addrs: checker.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctxT(t), other, checker.ID(), 9, nil); err != nil {
		t.Fatalf("another node: %v", err)
	}
}
