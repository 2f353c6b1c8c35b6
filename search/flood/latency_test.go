package flood

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/testenv"
)

// TestFarSlowHopsFound: dynamic querying waits for hits from far hops
// whose links are much slower than the link to the asker's neighbour. A
// chain 0-1-2-3-4-5 on mocknet: the link 0-1 is fast (its round trip,
// measured at 1 ms as the DHT would record it, sets the first wait per hop
// near MinStepWait), every other link has 60 ms latency. Node 2 (2 hops)
// and node 5 (5 hops) host a match; node 5's hit takes ~0.5 s per round,
// more than the measured waits of all rounds together, and is found
// because node 2's hit shows how slow the hops are.
func TestFarSlowHopsFound(t *testing.T) {
	const n, latency = 6, 60 * time.Millisecond
	mn := mocknet.New()
	testenv.Close(t, "mn", mn)
	nodes := make([]*testNode, n)
	for i := range nodes {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		m := &testMatcher{}
		f, err := New(Options{Host: h, Matcher: m})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, "f", f)
		nodes[i] = &testNode{h: h, f: f, m: m}
	}
	for i := 0; i+1 < n; i++ {
		l, err := mn.LinkPeers(nodes[i].h.ID(), nodes[i+1].h.ID())
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			l.SetOptions(mocknet.LinkOptions{Latency: latency})
		}
		if _, err := mn.ConnectPeers(nodes[i].h.ID(), nodes[i+1].h.ID()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i+1 < n; i++ {
		for _, pair := range [][2]host.Host{{nodes[i].h, nodes[i+1].h}, {nodes[i+1].h, nodes[i].h}} {
			waitFor(t, 30*time.Second, fmt.Sprintf("flood protocol %d-%d", i, i+1), func() bool {
				ps, err := pair[0].Peerstore().SupportsProtocols(pair[1].ID(), ProtocolID)
				return err == nil && len(ps) == 1
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The round trip to the neighbour as the DHT records it (a measured
	// one would vary with the machine's load).
	nodes[0].h.Peerstore().RecordLatency(nodes[1].h.ID(), time.Millisecond)
	measured := nodes[0].f.stepWait([]peer.ID{nodes[1].h.ID()})
	nodes[2].hostTerminal(t, "near", "anna")
	id := nodes[5].hostTerminal(t, "far", "anna")
	// The far hit needs 2 × 4 slow links; the rounds that reach node 5
	// (TTL 5 and 7) end, at the measured wait, sooner after they are sent
	// ((5+7) × step).
	if far := 8 * latency; 12*measured >= far {
		t.Fatalf("measured step %v: the query would wait %v after the first round reaching node 5, not less than the far hit's %v; the test shows nothing", measured, 12*measured, far)
	}
	start := time.Now()
	hits := collect(nodes[0].f.Query(ctx, ident.ID{Kind: ident.KindName, Value: id.Value}, QueryOptions{}))
	found := map[int]bool{}
	for _, h := range hits {
		found[h.Hops] = true
	}
	if !found[2] || !found[5] {
		t.Fatalf("hits from hops %v after %v (step measured %v), want from 2 and 5", found, time.Since(start), measured)
	}
}
