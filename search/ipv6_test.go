package search_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// TestFindByIPv6: nodes that talk over IPv6 only find a terminal by its
// IPv6 identifier written in another form, and report its canonical form.
func TestFindByIPv6(t *testing.T) {
	nodes := nodetest.Chain(t, 2, func(_ int, o *node.Options) {
		o.Listen = []string{"/ip6/::1/tcp/0"}
	})
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		for _, addr := range n.Addrs() {
			if !strings.HasPrefix(addr, "/ip6/") {
				t.Fatalf("node listens on %s", addr)
			}
		}
	}
	ack, err := b.Registry().Register(client.Registration{
		Name: "Six Person", IP: "2001:DB8::0:1", Address: "2001:DB8::0:1",
	})
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "identifiers announced", func() bool {
		ch, err := a.Search().Search(context.Background(), client.Query{Text: "2001:db8:0::1", Via: client.ViaDHT, Limit: 1, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range ch {
			n++
		}
		return n > 0
	})
	for _, via := range []string{client.ViaDHT, client.ViaFlood} {
		t.Run(via, func(t *testing.T) {
			res := collect(t, a, client.Query{Text: "2001:db8:0::1", Via: via, Limit: 1, Timeout: 10 * time.Second})
			if len(res) != 1 {
				t.Fatalf("got %d results, want 1: %+v", len(res), res)
			}
			r := res[0]
			if r.Terminal != ack.Terminal || r.Node != b.ID().String() || !r.Verified {
				t.Errorf("result %+v", r)
			}
			if r.Identifiers.IP != "2001:db8::1" || r.Address != "2001:db8::1" {
				t.Errorf("IP %q, address %q; want 2001:db8::1", r.Identifiers.IP, r.Address)
			}
		})
	}
}
