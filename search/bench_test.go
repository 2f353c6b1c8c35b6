package search_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/search/ident"
	"github.com/irmv/irmv/share"
	"golang.org/x/time/rate"
)

// BenchmarkExactLookup5 measures an exact lookup (phone number) from the
// first node of a warm 5-node chain to a terminal on the last: DHT
// provider lookup plus the direct record query to the hosting node.
func BenchmarkExactLookup5(b *testing.B) {
	nodes := nodetest.Chain(b, 5, nil)
	first, last := nodes[0], nodes[4]
	for _, n := range nodes {
		nodetest.WaitFor(b, "routing tables", func() bool { return n.DHT().RoutingTable().Size() >= 2 })
	}
	if _, err := last.Registry().Register(share.Registration{Phone: "+49 30 1234567", Address: "10.99.0.42"}); err != nil {
		b.Fatal(err)
	}
	last.Search().SetLookupRate(rate.Inf, 0) // the benchmark asks faster than one peer may
	q := search.Query{Text: "030 1234567", Via: search.ViaDHT, Limit: 1, Timeout: 10 * time.Second}
	find := func() bool {
		ch, err := first.Search().Search(context.Background(), q)
		if err != nil {
			b.Fatal(err)
		}
		found := false
		for range ch {
			found = true
		}
		return found
	}
	lookup := func() {
		if !find() {
			b.Fatal("not found")
		}
	}
	// Provide returns before the record is stored remotely; once found,
	// the network is warm.
	nodetest.WaitFor(b, "announced", find)
	b.ResetTimer()
	for range b.N {
		lookup()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/lookup")
}

// BenchmarkLookupServe10k measures how many lookup-protocol queries one
// node answers per second from 10,000 hosted terminals, asked by another
// node over 16 concurrent streams.
func BenchmarkLookupServe10k(b *testing.B) {
	nodes := nodetest.Chain(b, 2, nil)
	asker, server := nodes[0], nodes[1]
	reg := server.Registry()
	for i := range 10000 {
		if _, err := reg.Register(share.Registration{
			Name: fmt.Sprintf("Terminal %d Person", i), UID: fmt.Sprintf("u-%d", i), Address: "10.99.0.1",
		}); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	server.Search().SetLookupRate(rate.Inf, 0) // measure capacity, not the per-peer limit
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1) % 10000
			recs, _, err := search.QueryNode(context.Background(), asker.Host(), server.ID(), ident.ID{Kind: ident.KindUID, Value: fmt.Sprintf("u-%d", i)}, 1)
			if err != nil || len(recs) != 1 {
				b.Errorf("query %d: %d records, %v", i, len(recs), err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
