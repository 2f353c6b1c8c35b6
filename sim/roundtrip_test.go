package sim

import (
	"context"
	"testing"
	"time"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/search"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRoundTrip checks that a lookup request and its answer take a whole
// link round trip, short messages included (see latentStream).
func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	n := &simnet{cfg: Config{Nodes: 3, Latency: 20 * time.Millisecond, TerminalsPerNode: 1}, byID: map[peer.ID]*simNode{}, keys: nil}
	n.cfg.defaults()
	n.keys = newKeysForTest(1)
	n.rng = newRngForTest(1)
	defer n.close()
	if err := n.build(ctx, &Result{}); err != nil {
		t.Fatal(err)
	}
	if err := n.register(ctx, &Result{}); err != nil {
		t.Fatal(err)
	}
	a, b := n.nodes[0], n.nodes[1]
	for range 3 {
		t0 := time.Now()
		recs, _, err := search.QueryNode(ctx, a.h, b.h.ID(), []ident.ID{{Kind: ident.KindUID, Value: b.terms[0].uid}}, 1)
		d := time.Since(t0)
		if err != nil || len(recs) != 1 {
			t.Fatalf("QueryNode: %d records, %v", len(recs), err)
		}
		if d < 2*n.cfg.Latency {
			t.Errorf("QueryNode took %v, less than a round trip of %v", d, 2*n.cfg.Latency)
		}
	}
}
