package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

// BenchmarkMoveConsistent moves a phone back and forth between two nodes
// of three and measures, per move, the time from the start of the move
// (Phone.Move: register at the new node, then move the WebSocket) until a
// search from every node finds the new registration and the old node has
// withdrawn its own (a search asks the hosting node, so from then on no
// search anywhere returns the old one): ns/op. withdrawn-ms and found-ms
// split it.
func BenchmarkMoveConsistent(b *testing.B) {
	nodes := nodetest.Chain(b, 3, nil)
	clients := make([]*client.Client, 2)
	for i := range clients {
		var err error
		if clients[i], err = client.New(nodes[i].APIURL(), ""); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	p, err := phone.Start(ctx, phone.Options{Client: clients[0], Registration: client.Registration{UID: "bench-walker"},
		SettingEngine: media.LoopbackSettingEngine()})
	if err != nil {
		b.Fatal(err)
	}
	testenv.Close(b, "phone", p)
	found := func(n *node.Node, at string) bool {
		ch, err := n.Search().Search(ctx, client.Query{Text: "uid:bench-walker", Limit: 1, Timeout: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		ok := false
		for r := range ch {
			ok = r.Node == at
		}
		return ok
	}
	var withdrawn, seen time.Duration
	b.ResetTimer()
	for i := range b.N {
		from, to := nodes[i%2], nodes[(i+1)%2]
		start := time.Now()
		if err := p.Move(ctx, clients[(i+1)%2]); err != nil {
			b.Fatal(err)
		}
		var w, f time.Duration
		for w == 0 || f == 0 {
			if w == 0 && from.Registry().Count() == 0 {
				w = time.Since(start)
			}
			if f == 0 && found(nodes[0], to.ID().String()) && found(nodes[1], to.ID().String()) && found(nodes[2], to.ID().String()) {
				f = time.Since(start)
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("move %d: not consistent after 30 s (withdrawn %v, found %v)", i, w, f)
			}
		}
		withdrawn += w
		seen += f
	}
	b.StopTimer()
	b.ReportMetric(float64(withdrawn.Milliseconds())/float64(b.N), "withdrawn-ms")
	b.ReportMetric(float64(seen.Milliseconds())/float64(b.N), "found-ms")
}

// BenchmarkPresenceVisible changes a terminal's status at its node (idle,
// busy, offline, online in turn) and measures, per change, the time until
// searches from each of the four other nodes of five show the new status:
// ns/op (mean). max-ms is the slowest change.
func BenchmarkPresenceVisible(b *testing.B) {
	nodes := nodetest.Chain(b, 5, nil)
	ack, err := nodes[0].Registry().Register(client.Registration{UID: "bench-presence", Address: "127.0.0.1"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	status := func(n *node.Node) record.Status {
		st := record.StatusUnknown
		ch, err := n.Search().Search(ctx, client.Query{Text: "uid:bench-presence", Limit: 1, Timeout: time.Second})
		if err != nil {
			b.Error(err) // called from goroutines too
			return st
		}
		for r := range ch {
			st = r.Status
		}
		return st
	}
	for _, n := range nodes[1:] {
		nodetest.WaitFor(b, "the terminal found from every node", func() bool { return status(n) == record.StatusOnline })
	}
	cycle := []record.Status{record.StatusIdle, record.StatusBusy, record.StatusOffline, record.StatusOnline}
	var slowest time.Duration
	b.ResetTimer()
	for i := range b.N {
		want := cycle[i%len(cycle)]
		start := time.Now()
		if _, err := nodes[0].Registry().SetStatus(ack.Terminal, want); err != nil {
			b.Fatal(err)
		}
		done := make(chan time.Duration, len(nodes)-1)
		for _, n := range nodes[1:] {
			go func() {
				for status(n) != want {
					if time.Since(start) > 30*time.Second {
						break
					}
				}
				done <- time.Since(start)
			}()
		}
		var took time.Duration
		for range nodes[1:] {
			took = max(took, <-done)
		}
		if took > 30*time.Second {
			b.Fatalf("status %s not seen everywhere after 30 s", want)
		}
		slowest = max(slowest, took)
	}
	b.StopTimer()
	b.ReportMetric(float64(slowest.Microseconds())/1000, "max-ms")
}
