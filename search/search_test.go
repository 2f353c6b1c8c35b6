package search_test

import (
	"context"

	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

// collect runs a search to its end and returns the results.
func collect(t *testing.T, n *node.Node, q client.Query) []client.Result {
	t.Helper()
	ch, err := n.Search().Search(context.Background(), q)
	if err != nil {
		t.Fatalf("search %q: %v", q.Text, err)
	}
	var out []client.Result
	for r := range ch {
		out = append(out, r)
	}
	return out
}

// fiveNodes starts a chain of five nodes, registers a terminal on the last
// and waits until the first can see it through the DHT.
func fiveNodes(t *testing.T) ([]*node.Node, client.Ack) {
	t.Helper()
	nodes := nodetest.Chain(t, 5, nil)
	last := nodes[len(nodes)-1]
	for _, n := range nodes {
		nodetest.WaitFor(t, "routing tables", func() bool { return n.DHT().RoutingTable().Size() >= 2 })
	}
	ack, err := last.Registry().Register(client.Registration{
		Name: "José Müller", Phone: "+49 30 1234567", UID: "desk-42", IP: "10.99.0.42", Address: "10.99.0.42",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Provide returns before the remote nodes have stored the record:
	// wait for the effect, a DHT lookup that finds it.
	nodetest.WaitFor(t, "identifiers announced", func() bool {
		ch, err := nodes[0].Search().Search(context.Background(), client.Query{Text: "uid:desk-42", Via: client.ViaDHT, Limit: 1, Timeout: time.Second})
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
		{"030 1234567", client.ViaDHT, client.ViaDHT}, // national form, region DE
		{"0049 30 123-4567", client.ViaAuto, client.ViaDHT},
		{"uid:desk-42", client.ViaDHT, client.ViaDHT},
		{"10.99.0.42", client.ViaDHT, client.ViaDHT},
		{"jose muller", client.ViaDHT, client.ViaDHT},      // whole name, no accents
		{"MULLER", client.ViaDHT, client.ViaDHT},           // one whole token
		{"mül", client.ViaFlood, client.ViaFlood},          // partial name: flooding
		{"jo mu", client.ViaAuto, client.ViaFlood},         // partial keywords
		{"+49301234567", client.ViaFlood, client.ViaFlood}, // flooding alone
	} {
		t.Run(tc.query+"/"+tc.via, func(t *testing.T) {
			res := collect(t, first, client.Query{Text: tc.query, Via: tc.via, Timeout: 10 * time.Second, Limit: 1})
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
	res := collect(t, first, client.Query{Text: "uid:desk-42", Via: client.ViaDHT, Limit: 1})
	if len(res) != 1 || res[0].Status != record.StatusBusy {
		t.Fatalf("after busy: %+v", res)
	}
	if err := last.Registry().Remove(ack.Terminal); err != nil {
		t.Fatal(err)
	}
	// The DHT still names the node, but the node itself answers: nobody.
	res = collect(t, first, client.Query{Text: "uid:desk-42", Via: client.ViaAuto, Timeout: 2 * time.Second})
	if len(res) != 0 {
		t.Fatalf("after removal: %+v", res)
	}
}

func TestMissEndsAtTimeout(t *testing.T) {
	nodes := nodetest.Chain(t, 3, nil)
	start := time.Now()
	res := collect(t, nodes[0], client.Query{Text: "nobody", Timeout: 2 * time.Second})
	if len(res) != 0 {
		t.Fatalf("found %+v", res)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("search ran %s past its 2s timeout", el)
	}
}

func TestBadQueries(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	for _, q := range []client.Query{
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
