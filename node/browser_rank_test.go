package node_test

import (
	"context"
	"testing"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// TestBrowserRanksResults: the page keeps its result list ranked as
// results arrive, in whatever order: the exact name first, then the one
// with all the name's words, then the prefix match; each shows how it
// matched.
func TestBrowserRanksResults(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	c, err := client.New(nodes[1].APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	var last string
	for _, name := range []string{"Kimberly Bergström", "Berg Kim", "Kim Berg"} {
		ack, err := c.Register(ctx, client.Registration{Name: name, Status: "online"})
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Terminal
	}
	findFrom(t, nodes[0], "kim berg", last)
	p := openPage(t, nodes[0], 390, 844)
	p.search("kim berg", last)
	p.waitFor(`document.body.dataset.search === "done"`)
	if got := p.eval(`[...document.querySelectorAll("#results li")].map((li) => li.dataset.match).join(",")`); got != "exact,words,prefix" {
		t.Errorf("results ranked %s, want exact,words,prefix", got)
	}
	if got := p.eval(`document.querySelector("#results li .who-name").textContent`); got != "Kim Berg" {
		t.Errorf("first result %q, want Kim Berg", got)
	}
}
