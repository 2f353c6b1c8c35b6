package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2/pb"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/irmv/irmv/call/turn/grant"
	"github.com/irmv/irmv/call/turn/portcheck"
	"github.com/irmv/irmv/node"

	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node/nodetest"
)

// TestWANCheckDoesNotStallIdentify: while the node checks a public
// address with a peer that never answers (AutoNAT v2 waits 15 s for it),
// identify's events still go through. libp2p's emitters wait for a
// subscriber whose buffer is full, and the check used to run on the
// subscription's own loop: 128 peers identified meanwhile stalled
// identify for every peer until the check gave up. The observed
// addresses are told by the test on the node's event bus; nothing is
// sent to them (only the silent peer is asked to dial them).
func TestWANCheckDoesNotStallIdentify(t *testing.T) {
	o := nodetest.Options(t)
	// A LAN address: observed public addresses are checked at its port.
	o.Listen = append(o.Listen, "/ip4/10.99.0.1/tcp/0")
	n := nodetest.Start(t, o)

	silent, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "silent peer", silent)
	asked, ended := make(chan struct{}), make(chan struct{})
	silent.SetStreamHandler(autonatv2.DialProtocol, func(s network.Stream) {
		select {
		case <-asked:
		default:
			close(asked)
		}
		buf := make([]byte, 1024)
		for {
			if _, err := s.Read(buf); err != nil {
				break // the asking node gave up
			}
		}
		s.Reset()
		select {
		case <-ended:
		default:
			close(ended)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := silent.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	h := n.Host()
	nodetest.WaitFor(t, "the node to learn the silent peer's AutoNAT v2", func() bool {
		ps, err := h.Peerstore().SupportsProtocols(silent.ID(), autonatv2.DialProtocol)
		return err == nil && len(ps) > 0
	})
	em, err := h.EventBus().Emitter(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "emitter", em)
	conn := h.Network().ConnsToPeer(silent.ID())[0]
	// Each address is told as seen from two networks (the connection's,
	// and one the event only says: nothing is sent to it), as a candidate
	// needs.
	elsewhere := &remoteAs{conn, ma.StringCast("/ip4/11.1.0.20/tcp/4001")}
	seen := func(i int) error {
		obs := ma.StringCast(fmt.Sprintf("/ip4/198.51.%d.%d/tcp/4001", i/250, i%250+1))
		if err := em.Emit(event.EvtPeerIdentificationCompleted{Peer: silent.ID(), Conn: elsewhere, ObservedAddr: obs}); err != nil {
			return err
		}
		return em.Emit(event.EvtPeerIdentificationCompleted{Peer: silent.ID(), Conn: conn, ObservedAddr: obs})
	}

	// A check under way with the silent peer. Each try is a new address
	// (one tried is not tried again for minutes).
	for i := 0; ; i++ {
		if err := seen(i); err != nil {
			t.Fatal(err)
		}
		select {
		case <-asked:
		case <-ctx.Done():
			t.Fatal("the node never asked the silent peer to check an address")
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	done := make(chan error, 1)
	go func() {
		for i := 1000; i < 3000; i++ {
			if err := seen(i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ended:
		t.Fatal("2,000 identify events waited for the address check to end")
	}
}

// lyingChecker is a peer whose AutoNAT v2 says of every address that it
// could not dial it back (as a malicious or broken checker does), without
// dialing anything. Each request it answers is sent on asked.
func lyingChecker(t *testing.T, listen string, asked chan<- peer.ID) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings(listen), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "checker", h)
	h.SetStreamHandler(autonatv2.DialProtocol, func(s network.Stream) {
		defer s.Close()
		var msg pb.Message
		if err := pbio.NewDelimitedReader(s, 8192).ReadMsg(&msg); err != nil || msg.GetDialRequest() == nil {
			s.Reset()
			return
		}
		resp := pb.Message{Msg: &pb.Message_DialResponse{DialResponse: &pb.DialResponse{
			Status: pb.DialResponse_OK, DialStatus: pb.DialStatus_E_DIAL_ERROR,
		}}}
		if err := pbio.NewDelimitedWriter(s).WriteMsg(&resp); err != nil {
			s.Reset()
			return
		}
		asked <- h.ID()
	})
	return h
}

// wanNode is a node that takes 11.0.0.104 for its confirmed public
// address (as AutoNAT v2 would, behind a 1:1 NAT) and checks it every
// second, connected to checkers listening at listen. With v1public,
// AutoNAT v1 is made to say public, as it would of such a node; else it
// has not said anything (unknown: a DHT server all the same). Nothing
// dials 11.0.0.104: the checkers only say they could not.
func wanNode(t *testing.T, asked chan peer.ID, v1public bool, listen ...string) *node.Node {
	t.Helper()
	return wanNodeWith(t, nodetest.Options(t), asked, v1public, listen...)
}

// wanNodeWith is wanNode with options o.
func wanNodeWith(t *testing.T, o node.Options, asked chan peer.ID, v1public bool, listen ...string) *node.Node {
	t.Helper()
	o.WANCheck = time.Second
	n := nodetest.Start(t, o)
	h := n.Host()
	em, err := h.EventBus().Emitter(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "emitter", em)
	want := node.ReachUnknown
	if v1public {
		want = node.ReachPublic
		if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic}); err != nil {
			t.Fatal(err)
		}
	}
	nodetest.WaitFor(t, "reachability "+want+", a DHT server", func() bool {
		i := n.Info()
		return i.Reachability == want && i.DHTMode == "server"
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, l := range listen {
		c := lyingChecker(t, l, asked)
		if err := h.Connect(ctx, peer.AddrInfo{ID: c.ID(), Addrs: c.Addrs()}); err != nil {
			t.Fatal(err)
		}
		nodetest.WaitFor(t, "the node to learn the checker's AutoNAT v2", func() bool {
			ps, err := h.Peerstore().SupportsProtocols(c.ID(), autonatv2.DialProtocol)
			return err == nil && len(ps) > 0
		})
	}
	n.AssumeWANForTest(ma.StringCast("/ip4/11.0.0.104/tcp/4001"))
	nodetest.WaitFor(t, "the public address taken", func() bool {
		return n.Info().WANAddr == "/ip4/11.0.0.104/tcp/4001"
	})
	return n
}

// waitAsked waits until count distinct checkers were asked.
func waitAsked(t *testing.T, asked <-chan peer.ID, count int) {
	t.Helper()
	seen := map[peer.ID]bool{}
	timeout := time.After(2 * time.Minute)
	for len(seen) < count {
		select {
		case p := <-asked:
			seen[p] = true
		case <-timeout:
			t.Fatalf("%d of %d checkers asked", len(seen), count)
		}
	}
}

// TestWANKeptAgainstOneNetwork: checkers in one network (127.0.0.0/16)
// that all say they could not dial the node's public address back do not
// make it withdraw the address. Once the first has failed, the others
// are not even asked (their failure would not count): the next check
// finds no checker in another network to ask, and the address is kept.
func TestWANKeptAgainstOneNetwork(t *testing.T) {
	asked := make(chan peer.ID, 16)
	const noPeer = "Public address not checked: no peer to ask now"
	l := &logRecords{msgs: map[string]bool{noPeer: true}, out: make(chan logRecord, 64)}
	o := nodetest.Options(t)
	o.Logger = slog.New(l)
	n := wanNodeWith(t, o, asked, true, "/ip4/127.0.0.1/tcp/0", "/ip4/127.0.7.1/tcp/0", "/ip4/127.0.9.1/tcp/0")
	waitAsked(t, asked, 1)
	waitLog(t, l, noPeer)
	if len(asked) > 0 {
		t.Fatalf("%d more checkers of the failed network asked", len(asked))
	}
	i := n.Info()
	if i.WANAddr != "/ip4/11.0.0.104/tcp/4001" || i.Reachability != node.ReachPublic {
		t.Fatalf("after failed dial-backs from one network: wan_addr %q, reachability %q; want kept",
			i.WANAddr, i.Reachability)
	}
}

// TestWANWithdrawnByTwoNetworks: checkers in two networks (127.0.0.0/16,
// 127.1.0.0/16) that both fail to dial the address back withdraw it, and
// the node, which AutoNAT v1 still calls public (or has not judged yet),
// is private at once: a DHT client with its TURN relay at its own
// address. Confirmed again, it is public again.
func TestWANWithdrawnByTwoNetworks(t *testing.T) {
	for _, v1public := range []bool{true, false} {
		t.Run(fmt.Sprintf("v1public=%v", v1public), func(t *testing.T) { testWANWithdrawn(t, v1public) })
	}
}

func testWANWithdrawn(t *testing.T, v1public bool) {
	asked := make(chan peer.ID, 16)
	n := wanNode(t, asked, v1public, "/ip4/127.0.0.1/tcp/0", "/ip4/127.1.0.1/tcp/0")
	nodetest.WaitFor(t, "the public address withdrawn", func() bool { return n.Info().WANAddr == "" })
	nodetest.WaitFor(t, "the node private, a DHT client", func() bool {
		i := n.Info()
		return i.Reachability == node.ReachPrivate && i.DHTMode == "client"
	})
	if ip := n.Info().TURNRelayIP; ip != "127.0.0.1" {
		t.Fatalf("turn_relay_ip %q after the withdrawal, want the relay's own 127.0.0.1", ip)
	}
	n.AssumeWANForTest(ma.StringCast("/ip4/11.0.0.104/tcp/4001"))
	nodetest.WaitFor(t, "the node public again, a DHT server", func() bool {
		i := n.Info()
		return i.WANAddr != "" && i.Reachability == node.ReachPublic && i.DHTMode == "server"
	})
}

// logSeen is a log handler that tells when a record with msg is logged.
type logSeen struct {
	msg  string
	seen chan struct{}
}

func (l *logSeen) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSeen) Handle(_ context.Context, r slog.Record) error {
	if r.Message == l.msg {
		select {
		case l.seen <- struct{}{}:
		default:
		}
	}
	return nil
}
func (l *logSeen) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSeen) WithGroup(string) slog.Handler      { return l }

// TestTURNPortChecked: a node that takes an address for its public one
// makes it its TURN relay's, and lends the relay, only once another node
// (over a real connection, sending a real STUN Binding request to the
// address it sees the node at) got an answer from the relay's port there.
// A relay on 127.0.0.1 answers at 127.0.0.1 (its listening port, and a
// relayed port of the node's own allocation); one on 10.99.0.1 only does
// not, and keeps its own address. (127.0.0.1 stands in for the public
// address: AutoNAT v2 checks no loopback address, so nothing withdraws
// it.)
func TestTURNPortChecked(t *testing.T) {
	checker := nodetest.Start(t, nodetest.Options(t))
	start := func(turnAddr string) (*node.Node, *logSeen) {
		o := nodetest.Options(t)
		o.TURN = turnAddr
		o.Bootstrap = []string{nodetest.LoopbackAddr(t, checker)}
		l := &logSeen{msg: "TURN relay not lent at the public address (--turn-relay-ip overrides)", seen: make(chan struct{}, 1)}
		o.Logger = slog.New(l)
		n := nodetest.Start(t, o)
		nodetest.WaitFor(t, "the checker's protocols", func() bool {
			ps, err := n.Host().Peerstore().SupportsProtocols(checker.ID(), portcheck.Protocol)
			return err == nil && len(ps) > 0
		})
		n.AssumeWANForTest(ma.StringCast("/ip4/127.0.0.1/tcp/4001"))
		return n, l
	}
	open, _ := start("127.0.0.1:0")
	nodetest.WaitFor(t, "the relay at the public address", func() bool { return open.Info().TURNRelayIP == "127.0.0.1" })
	nodetest.WaitFor(t, "the relay lent", func() bool {
		ps, err := checker.Host().Peerstore().SupportsProtocols(open.ID(), grant.Protocol)
		return err == nil && len(ps) > 0
	})

	closed, l := start("10.99.0.1:0")
	select {
	case <-l.seen:
	case <-time.After(2 * time.Minute):
		t.Fatal("the TURN port check never ended")
	}
	i := closed.Info()
	if i.WANAddr != "/ip4/127.0.0.1/tcp/4001" || i.TURNRelayIP != "10.99.0.1" {
		t.Fatalf("wan_addr %q, turn_relay_ip %q; want the address kept and the relay at its own 10.99.0.1", i.WANAddr, i.TURNRelayIP)
	}
	if ps, _ := checker.Host().Peerstore().SupportsProtocols(closed.ID(), grant.Protocol); len(ps) > 0 {
		t.Fatal("the relay is lent at an address where its port does not answer")
	}
}

// remoteAs is a connection that says it comes from remote (a pointer:
// libp2p keys maps by connection).
type remoteAs struct {
	network.Conn
	remote ma.Multiaddr
}

func (c *remoteAs) RemoteMultiaddr() ma.Multiaddr { return c.remote }
