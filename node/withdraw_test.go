package node_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search"
)

// TestWithdrawnProviderRecordsHarmless: when a terminal moves from node a
// to node b, a stops announcing its identifiers (nothing left to
// republish), while the provider records a announced before live on in
// the DHT until they lapse; a answers lookups for the moved terminal with
// no record, so searches from anywhere find it only at b.
func TestWithdrawnProviderRecordsHarmless(t *testing.T) {
	nodes := nodetest.Chain(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	register := func(n *node.Node, from string) {
		t.Helper()
		cl, err := client.New(n.APIURL(), "")
		if err != nil {
			t.Fatal(err)
		}
		reg := client.Registration{UID: "wanderer-5", Address: "127.0.0.1", Key: key.Public().(ed25519.PublicKey), From: from}
		if reg.Body, err = cl.Prepare(ctx, reg); err != nil {
			t.Fatal(err)
		}
		reg.Sig = ed25519.Sign(key, record.SigningBytes(reg.Body))
		if _, err := cl.Register(ctx, reg); err != nil {
			t.Fatal(err)
		}
	}
	uid := ident.ID{Kind: ident.KindUID, Value: "wanderer-5"}
	providers := func() []peer.ID {
		fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
		defer fcancel()
		var ps []peer.ID
		for p := range c.DHT().FindProvidersAsync(fctx, uid.CID(), 10) {
			ps = append(ps, p.ID)
		}
		return ps
	}
	foundAt := func(n *node.Node) []string {
		ch, err := n.Search().Search(ctx, client.Query{Text: "uid:wanderer-5", Via: client.ViaDHT, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		var at []string
		for r := range ch {
			at = append(at, r.Node)
		}
		return at
	}

	register(a, "")
	nodetest.WaitFor(t, "a's provider record in the DHT", func() bool { return slices.Contains(providers(), a.ID()) })
	register(b, a.ID().String())
	nodetest.WaitFor(t, "a withdrew the terminal", func() bool { return a.Registry().Count() == 0 })
	if n := a.Publisher().Published(); n != 0 {
		t.Errorf("a still announces %d identifiers", n)
	}
	a.Publisher().Republish() // as after an address change: nothing of the terminal's

	// a's record lives on in the DHT; a answers it with nothing.
	nodetest.WaitFor(t, "b's provider record next to a's", func() bool {
		ps := providers()
		return slices.Contains(ps, a.ID()) && slices.Contains(ps, b.ID())
	})
	recs, bad, err := search.QueryNode(ctx, c.Host(), a.ID(), []ident.ID{uid}, 10)
	if err != nil || len(recs) != 0 || bad != 0 {
		t.Errorf("a's answer for the moved terminal: %d records, %d bad, %v; want none", len(recs), bad, err)
	}
	for _, n := range nodes {
		nodetest.WaitFor(t, "the terminal found only at b from "+n.ID().String(), func() bool {
			at := foundAt(n)
			return len(at) == 1 && at[0] == b.ID().String()
		})
	}
}
