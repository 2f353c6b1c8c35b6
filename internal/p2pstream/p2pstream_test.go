package p2pstream_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/internal/p2pstream"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
)

const echo = protocol.ID("/irmv-test/echo/1.0.0")

func newHost(t *testing.T, opts ...libp2p.Option) host.Host {
	t.Helper()
	h, err := libp2p.New(append([]libp2p.Option{libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "host", h)
	return h
}

// serveEcho answers each stream of the echo protocol with "re:" and what
// it read.
func serveEcho(h host.Host) {
	h.SetStreamHandler(echo, func(s network.Stream) {
		defer s.Close()
		b, err := io.ReadAll(s)
		if err != nil {
			s.Reset()
			return
		}
		s.Write(append([]byte("re:"), b...))
	})
}

// holdIdentify makes h answer identify requests only when the test ends,
// so that a peer's identify of h cannot finish during the test.
func holdIdentify(t *testing.T, h host.Host) {
	release := make(chan struct{})
	h.SetStreamHandler(identify.ID, func(s network.Stream) {
		<-release
		s.Reset()
	})
	t.Cleanup(func() { close(release) }) // before the hosts close
}

// identified reports whether a's identify of the peer on c has finished.
func identified(t *testing.T, a host.Host, c network.Conn) bool {
	ids := a.(interface{ IDService() identify.IDService }).IDService()
	select {
	case <-ids.IdentifyWait(c):
		return true
	default:
		return false
	}
}

func ask(t *testing.T, s network.Stream, msg string) (string, error) {
	t.Helper()
	if _, err := s.Write([]byte(msg)); err != nil {
		return "", err
	}
	if err := s.CloseWrite(); err != nil {
		return "", err
	}
	b, err := io.ReadAll(s)
	return string(b), err
}

// TestOpenDoesNotWaitForIdentify: on a new connection to a peer whose
// identify never answers, Open's request is answered; the host's own
// NewStream stays stuck in identify.
func TestOpenDoesNotWaitForIdentify(t *testing.T) {
	a, b := newHost(t), newHost(t)
	serveEcho(b)
	holdIdentify(t, b)
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.TempAddrTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s, err := p2pstream.Open(ctx, a, b.ID(), echo)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := ask(t, s, "ask")
	if err != nil || got != "re:ask" {
		t.Fatalf("answer %q, %v; want re:ask", got, err)
	}
	if identified(t, a, s.Conn()) {
		t.Fatal("identify finished although the peer never answered it")
	}
	if s.Protocol() != echo {
		t.Errorf("stream protocol %q, want %q", s.Protocol(), echo)
	}

	// The same peer through the host's NewStream: identify blocks it.
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer scancel()
	if s2, err := a.NewStream(sctx, b.ID(), echo); err == nil {
		s2.Reset()
		t.Fatal("host.NewStream opened a stream before identify finished: the test's identify hold does not work")
	} else if !strings.Contains(err.Error(), "identify") {
		t.Fatalf("host.NewStream: %v, want an identify time-out", err)
	}
}

// TestConnectDoesNotWaitForIdentify: Connect returns on a new connection
// before identify finishes, and reuses the connection afterwards.
func TestConnectDoesNotWaitForIdentify(t *testing.T) {
	a, b := newHost(t), newHost(t)
	holdIdentify(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p2pstream.Connect(ctx, a, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := a.Network().ConnsToPeer(b.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections to the peer, want 1", len(conns))
	}
	if identified(t, a, conns[0]) {
		t.Fatal("identify finished although the peer never answered it")
	}
	if err := p2pstream.Host(a).Connect(ctx, peer.AddrInfo{ID: b.ID()}); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Network().ConnsToPeer(b.ID())); n != 1 {
		t.Fatalf("%d connections after a second Connect, want 1", n)
	}
	if err := p2pstream.Connect(ctx, a, peer.AddrInfo{ID: a.ID()}); err == nil {
		t.Fatal("Connect to itself succeeded")
	}
}

// TestOpenProtocolNotSupported: a peer that does not speak the protocol
// gives an error on the first read, not a hang.
func TestOpenProtocolNotSupported(t *testing.T) {
	a, b := newHost(t), newHost(t)
	a.Peerstore().AddAddrs(b.ID(), b.Addrs(), peerstore.TempAddrTTL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := p2pstream.Open(ctx, a, b.ID(), echo)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := ask(t, s, "ask")
	if !errors.Is(err, p2pstream.ErrNotSupported) {
		t.Fatalf("answer %q, error %v; want not supported", got, err)
	}
}

func newDHT(t *testing.T, h host.Host) {
	t.Helper()
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/irmv-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
}

// TestDHTSenderCold: kad-dht answers a request and takes a message sent
// on a new connection before identify finished; without a DHT on the
// peer both fail at once.
func TestDHTSenderCold(t *testing.T) {
	a, b, c := newHost(t), newHost(t), newHost(t)
	newDHT(t, b)
	holdIdentify(t, b)
	holdIdentify(t, c)
	for _, h := range []host.Host{b, c} {
		a.Peerstore().AddAddrs(h.ID(), h.Addrs(), peerstore.TempAddrTTL)
	}
	m := p2pstream.NewDHTSender(a, []protocol.ID{"/irmv-test/kad/1.0.0"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	resp, err := m.SendRequest(ctx, b.ID(), pb.NewMessage(pb.Message_FIND_NODE, []byte("some key"), 0))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetType() != pb.Message_FIND_NODE {
		t.Fatalf("answer of type %v, want FIND_NODE", resp.GetType())
	}
	conns := a.Network().ConnsToPeer(b.ID())
	if len(conns) != 1 || identified(t, a, conns[0]) {
		t.Fatalf("%d connections, identified: the request waited for identify", len(conns))
	}
	if a.Peerstore().LatencyEWMA(b.ID()) <= 0 {
		t.Fatal("no latency recorded for the answered request (the flood sizes its wait from it)")
	}
	if err := m.SendMessage(ctx, b.ID(), pb.NewMessage(pb.Message_PING, nil, 0)); err != nil {
		t.Fatalf("SendMessage: %v", err)
	}

	if _, err := m.SendRequest(ctx, c.ID(), pb.NewMessage(pb.Message_FIND_NODE, []byte("some key"), 0)); !errors.Is(err, p2pstream.ErrNotSupported) {
		t.Fatalf("SendRequest to a peer without the DHT: %v, want not supported", err)
	}
	if err := m.SendMessage(ctx, c.ID(), pb.NewMessage(pb.Message_PING, nil, 0)); !errors.Is(err, p2pstream.ErrNotSupported) {
		t.Fatalf("SendMessage to a peer without the DHT: %v, want not supported", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the test's deadline passed: something waited")
	}
}

// TestOpenLimitedConn: with network.WithAllowLimitedConn, Open asks a peer
// reached only through a relay over the relayed connection.
func TestOpenLimitedConn(t *testing.T) {
	relay := newHost(t, libp2p.EnableRelayService(), libp2p.ForceReachabilityPublic())
	b := newHost(t, libp2p.EnableRelay())
	a := newHost(t, libp2p.EnableRelay())
	serveEcho(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ri := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	if err := b.Connect(ctx, ri); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, b, ri); err != nil {
		t.Fatal(err)
	}
	// The relay's real address, then the circuit through it.
	circuit := relay.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + relay.ID().String() + "/p2p-circuit"))
	a.Peerstore().AddAddr(b.ID(), circuit, peerstore.TempAddrTTL)

	s, err := p2pstream.Open(network.WithAllowLimitedConn(ctx, "test"), a, b.ID(), echo)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Conn().Stat().Limited {
		t.Fatal("the stream is not on the relayed (limited) connection")
	}
	got, err := ask(t, s, "via relay")
	if err != nil || got != "re:via relay" {
		t.Fatalf("answer %q, %v", got, err)
	}
}
