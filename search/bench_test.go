package search_test

import (
	"bufio"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/wire"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/share"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
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
	if _, err := last.Registry().Register(client.Registration{Phone: "+49 30 1234567", Address: "10.99.0.42"}); err != nil {
		b.Fatal(err)
	}
	last.Search().SetLookupRate(rate.Inf, 0) // the benchmark asks faster than one peer may
	q := client.Query{Text: "030 1234567", Via: client.ViaDHT, Limit: 1, Timeout: 10 * time.Second}
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
// host over 16 concurrent streams that stay open and do not check the
// records. The register does not publish, so only serving runs (asker and
// server still share the machine's cores).
func BenchmarkLookupServe10k(b *testing.B) {
	asker, server := newHost(b), newHost(b)
	norm, err := ident.NewNormalizer("DE")
	if err != nil {
		b.Fatal(err)
	}
	reg, err := share.Open(share.Options{Path: b.TempDir() + "/t.db", NodeKey: server.Peerstore().PrivKey(server.ID()), Normalizer: norm})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	svc, err := search.New(search.Options{Host: server, Matcher: reg, Normalizer: norm})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	svc.SetLookupRate(rate.Inf, 0) // measure capacity, not the per-peer limit
	for i := range 10000 {
		if _, err := reg.Register(client.Registration{
			Name: fmt.Sprintf("Terminal %d Person", i), UID: fmt.Sprintf("u-%d", i), Address: "10.99.0.1",
		}); err != nil {
			b.Fatal(err)
		}
	}
	if err := asker.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		st, err := asker.NewStream(context.Background(), server.ID(), search.LookupProtocol)
		if err != nil {
			b.Error(err)
			return
		}
		defer st.Close()
		r := bufio.NewReader(st)
		for pb.Next() {
			i := seq.Add(1) % 10000
			// A raw asker: the asker's own signature checks would
			// otherwise take most of the shared CPU.
			n, err := ask(st, r, fmt.Sprintf("u-%d", i))
			if err != nil || n != 1 {
				b.Errorf("query %d: %d records, %v", i, n, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}

// ask sends one lookup request on a stream kept open and counts the
// records in the answer.
func ask(st network.Stream, r *bufio.Reader, uid string) (int, error) {
	if err := wire.Write(st, &search.LookupRequest{Kind: ident.KindUID, Value: uid, Limit: 1}, search.MaxLookupRequest); err != nil {
		return 0, err
	}
	var resp search.LookupResponse
	if err := wire.Read(r, &resp, search.MaxLookupResponse); err != nil {
		return 0, err
	}
	return len(resp.Records), nil
}

// BenchmarkSearchEnd4 measures how long a search takes to end (its
// channel closes), not to its first result, from the first node of a warm
// 4-node chain to a terminal on the last: a name word (flooded), an exact
// unique ID and a bare unique ID (read as a uid and as a name), each also
// with a limit of 1 (the first result ends the search), and name prefixes,
// which only the flood finds.
func BenchmarkSearchEnd4(b *testing.B) {
	nodes := nodetest.Chain(b, 4, nil)
	first, last := nodes[0], nodes[3]
	for _, n := range nodes {
		nodetest.WaitFor(b, "routing tables", func() bool { return n.DHT().RoutingTable().Size() >= 2 })
	}
	if _, err := last.Registry().Register(client.Registration{Name: "Kim Berg", UID: "kim-1", Address: "10.99.0.42"}); err != nil {
		b.Fatal(err)
	}
	for _, n := range nodes {
		n.Search().SetLookupRate(rate.Inf, 0) // the benchmark asks faster than one peer may
	}
	run := func(b *testing.B, text string, limit int) int {
		ch, err := first.Search().Search(context.Background(), client.Query{Text: text, Limit: limit, Timeout: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for range ch {
			n++
		}
		return n
	}
	nodetest.WaitFor(b, "announced", func() bool { return run(b, "uid:kim-1", 0) > 0 })
	for _, q := range []struct {
		name, text string
		limit      int
	}{
		{"name", "kim", 0}, {"uid", "uid:kim-1", 0}, {"bare-uid", "kim-1", 0},
		{"name-limit1", "kim", 1}, {"whole-name-limit1", "kim berg", 1}, {"uid-limit1", "uid:kim-1", 1}, {"bare-uid-limit1", "kim-1", 1},
		{"prefix", "ki be", 0}, {"prefix-limit1", "ki be", 1}, // only the flood finds prefixes
	} {
		b.Run(q.name, func(b *testing.B) {
			for range b.N {
				if run(b, q.text, q.limit) == 0 {
					b.Fatalf("%q: not found", q.text)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/search")
		})
	}
}
