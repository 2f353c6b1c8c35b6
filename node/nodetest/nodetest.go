// Package nodetest starts networks of real irmv nodes on 127.0.0.1 for
// tests: every node listens on loopback only, mDNS is off, and the nodes
// are closed when the test ends.
package nodetest

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/node"
)

// quiet logs warnings and errors only: test output stays readable.
var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

// Options returns node options for a test node in its own temp dir,
// listening on loopback ports chosen by the kernel.
func Options(t testing.TB) node.Options {
	return node.Options{
		DataDir: t.TempDir(),
		Listen:  []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		API:     "127.0.0.1:0",
		Region:  "DE",
		TURN:    "127.0.0.1:0",
		Logger:  quiet,
		MDNS:    false,
	}
}

// Start starts one node with opts and closes it at cleanup.
func Start(t testing.TB, opts node.Options) *node.Node {
	t.Helper()
	n, err := node.New(opts)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("closing node %s: %v", n.ID(), err)
		}
	})
	return n
}

// Chain starts count nodes; node i bootstraps from node i-1, so the only
// initial links form a chain. mut, if not nil, adjusts each node's options.
func Chain(t testing.TB, count int, mut func(i int, o *node.Options)) []*node.Node {
	t.Helper()
	nodes := make([]*node.Node, 0, count)
	for i := range count {
		o := Options(t)
		if i > 0 {
			o.Bootstrap = []string{LoopbackAddr(t, nodes[i-1])}
		}
		if mut != nil {
			mut(i, &o)
		}
		n := Start(t, o)
		if i > 0 && len(o.Bootstrap) > 0 {
			// Joined means the bootstrap peer is in the routing table.
			WaitFor(t, "node joined", func() bool { return n.DHT().RoutingTable().Size() > 0 })
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// LoopbackAddr returns a node's TCP multiaddr on 127.0.0.1 (or ::1, for a
// node listening on IPv6 only) with /p2p/.
func LoopbackAddr(t testing.TB, n *node.Node) string {
	t.Helper()
	for _, prefix := range []string{"/ip4/127.0.0.1/tcp/", "/ip6/::1/tcp/"} {
		for _, a := range n.Addrs() {
			if strings.HasPrefix(a, prefix) {
				return a
			}
		}
	}
	t.Fatalf("node %s has no loopback TCP address: %v", n.ID(), n.Addrs())
	return ""
}

// WaitFor polls cond until it is true or the generous deadline passes.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
