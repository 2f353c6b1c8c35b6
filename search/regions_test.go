package search_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/search"
)

// TestResolveAcrossRegions registers terminals with accented, stroked,
// apostrophised and Cyrillic names, national and international numbers
// and bare unique IDs on four nodes of different regions (Germany, Sweden,
// the US, none), and checks that every query a person would type finds
// the one meant first, from other nodes.
func TestResolveAcrossRegions(t *testing.T) {
	regions := []string{"DE", "SE", "US", ""}
	nodes := nodetest.Chain(t, len(regions), func(i int, o *node.Options) { o.Region = regions[i] })
	for _, n := range nodes {
		nodetest.WaitFor(t, "routing tables", func() bool { return n.DHT().RoutingTable().Size() >= 2 })
	}
	de, se, us, none := nodes[0], nodes[1], nodes[2], nodes[3]
	region := map[*node.Node]string{de: "DE", se: "SE", us: "US", none: "none"}
	for _, r := range []struct {
		n   *node.Node
		reg client.Registration
	}{
		{de, client.Registration{Name: "Kim Berg", UID: "kim-1"}},
		{se, client.Registration{Name: "Kim Berg", UID: "kim-2"}},
		{se, client.Registration{Name: "Øyvind Ærø", UID: "t-oyvind", Phone: "08-123 45 67"}},
		{us, client.Registration{Name: "Siobhán O'Brien", UID: "t-obrien"}},
		{us, client.Registration{Name: "Priya Raman", UID: "priya-1", Phone: "(201) 555-0123"}},
		{none, client.Registration{Name: "Łukasz Żółkiewski", UID: "desk-42", Phone: "+49 (0)30 123 45 67"}},
		{none, client.Registration{Name: "Дмитрий Шостакович", UID: "t-dmitri"}},
	} {
		r.reg.Address = "10.99.0.7"
		if _, err := r.n.Registry().Register(r.reg); err != nil {
			t.Fatalf("register %+v: %v", r.reg, err)
		}
	}
	resolve := func(from *node.Node, q string) (client.Result, []client.Result, error) {
		return from.Search().Resolve(context.Background(), client.Query{Text: q, Timeout: 5 * time.Second})
	}
	// Provide returns before the records are stored: wait until the DHT
	// path knows every unique ID.
	for _, uid := range []string{"kim-1", "kim-2", "t-oyvind", "t-obrien", "priya-1", "desk-42", "t-dmitri"} {
		nodetest.WaitFor(t, uid+" announced", func() bool {
			ch, err := de.Search().Search(context.Background(), client.Query{Text: "uid:" + uid, Via: client.ViaDHT, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range ch {
				n++
			}
			return n > 0
		})
	}
	for _, tc := range []struct {
		from      *node.Node
		q, best   string
		bestMatch ident.Match
	}{
		{de, "oyvind", "t-oyvind", ident.MatchPrefix},
		{us, "Øyvind Ærø", "t-oyvind", ident.MatchExact},
		{de, "+46 8 123 45 67", "t-oyvind", ident.MatchExact},
		{us, "0046 (0)8-123 45 67", "t-oyvind", ident.MatchExact},
		{se, "08/123 45 67", "t-oyvind", ident.MatchExact},
		{de, "obrien", "t-obrien", ident.MatchPrefix},
		{none, "brien", "t-obrien", ident.MatchPrefix},
		{se, "siobhan o'brien", "t-obrien", ident.MatchExact},
		{de, "+1 (201) 555-0123", "priya-1", ident.MatchExact},
		{us, "201.555.0123", "priya-1", ident.MatchExact},
		{se, "tel:+1-201-555-0123", "priya-1", ident.MatchExact},
		{de, "priya-1", "priya-1", ident.MatchExact},
		{se, "priya", "priya-1", ident.MatchPrefix},
		{de, "desk-42", "desk-42", ident.MatchExact},
		{de, "030 123 45 67", "desk-42", ident.MatchExact},
		{us, "lukasz", "desk-42", ident.MatchPrefix},
		{se, "LUKASZ ZOLKIEWSKI", "desk-42", ident.MatchExact},
		{de, "shostakovich", "t-dmitri", ident.MatchPrefix},
		{us, "Дмитрий", "t-dmitri", ident.MatchPrefix},
		{de, "kim-2", "kim-2", ident.MatchExact},
	} {
		best, _, err := resolve(tc.from, tc.q)
		if err != nil || best.Identifiers.UID != tc.best || best.Match != tc.bestMatch {
			t.Errorf("from %s: %q: best %q %v (%v), want %q %v", region[tc.from], tc.q, best.Identifiers.UID, best.Match, err, tc.best, tc.bestMatch)
		}
	}
	// The same name on two nodes: nobody is picked.
	if _, tied, err := resolve(us, "kim berg"); !errors.Is(err, search.ErrAmbiguous) || len(tied) != 2 {
		t.Errorf(`"kim berg": %v, %d tied; want ambiguous between 2`, err, len(tied))
	}
	// A national number at a node without a region says what is missing.
	if _, _, err := resolve(none, "08-123 45 67"); !errors.Is(err, search.ErrBadQuery) || !strings.Contains(err.Error(), "--region") {
		t.Errorf("national number at a node without region: %v", err)
	}
}
