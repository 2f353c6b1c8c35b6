package search_test

import (
	"context"

	"testing"
	"time"

	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/share"
)

// collect runs a search to its end and returns the results.
func collect(t *testing.T, n *node.Node, q search.Query) []search.Result {
	t.Helper()
	ch, err := n.Search().Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %q: %v", q.Text, err)
	}
	var out []search.Result
	for r := range ch {
		out = append(out, r)
	}
	return out
}

// fiveNodes starts a chain of five nodes, registers a terminal on the last
// and waits until the first can see it through the DHT.
func fiveNodes(t *testing.T) ([]*node.Node, share.Ack) {
	t.Helper()
	nodes := nodetest.Chain(t, 5, nil)
	last := nodes[len(nodes)-1]
	for _, n := range nodes {
		nodetest.WaitFor(t, "routing tables", func() bool { return n.DHT().RoutingTable().Size() >= 2 })
	}
	ack, err := last.Registry().Register(share.Registration{
		Name: "José Müller", Phone: "+49 30 1234567", UID: "desk-42", IP: "10.99.0.42", Address: "10.99.0.42",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Provide returns before the remote nodes have stored the record:
	// wait for the effect, a DHT lookup that finds it.
	nodetest.WaitFor(t, "identifiers announced", func() bool {
		ch, err := nodes[0].Search().Search(context.Background(), search.Query{Text: "uid:desk-42", Via: search.ViaDHT, Limit: 1, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range ch {
			n++
		}
		return n > 0
	})
	return nodes, ack
}

func TestFindAcrossNodes(t *testing.T) {
	nodes, ack := fiveNodes(t)
	first, last := nodes[0], nodes[len(nodes)-1]
	for _, tc := range []struct {
		query, via, wantVia string
	}{
		{"030 1234567", search.ViaDHT, search.ViaDHT}, // national form, region DE
		{"0049 30 123-4567", search.ViaAuto, search.ViaDHT},
		{"uid:desk-42", search.ViaDHT, search.ViaDHT},
		{"10.99.0.42", search.ViaDHT, search.ViaDHT},
		{"jose muller", search.ViaDHT, search.ViaDHT},      // whole name, no accents
		{"MULLER", search.ViaDHT, search.ViaDHT},           // one whole token
		{"mül", search.ViaFlood, search.ViaFlood},          // partial name: flooding
		{"jo mu", search.ViaAuto, search.ViaFlood},         // partial keywords
		{"+49301234567", search.ViaFlood, search.ViaFlood}, // flooding alone
	} {
		t.Run(tc.query+"/"+tc.via, func(t *testing.T) {
			res := collect(t, first, search.Query{Text: tc.query, Via: tc.via, Timeout: 10 * time.Second, Limit: 1})
			if len(res) != 1 {
				t.Fatalf("got %d results, want 1: %+v", len(res), res)
			}
			r := res[0]
			if r.Terminal != ack.Terminal || r.Node != last.ID().String() || !r.Verified || r.Via != tc.wantVia {
				t.Errorf("result %+v, want terminal %s on %s via %s, verified", r, ack.Terminal, last.ID(), tc.wantVia)
			}
			if r.Address != "10.99.0.42" || r.Status != record.StatusOnline || r.Identifiers.Phone != "+49301234567" {
				t.Errorf("result %+v", r)
			}
		})
	}
}

func TestStatusAndRemovalSeenAtOnce(t *testing.T) {
	nodes, ack := fiveNodes(t)
	first, last := nodes[0], nodes[len(nodes)-1]
	if _, err := last.Registry().SetStatus(ack.Terminal, record.StatusBusy); err != nil {
		t.Fatal(err)
	}
	res := collect(t, first, search.Query{Text: "uid:desk-42", Via: search.ViaDHT, Limit: 1})
	if len(res) != 1 || res[0].Status != record.StatusBusy {
		t.Fatalf("after busy: %+v", res)
	}
	if err := last.Registry().Remove(ack.Terminal); err != nil {
		t.Fatal(err)
	}
	// The DHT still names the node, but the node itself answers: nobody.
	res = collect(t, first, search.Query{Text: "uid:desk-42", Via: search.ViaAuto, Timeout: 2 * time.Second})
	if len(res) != 0 {
		t.Fatalf("after removal: %+v", res)
	}
}

func TestMissEndsAtTimeout(t *testing.T) {
	nodes := nodetest.Chain(t, 3, nil)
	start := time.Now()
	res := collect(t, nodes[0], search.Query{Text: "nobody", Timeout: 2 * time.Second})
	if len(res) != 0 {
		t.Fatalf("found %+v", res)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("search ran %s past its 2s timeout", el)
	}
}

func TestBadQueries(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	for _, q := range []search.Query{
		{Text: ""},
		{Text: "x", Via: "carrier-pigeon"},
		{Text: "x", Limit: -1},
		{Text: "x", Timeout: time.Hour},
		{Text: "phone:abc"},
	} {
		if _, err := n.Search().Search(context.Background(), q); err == nil {
			t.Errorf("query %+v accepted", q)
		}
	}

}
