package flood

import (
	"context"
	"testing"
	"time"
)

// BenchmarkFloodQuery finds a terminal 3 hops away in a chain of 4 real
// loopback hosts, by dynamic querying and by one full flood.
func BenchmarkFloodQuery(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts QueryOptions
	}{
		{"dynamic", QueryOptions{Want: 1, StepWait: 20 * time.Millisecond}},
		{"full", QueryOptions{Want: 1, FullFlood: true, StepWait: 20 * time.Millisecond}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			nodes := newNodes(b, 4, Options{PerPeerBurst: 1 << 20})
			connect(b, nodes, chain(4))
			id := nodes[3].hostTerminal(b, "t1", "erin")
			ctx := context.Background()
			before := quiesce(b, nodes)
			for b.Loop() {
				hits := collect(nodes[0].f.Query(ctx, id, bc.opts))
				if len(hits) != 1 {
					b.Fatalf("got %d hits, want 1", len(hits))
				}
			}
			b.StopTimer()
			msgs := quiesce(b, nodes) - before
			b.ReportMetric(float64(msgs)/float64(b.N), "messages/op")
		})
	}
}
