package flood

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

func TestNewRejectsMissing(t *testing.T) {
	h := newHost(t)
	if _, err := New(Options{Matcher: &testMatcher{}}); !errors.Is(err, ErrNoHost) {
		t.Errorf("nil Host: got %v, want ErrNoHost", err)
	}
	if _, err := New(Options{Host: h}); !errors.Is(err, ErrNoMatcher) {
		t.Errorf("nil Matcher: got %v, want ErrNoMatcher", err)
	}
}

func TestChainTTL(t *testing.T) {
	nodes := newNodes(t, 5, Options{})
	connect(t, nodes, chain(5))
	id := nodes[4].hostTerminal(t, "t1", "jose muller")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if hits := collect(nodes[0].f.Query(ctx, id, QueryOptions{Want: 1, MaxTTL: 2, StepWait: 300 * time.Millisecond})); len(hits) != 0 {
		t.Fatalf("TTL 2 found a terminal 4 hops away: %+v", hits)
	}
	wantRoundTTL := map[int]int{4: 4, 7: 5} // schedules 1,2,3,4 and 1,2,3,5,7
	for _, ttl := range []int{4, 7} {
		hits := collect(nodes[0].f.Query(ctx, id, QueryOptions{Want: 1, MaxTTL: ttl, StepWait: 300 * time.Millisecond}))
		if len(hits) != 1 || len(hits[0].Records) != 1 {
			t.Fatalf("TTL %d: got %d hits, want 1 hit with 1 record: %+v", ttl, len(hits), hits)
		}
		h := hits[0]
		if h.Origin != nodes[4].h.ID() || h.From != nodes[1].h.ID() || h.Hops != 4 || h.TTL != wantRoundTTL[ttl] {
			t.Errorf("TTL %d: hit origin %s from %s hops %d ttl %d; want origin %s from %s hops 4 ttl %d",
				ttl, h.Origin, h.From, h.Hops, h.TTL, nodes[4].h.ID(), nodes[1].h.ID(), wantRoundTTL[ttl])
		}
		b, err := h.Records[0].Verify(h.Origin, time.Now())
		if err != nil {
			t.Fatalf("TTL %d: record does not verify: %v", ttl, err)
		}
		if b.Terminal != "t1" {
			t.Errorf("TTL %d: terminal %q, want t1", ttl, b.Terminal)
		}
	}
}

func TestDedupInCycles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		edges []edge
	}{
		{"ring6", 6, ring(6)},
		{"grid3x3", 9, grid(3, 3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := newNodes(t, tc.n, Options{})
			connect(t, nodes, tc.edges)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id := ident.ID{Kind: ident.KindName, Value: "nobody"}
			collect(nodes[0].f.Query(ctx, id, QueryOptions{FullFlood: true, StepWait: 20 * time.Millisecond}))
			quiesce(t, nodes)
			var dups uint64
			for i, n := range nodes {
				s := n.f.Stats()
				want := uint64(1)
				if i == 0 {
					want = 0
				}
				if s.QueriesHandled != want {
					t.Errorf("node %d handled %d queries, want %d", i, s.QueriesHandled, want)
				}
				dups += s.Duplicates
			}
			if dups == 0 {
				t.Error("no duplicates dropped in a topology with cycles")
			}
			t.Logf("duplicates dropped: %d", dups)
		})
	}
}

func TestBadMessagesDropped(t *testing.T) {
	nodes := newNodes(t, 2, Options{})
	connect(t, nodes, chain(2))
	id := nodes[1].hostTerminal(t, "t1", "alice")
	raw := newHost(t)
	b := nodes[1]
	if err := raw.Connect(context.Background(), peerInfo(b.h)); err != nil {
		t.Fatal(err)
	}
	guid := NewGUID().String()

	rec := signedRecord(t, raw, "x")
	hit, err := (&Message{Type: TypeHit, GUID: NewGUID(), Hops: 1, Origin: raw.ID(), Records: []*record.Record{rec}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		data   []byte
		reason DropReason
	}{
		{"ttl+hops>7", frame(`{"type":"query","guid":"` + guid + `","ttl":5,"hops":3,"kind":"name","value":"alice"}`), DropTTL},
		{"ttl 0", frame(`{"type":"query","guid":"` + guid + `","ttl":0,"hops":0,"kind":"name","value":"alice"}`), DropTTL},
		{"garbage", []byte("\x05hello"), DropMalformed},
		{"varint overflow", []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), DropMalformed},
		{"truncated", append(binary.AppendUvarint(nil, 100), "{}"...), DropMalformed},
		{"oversized prefix", append(binary.AppendUvarint(nil, 1<<20), "{}"...), DropOversize},
		{"oversized query", frame(`{"type":"query","guid":"` + guid + `","ttl":1,"hops":0,"kind":"name","value":"alice","pad":"` + strings.Repeat("x", 2000) + `"}`), DropOversize},
		{"unknown guid", hit, DropUnknownGUID},
	}
	for _, tc := range cases {
		before := b.f.Stats().Dropped[tc.reason]
		sendRaw(t, raw, b.h.ID(), tc.data)
		waitFor(t, 10*time.Second, tc.name+" counted", func() bool {
			return b.f.Stats().Dropped[tc.reason] == before+1
		})
	}
	if s := b.f.Stats(); s.QueriesHandled != 0 {
		t.Errorf("bad messages were handled: %+v", s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hits := collect(nodes[0].f.Query(ctx, id, QueryOptions{Want: 1, MaxTTL: 1, StepWait: 10 * time.Second}))
	if len(hits) != 1 {
		t.Fatalf("after bad messages: got %d hits, want 1", len(hits))
	}
}

// TestRateLimit: a peer that sends more queries than its bucket holds has
// exactly the bucket's worth handled and the rest dropped for rate, while
// an honest neighbour's query (its own bucket) gets through. The bucket
// never refills (rate 0), so the count does not depend on how fast the
// spam goes (internal/peerrate tests the refill on a fake clock).
func TestRateLimit(t *testing.T) {
	const burst = 100
	nodes := newNodes(t, 2, Options{})
	connect(t, nodes, chain(2))
	b, c := nodes[0], nodes[1]
	b.f.SetPerPeerRate(0, burst)
	id := b.hostTerminal(t, "t1", "alice")
	raw := newHost(t)
	if err := raw.Connect(context.Background(), peerInfo(b.h)); err != nil {
		t.Fatal(err)
	}

	const total = 1000
	var sent atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < total; i += 8 {
				data := frame(`{"type":"query","guid":"` + NewGUID().String() + `","ttl":1,"hops":0,"kind":"name","value":"spam"}`)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				s, err := raw.NewStream(ctx, b.h.ID(), ProtocolID)
				cancel()
				if err != nil {
					continue
				}
				if _, err := s.Write(data); err == nil && s.Close() == nil {
					sent.Add(1)
				}
			}
		})
	}

	// The honest neighbour's query gets through during the flood.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hits := collect(c.f.Query(ctx, id, QueryOptions{Want: 1, MaxTTL: 1, StepWait: time.Second}))
	wg.Wait()
	if len(hits) != 1 {
		t.Errorf("honest query during the flood: got %d hits, want 1", len(hits))
	}

	n := uint64(sent.Load())
	if n < total/2 {
		t.Fatalf("only %d of %d spam queries could be sent", n, total)
	}
	waitFor(t, 10*time.Second, "all spam counted", func() bool {
		s := b.f.Stats()
		return s.Dropped[DropRate]+s.QueriesHandled >= n+1
	})
	s := b.f.Stats()
	t.Logf("sent %d: handled %d, dropped for rate %d", n, s.QueriesHandled, s.Dropped[DropRate])
	if s.QueriesHandled != burst+1 || s.Dropped[DropRate] != n-burst {
		t.Errorf("handled %d and dropped %d for rate, want the bucket's %d and the honest query handled, the other %d dropped",
			s.QueriesHandled, s.Dropped[DropRate], burst, n-burst)
	}
}

func TestDynamicQueryingSavesMessages(t *testing.T) {
	const n = 20
	nodes := newNodes(t, n, Options{})
	connect(t, nodes, mesh(n))
	nbs := nodes[0].f.neighbours("")
	if len(nbs) == 0 {
		t.Fatal("node 0 has no neighbours")
	}
	var target *testNode
	for _, nd := range nodes {
		if nd.h.ID() == nbs[len(nbs)-1] {
			target = nd
		}
	}
	id := target.hostTerminal(t, "t1", "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	run := func(o QueryOptions) uint64 {
		before := quiesce(t, nodes)
		hits := collect(nodes[0].f.Query(ctx, id, o))
		// In a full flood a longer path may win the race to the target, so
		// only dynamic querying is sure to find it at 1 hop.
		if len(hits) == 0 || hits[0].Origin != target.h.ID() || !o.FullFlood && hits[0].Hops != 1 {
			t.Fatalf("%+v: got hits %+v, want one from the neighbour", o, hits)
		}
		return quiesce(t, nodes) - before
	}
	// Both end at the first hit; a generous wait per hop only matters on a
	// loaded machine (at 200 ms the full flood once found nothing in CI).
	dynamic := run(QueryOptions{Want: 1, StepWait: time.Second})
	full := run(QueryOptions{Want: 1, FullFlood: true, StepWait: time.Second})
	t.Logf("messages: dynamic %d, full TTL-7 flood %d", dynamic, full)
	if dynamic >= full {
		t.Errorf("dynamic querying sent %d messages, full flood %d", dynamic, full)
	}
}

func TestCloseLeaksNoGoroutines(t *testing.T) {
	nodes := newNodes(t, 3, Options{})
	connect(t, nodes, chain(3))
	id := nodes[2].hostTerminal(t, "t1", "carol")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if hits := collect(nodes[0].f.Query(ctx, id, QueryOptions{Want: 1})); len(hits) != 1 {
		t.Fatalf("got %d hits, want 1", len(hits))
	}
	// A query still running when the Flooder closes ends.
	long := nodes[0].f.Query(ctx, ident.ID{Kind: ident.KindName, Value: "nobody"}, QueryOptions{StepWait: time.Minute})
	for _, n := range nodes {
		if err := n.f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.f.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	select {
	case _, ok := <-long:
		if ok {
			t.Error("hit after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("query channel still open after Close")
	}
	if _, ok := <-nodes[0].f.Query(ctx, id, QueryOptions{}); ok {
		t.Error("Query after Close delivered a hit")
	}
	checkNoFloodGoroutines(t)
}

func TestQueryEndsWithoutNeighbours(t *testing.T) {
	nodes := newNodes(t, 1, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if hits := collect(nodes[0].f.Query(ctx, ident.ID{Kind: ident.KindName, Value: "x"}, QueryOptions{StepWait: time.Minute})); len(hits) != 0 {
		t.Fatalf("hits without neighbours: %+v", hits)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("query without neighbours took %v", d)
	}
	// An invalid identifier closes the channel at once.
	if hits := collect(nodes[0].f.Query(ctx, ident.ID{Kind: ident.KindName}, QueryOptions{})); len(hits) != 0 {
		t.Fatal("hits for an empty value")
	}
}

func TestPackHitsSplits(t *testing.T) {
	nodes := newNodes(t, 1, Options{})
	var recs []*record.Record
	for i := range 40 {
		recs = append(recs, signedRecord(t, nodes[0].h, fmt.Sprint("t", i)))
	}
	recs = append(recs, signedRecord(t, newHost(t), "foreign")) // names another node: skipped
	frames := nodes[0].f.packHits(NewGUID(), 2, recs)
	got := 0
	for _, fr := range frames {
		m, err := Decode(strings.NewReader(string(fr)), 0)
		if err != nil {
			t.Fatal(err)
		}
		got += len(m.Records)
	}
	if len(frames) != 2 || got != 40 {
		t.Errorf("40 records packed into %d hits with %d records, want 2 with 40", len(frames), got)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	nodes := append(newNodes(t, 1, Options{Registerer: reg}), newNodes(t, 1, Options{})...)
	connect(t, nodes, chain(2))
	id := nodes[1].hostTerminal(t, "t1", "dave")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One round, however slow the machine: the hit ends the query.
	if hits := collect(nodes[0].f.Query(ctx, id, QueryOptions{Want: 1, StepWait: 10 * time.Second})); len(hits) != 1 {
		t.Fatalf("got %d hits", len(hits))
	}
	// The hit can come back before the sender has counted its query.
	waitFor(t, 10*time.Second, "query counted", func() bool {
		return gathered(t, reg, "irmv_flood_messages_total", "dir", "out", "type", "query") >= 1
	})
	if v := gathered(t, reg, "irmv_flood_messages_total", "dir", "out", "type", "query"); v != 1 {
		t.Errorf("queries out = %v, want 1", v)
	}
	if v := gathered(t, reg, "irmv_flood_messages_total", "dir", "in", "type", "hit"); v != 1 {
		t.Errorf("hits in = %v, want 1", v)
	}
	if v := gathered(t, reg, "irmv_flood_dropped_total", "reason", "duplicate"); v != 0 {
		t.Errorf("duplicates = %v, want 0", v)
	}
	// A second Flooder on the same registry is refused.
	if _, err := New(Options{Host: nodes[1].h, Matcher: nodes[1].m, Registerer: reg}); err == nil {
		t.Error("second registration succeeded")
	}
}

// gathered returns the value of the counter name with the given label
// pairs, failing if there is none.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}
