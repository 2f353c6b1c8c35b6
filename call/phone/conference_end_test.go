package phone

import (
	"context"
	"errors"
	"testing"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

// statusAt is a terminal's status in its node's directory.
func statusAt(n *node.Node, terminal string) record.Status {
	t, err := n.Registry().Get(terminal)
	if err != nil {
		return record.StatusOffline
	}
	return t.Status
}

// TestConferenceEndsWithCaller: A calls B and C, who connect to each other
// too; when A hangs up, the B–C leg ends as well (it used to stay up until
// a phone was stopped). While in the conference B and C show busy, as
// they answer; afterwards they are online and a plain call between them
// connects.
func TestConferenceEndsWithCaller(t *testing.T) {
	nodes := startNodes(t, 3)
	evB, evC := newEvents(), newEvents()
	b := startPhone(t, nodes[1], Options{Registration: client.Registration{Name: "Host Bob"}, Answer: AnswerAuto, OnEvent: evB.add})
	c := startPhone(t, nodes[2], Options{Registration: client.Registration{Name: "Host Carol"}, Answer: AnswerAuto, OnEvent: evC.add})
	a := startPhone(t, nodes[0], Options{Registration: client.Registration{Name: "Host Alice"}})
	ca := apiClient(t, nodes[0])
	aT, bT, cT := a.Ack().Terminal, b.Ack().Terminal, c.Ack().Terminal
	to := []client.Result{find(t, ca, "host bob", bT), find(t, ca, "host carol", cT)}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	cf, err := a.Conference(ctx, to, CallOptions{Play: fixture})
	if err != nil {
		t.Fatalf("Conference: %v", err)
	}
	nodetest.WaitFor(t, "B and C connected", func() bool {
		bc, cb := legWith(b, cT), legWith(c, bT)
		return bc != nil && bc.isLive() && cb != nil && cb.isLive()
	})
	nodetest.WaitFor(t, "B and C busy in the directory", func() bool {
		return statusAt(nodes[1], bT) == record.StatusBusy && statusAt(nodes[2], cT) == record.StatusBusy
	})
	bc := legWith(b, cT)

	if err := cf.Hangup(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bc.Done():
	case <-ctx.Done():
		t.Fatal("the B–C leg outlived the conference's caller")
	}
	waitIdle(t, b)
	waitIdle(t, c)
	for _, ev := range []*events{evB, evC} {
		ev.mu.Lock()
		for _, e := range ev.list {
			if e.Type == client.EventEnded && e.Peer != nil && e.Peer.Terminal != aT && e.Reason != "conference over" && e.Reason != "hangup" {
				t.Errorf("B–C leg ended with %q", e.Reason)
			}
		}
		ev.mu.Unlock()
	}
	nodetest.WaitFor(t, "B and C online in the directory", func() bool {
		return statusAt(nodes[1], bT) == record.StatusOnline && statusAt(nodes[2], cT) == record.StatusOnline
	})
	// A plain call to B now rings and connects instead of answering busy.
	cc := apiClient(t, nodes[2])
	call, err := c.Call(ctx, find(t, cc, "host bob", bT), CallOptions{})
	if errors.Is(err, ErrBusy) {
		t.Fatal("B still answers busy after the conference")
	}
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	call.Hangup()
}
