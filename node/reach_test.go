package node_test

import (
	"context"
	"errors"
	"github.com/irmv/irmv/internal/testenv"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// relayNet is a public node (relay) and two private nodes that listen
// nowhere: they dial out to the relay only, so the only way from one to
// the other is a circuit through the relay, as between two homes behind
// NATs.
type relayNet struct {
	relay, a, b *node.Node
}

func startRelayNet(t testing.TB, relayOpts func(*node.Options)) relayNet {
	t.Helper()
	ro := nodetest.Options(t)
	ro.Reachability = node.ReachPublic
	if relayOpts != nil {
		relayOpts(&ro)
	}
	relay := nodetest.Start(t, ro)
	private := func() *node.Node {
		o := nodetest.Options(t)
		o.Reachability = node.ReachPrivate
		o.Listen = []string{}
		o.Bootstrap = []string{nodetest.LoopbackAddr(t, relay)}
		n := nodetest.Start(t, o)
		nodetest.WaitFor(t, "relay slot and circuit address", func() bool {
			info := n.Info()
			return slices.Contains(info.Relays, relay.ID().String()) &&
				slices.ContainsFunc(info.DialableAddrs, func(a string) bool { return strings.Contains(a, "/p2p-circuit/p2p/") })
		})
		return n
	}
	return relayNet{relay: relay, a: private(), b: private()}
}

// onlyRelayed asserts that every connection from n to m is relayed.
func onlyRelayed(t testing.TB, n, m *node.Node) {
	t.Helper()
	conns := n.Host().Network().ConnsToPeer(m.ID())
	if len(conns) == 0 {
		t.Fatalf("no connection from %s to %s", n.ID(), m.ID())
	}
	for _, c := range conns {
		if !c.Stat().Limited || !strings.Contains(c.RemoteMultiaddr().String(), "/p2p-circuit") {
			t.Fatalf("connection to %s over %s is not relayed", m.ID(), c.RemoteMultiaddr())
		}
	}
}

func TestReachabilityInfo(t *testing.T) {
	rn := startRelayNet(t, nil)
	for _, tc := range []struct {
		n          *node.Node
		reach, dht string
	}{{rn.relay, node.ReachPublic, "server"}, {rn.a, node.ReachPrivate, "client"}} {
		var info client.NodeInfo
		getJSON(t, tc.n.APIURL()+"/v1/node", &info)
		if info.Reachability != tc.reach || info.DHTMode != tc.dht {
			t.Errorf("node: reachability %q, dht %q; want %q, %q", info.Reachability, info.DHTMode, tc.reach, tc.dht)
		}
	}
	var info client.NodeInfo
	getJSON(t, rn.a.APIURL()+"/v1/node", &info)
	for _, a := range info.DialableAddrs {
		if !strings.Contains(a, "/p2p/"+rn.relay.ID().String()+"/p2p-circuit/p2p/"+info.PeerID) {
			t.Errorf("private node's dialable address %q is not a circuit through its relay", a)
		}
	}
	if info.Bootstrap.State != client.BootConnected {
		t.Errorf("bootstrap state %q", info.Bootstrap.State)
	}
	// Nodes on loopback cannot tell: unknown, and a DHT server still.
	n := nodetest.Start(t, nodetest.Options(t))
	if r := n.Info().Reachability; r != node.ReachUnknown {
		t.Errorf("loopback node with auto reachability: %q", r)
	}
	if m := n.Info().DHTMode; m != "server" {
		t.Errorf("loopback node with unknown reachability: DHT %s", m)
	}
}

// TestPrivateNodesFindAndCallThroughRelay: two private nodes that cannot
// dial each other find each other's terminals through the DHT and carry a
// call's signalling, both over a circuit through a public node.
func TestPrivateNodesFindAndCallThroughRelay(t *testing.T) {
	rn := startRelayNet(t, nil)
	ackB, err := rn.b.Registry().Register(client.Registration{Name: "Birte Behind-Nat", Address: "127.0.0.1", Keepalive: true})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	nodetest.WaitFor(t, "terminal of node B found from node A via the DHT", func() bool {
		for _, r := range apiSearch(t, rn.a, "Birte Behind-Nat", "dht") {
			if r.Node == rn.b.ID().String() && r.Via == "dht" {
				found = true
			}
		}
		return found
	})
	onlyRelayed(t, rn.a, rn.b)

	ackA, err := rn.a.Registry().Register(client.Registration{Name: "Anna Also-Nat", Address: "127.0.0.1", Keepalive: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wsA := helloWS(ctx, t, rn.a, ackA)
	wsB := helloWS(ctx, t, rn.b, ackB)
	call := "0123456789abcdef0123456789abcdef"
	if err := wsjson.Write(ctx, wsA, signal.Msg{Type: signal.TypeInvite, Call: call,
		Desc: &signal.Description{Type: "offer", SDP: "v=0\r\n"},
		To:   &signal.Party{Node: rn.b.ID().String(), Terminal: ackB.Terminal}}); err != nil {
		t.Fatal(err)
	}
	inv := readUntil(ctx, t, wsB, signal.TypeInvite)
	if inv.Call != call || inv.From == nil || inv.From.Node != rn.a.ID().String() {
		t.Fatalf("invite at B: %+v", inv)
	}
	if err := wsjson.Write(ctx, wsB, signal.Msg{Type: signal.TypeRinging, Call: call}); err != nil {
		t.Fatal(err)
	}
	readUntil(ctx, t, wsA, signal.TypeRinging)
	onlyRelayed(t, rn.a, rn.b)
	wsjson.Write(ctx, wsA, signal.Msg{Type: signal.TypeHangup, Call: call})
	readUntil(ctx, t, wsB, signal.TypeHangup)
}

func helloWS(ctx context.Context, t *testing.T, n *node.Node, ack client.Ack) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws://"+n.APIAddr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := wsjson.Write(ctx, c, signal.Msg{Type: signal.TypeHello, Terminal: ack.Terminal, Token: ack.Token}); err != nil {
		t.Fatal(err)
	}
	readUntil(ctx, t, c, signal.TypeWelcome)
	return c
}

func readUntil(ctx context.Context, t *testing.T, c *websocket.Conn, typ string) signal.Msg {
	t.Helper()
	for {
		var m signal.Msg
		if err := wsjson.Read(ctx, c, &m); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m.Type == typ {
			return m
		}
	}
}

const bulkProto = protocol.ID("/irmv-test/bulk")

// pushThroughRelay sends size bytes from a to b over a new stream on
// their relayed connection. It returns how many bytes a could write before
// the stream broke, and how many b received.
func pushThroughRelay(t *testing.T, rn relayNet, size int) (sent int, received int64) {
	t.Helper()
	var got atomic.Int64
	done := make(chan struct{})
	rn.b.Host().SetStreamHandler(bulkProto, func(s network.Stream) {
		defer close(done)
		buf := make([]byte, 16<<10)
		for {
			n, err := s.Read(buf)
			got.Add(int64(n))
			if err != nil {
				break
			}
		}
		s.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// B's circuit addresses as the relay knows them (what a DHT lookup
	// would hand out).
	nodetest.WaitFor(t, "relay knows B's circuit address", func() bool {
		return slices.ContainsFunc(rn.relay.Host().Peerstore().Addrs(rn.b.ID()), func(a ma.Multiaddr) bool {
			return strings.Contains(a.String(), "/p2p-circuit")
		})
	})
	rn.a.Host().Peerstore().AddAddrs(rn.b.ID(), rn.relay.Host().Peerstore().Addrs(rn.b.ID()), time.Minute)
	s, err := rn.a.Host().NewStream(network.WithAllowLimitedConn(ctx, "test"), rn.b.ID(), bulkProto)
	if err != nil {
		t.Fatal(err)
	}
	onlyRelayed(t, rn.a, rn.b)
	buf := make([]byte, 16<<10)
	for sent < size {
		if _, err := s.Write(buf); err != nil {
			return sent, got.Load()
		}
		sent += len(buf)
	}
	if err := s.CloseWrite(); err != nil {
		return sent, got.Load()
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("receiver never finished")
	}
	return sent, got.Load()
}

// TestRelayLimitsSizedForIrmv: a relayed connection carries far more than
// libp2p's default 128 KiB, and the relay still enforces its (here
// lowered) limit.
func TestRelayLimitsSizedForIrmv(t *testing.T) {
	const size = 1 << 20
	if sent, got := pushThroughRelay(t, startRelayNet(t, nil), size); sent != size || got != size {
		t.Errorf("default irmv limits: sent %d, %d of %d bytes arrived", sent, got, size)
	}
	low := startRelayNet(t, func(o *node.Options) { o.RelayData = 64 << 10 })
	if sent, got := pushThroughRelay(t, low, size); sent >= size || got > 64<<10 {
		t.Errorf("relay limited to 64 KiB let %d of %d bytes be sent, %d arrive", sent, size, got)
	}
}

// TestListenAddressInUse: a second node on a taken listen port does not
// start (TCP port reuse used to let it share the port).
func TestListenAddressInUse(t *testing.T) {
	first := nodetest.Start(t, nodetest.Options(t))
	o := nodetest.Options(t)
	o.Listen = []string{strings.TrimSuffix(nodetest.LoopbackAddr(t, first), "/p2p/"+first.ID().String())}
	n, err := node.New(o)
	if err == nil {
		n.Close()
		t.Fatalf("second node started on %s, the first node's port", o.Listen[0])
	}
	if !errors.Is(err, node.ErrAddrInUse) || !strings.Contains(err.Error(), o.Listen[0]) {
		t.Fatalf("error %q does not say the address %s is in use", err, o.Listen[0])
	}
}

// TestBootstrapFailureReportedAndRetried: a node whose bootstrap node is
// down says so at warn level with the address and the reason, shows it in
// /v1/node, keeps retrying, and joins once the bootstrap node is up.
func TestBootstrapFailureReportedAndRetried(t *testing.T) {
	to := nodetest.Options(t)
	target, err := node.New(to)
	if err != nil {
		t.Fatal(err)
	}
	addr := nodetest.LoopbackAddr(t, target)
	target.Close()

	var logs testenv.SyncBuffer
	o := nodetest.Options(t)
	o.Bootstrap = []string{addr}
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n := nodetest.Start(t, o)
	var info client.NodeInfo
	nodetest.WaitFor(t, "two failed bootstrap dials", func() bool {
		getJSON(t, n.APIURL()+"/v1/node", &info)
		return info.Bootstrap.State == client.BootFailing && len(info.Bootstrap.Peers) == 1 && info.Bootstrap.Peers[0].Failures >= 2
	})
	bp := info.Bootstrap.Peers[0]
	if bp.Addr != addr || bp.Error == "" || bp.Connected || bp.NextDial == "" {
		t.Errorf("bootstrap peer %+v", bp)
	}
	// Each retry dials again and reports why it failed, not the swarm's
	// backoff from the dial before.
	if !strings.Contains(bp.Error, "connection refused") {
		t.Errorf("bootstrap peer's error %q: want the dial's reason (connection refused)", bp.Error)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN msg=\"Cannot reach bootstrap node\" addr="+addr) || !strings.Contains(l, "err=") {
		t.Errorf("no warning with the address and reason; logs:\n%s", l)
	}

	to.Listen = []string{strings.TrimSuffix(addr, "/p2p/"+target.ID().String())}
	nodetest.Start(t, to)
	nodetest.WaitFor(t, "bootstrap node reached once it is up", func() bool {
		getJSON(t, n.APIURL()+"/v1/node", &info)
		return info.Bootstrap.State == client.BootConnected && info.RoutingTable > 0
	})
}

// BenchmarkLookupViaRelay measures an exact lookup (DHT provider lookup at
// the public node, then the record query to the hosting node) from one
// private node of a terminal on another private node, whose only path is
// a circuit through the public node; the first lookup sets the circuit
// up (reported as cold-ms).
func BenchmarkLookupViaRelay(b *testing.B) {
	rn := startRelayNet(b, nil)
	if _, err := rn.b.Registry().Register(client.Registration{Phone: "+49 30 5550177", Address: "127.0.0.1"}); err != nil {
		b.Fatal(err)
	}
	lookup := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, _, err := rn.a.Search().Resolve(ctx, client.Query{Text: "+49 30 5550177", Via: client.ViaDHT, Limit: 1})
		return err == nil && res.Node == rn.b.ID().String()
	}
	start := time.Now()
	nodetest.WaitFor(b, "first lookup through the relay", lookup)
	cold := time.Since(start)
	onlyRelayed(b, rn.a, rn.b)
	b.ResetTimer()
	for range b.N {
		if !lookup() {
			b.Fatal("lookup through the relay failed")
		}
	}
	// After the loop: ResetTimer drops metrics reported before it.
	b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
}

// TestRelayRestartFindableAgain: when a public node that relays for a
// private node restarts, the private node redials it at once, takes a
// relay slot there again and announces its terminals anew: the restarted
// node (which lost every provider record) finds them within the deadline.
func TestRelayRestartFindableAgain(t *testing.T) {
	o1 := nodetest.Options(t)
	o1.Reachability = node.ReachPublic
	o1.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	r1, err := node.New(o1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { r1.Close() }()
	o2 := nodetest.Options(t)
	o2.Reachability = node.ReachPublic
	o2.Bootstrap = []string{nodetest.LoopbackAddr(t, r1)}
	r2 := nodetest.Start(t, o2)
	op := nodetest.Options(t)
	op.Reachability = node.ReachPrivate
	op.Listen = []string{}
	op.Bootstrap = []string{nodetest.LoopbackAddr(t, r1), nodetest.LoopbackAddr(t, r2)}
	priv := nodetest.Start(t, op)
	holds := func(r *node.Node) bool { return slices.Contains(priv.Info().Relays, r.ID().String()) }
	nodetest.WaitFor(t, "slots on both relays", func() bool { return holds(r1) && holds(r2) })
	if _, err := priv.Registry().Register(client.Registration{Phone: "+49 30 5550188", Address: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	found := func(from *node.Node) func() bool {
		return func() bool {
			for _, r := range apiSearch(t, from, "+49 30 5550188", "dht") {
				if r.Node == priv.ID().String() {
					return true
				}
			}
			return false
		}
	}
	nodetest.WaitFor(t, "terminal findable from r1", found(r1))

	o1.Listen = []string{strings.TrimSuffix(nodetest.LoopbackAddr(t, r1), "/p2p/"+r1.ID().String())}
	r1.Close()
	nodetest.WaitFor(t, "private node lost its slot on r1", func() bool { return !holds(r1) })
	if r1, err = node.New(o1); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "slot on the restarted r1", func() bool { return holds(r1) })
	nodetest.WaitFor(t, "terminal findable from the restarted r1", found(r1))
}
