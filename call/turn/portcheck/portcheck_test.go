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
	ip, ok, err := Check(ctxT(t), asker, checker.ID(), relay.Addr().(*net.UDPAddr).Port)
	if err != nil || !ok || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("check: ip %v, answered %v, err %v; want 127.0.0.1, true", ip, ok, err)
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
	ip, ok, err := Check(ctxT(t), asker, checker.ID(), port)
	if err != nil || ok || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("mute port: ip %v, answered %v, err %v; want 127.0.0.1, false", ip, ok, err)
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
	if _, ok, err := Check(ctxT(t), asker, checker.ID(), port); err != nil || ok {
		t.Fatalf("closed port: answered %v, err %v; want false", ok, err)
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
		if _, _, err := Check(ctxT(t), asker, checker.ID(), port); !errors.Is(err, ErrRefused) {
			t.Errorf("port %d: err %v, want refused", port, err)
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
	if r := srv.answer(ma.StringCast("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/p2p-circuit"), asker.ID(), Request{Port: 9}); r.Error == "" {
		t.Errorf("relayed connection answered %+v", r)
	}
	// The quota: the bad ports above cost nothing; Burst checks pass.
	for i := range Burst {
		if _, _, err := Check(ctxT(t), asker, checker.ID(), 9); err != nil {
			t.Fatalf("check %d: %v", i+1, err)
		}
	}
	if _, _, err := Check(ctxT(t), asker, checker.ID(), 9); !errors.Is(err, ErrRefused) {
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
	if _, _, err := Check(ctxT(t), other, checker.ID(), 9); err != nil {
		t.Fatalf("another node: %v", err)
	}
}
