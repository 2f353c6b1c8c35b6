package search_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// TestPrivateTerminalHasNoAddress: a private terminal is found by name from
// another node, by each path, without its address anywhere in the result or
// its signed record.
func TestPrivateTerminalHasNoAddress(t *testing.T) {
	const addr = "10.99.0.77"
	nodes := nodetest.Chain(t, 2, nil)
	a, b := nodes[0], nodes[1]
	ack, err := b.Registry().Register(client.Registration{
		Name: "Hidden Person", UID: "hidden-1", Address: addr, Private: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "identifiers announced", func() bool {
		ch, err := a.Search().Search(context.Background(), client.Query{Text: "uid:hidden-1", Via: client.ViaDHT, Limit: 1, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range ch {
			n++
		}
		return n > 0
	})
	for _, via := range []string{client.ViaDHT, client.ViaFlood, client.ViaAuto} {
		t.Run(via, func(t *testing.T) {
			res := collect(t, a, client.Query{Text: "hidden person", Via: via, Limit: 1, Timeout: 10 * time.Second})
			if len(res) != 1 {
				t.Fatalf("got %d results, want 1: %+v", len(res), res)
			}
			r := res[0]
			if r.Terminal != ack.Terminal || !r.Verified || r.Identifiers.UID != "hidden-1" {
				t.Errorf("result %+v", r)
			}
			if r.Address != "" || !r.Private {
				t.Errorf("address %q, private %t; want none, true", r.Address, r.Private)
			}
			js, err := json.Marshal(r) // the result with its signed record, as the API sends it
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(js), addr) {
				t.Errorf("result carries the address: %s", js)
			}
		})
	}
}
