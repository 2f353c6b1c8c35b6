package flood

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/record"
)

// TestFarSlowHopsFound: dynamic querying waits for hits from far hops
// whose links are much slower than the link to the asker's neighbour. A
// chain 0-1-2-3-4-5 on mocknet: the link 0-1 is fast (its round trip,
// measured at 1 ms as the DHT would record it, sets the first wait per hop
// near MinStepWait), every other link has 60 ms latency. Node 2 (2 hops)
// and node 5 (5 hops) host a match; node 5's hit takes ~0.5 s per round,
// more than the measured waits of all rounds together, and is found
// because node 2's hit shows how slow the hops are.
func TestFarSlowHopsFound(t *testing.T) {
	const n, latency = 6, 60 * time.Millisecond
	mn := mocknet.New()
	testenv.Close(t, "mn", mn)
	nodes := make([]*testNode, n)
	for i := range nodes {
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		m := &testMatcher{}
		f, err := New(Options{Host: h, Matcher: m})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, "f", f)
		nodes[i] = &testNode{h: h, f: f, m: m}
	}
	for i := 0; i+1 < n; i++ {
		l, err := mn.LinkPeers(nodes[i].h.ID(), nodes[i+1].h.ID())
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			l.SetOptions(mocknet.LinkOptions{Latency: latency})
		}
		if _, err := mn.ConnectPeers(nodes[i].h.ID(), nodes[i+1].h.ID()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i+1 < n; i++ {
		for _, pair := range [][2]host.Host{{nodes[i].h, nodes[i+1].h}, {nodes[i+1].h, nodes[i].h}} {
			waitFor(t, 30*time.Second, fmt.Sprintf("flood protocol %d-%d", i, i+1), func() bool {
				ps, err := pair[0].Peerstore().SupportsProtocols(pair[1].ID(), ProtocolID)
				return err == nil && len(ps) == 1
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The round trip to the neighbour as the DHT records it (a measured
	// one would vary with the machine's load).
	nodes[0].h.Peerstore().RecordLatency(nodes[1].h.ID(), time.Millisecond)
	measured := nodes[0].f.stepWait([]peer.ID{nodes[1].h.ID()})
	nodes[2].hostTerminal(t, "near", "anna")
	id := nodes[5].hostTerminal(t, "far", "anna")
	// The far hit needs 2 × 4 slow links; the rounds that reach node 5
	// (TTL 5 and 7) end, at the measured wait, sooner after they are sent
	// ((5+7) × step).
	if far := 8 * latency; 12*measured >= far {
		t.Fatalf("measured step %v: the query would wait %v after the first round reaching node 5, not less than the far hit's %v; the test shows nothing", measured, 12*measured, far)
	}
	start := time.Now()
	hits := collect(nodes[0].f.Query(ctx, ident.ID{Kind: ident.KindName, Value: id.Value}, QueryOptions{}))
	found := map[int]bool{}
	for _, h := range hits {
		found[h.Hops] = true
	}
	if !found[2] || !found[5] {
		t.Fatalf("hits from hops %v after %v (step measured %v), want from 2 and 5", found, time.Since(start), measured)
	}
}

// slowMatcher answers like its testMatcher, delay later: a node that is
// slow to answer (a loaded access point).
type slowMatcher struct {
	*testMatcher
	delay time.Duration
}

func (m slowMatcher) Match(id ident.ID, limit int) []*record.Record {
	recs := m.testMatcher.Match(id, limit)
	if len(recs) > 0 {
		<-time.After(m.delay)
	}
	return recs
}

// TestFarSlowOnlyHitFound: a match that only a far node holds, which
// answers slower than all rounds of a query wait, is missed by the first
// query (nothing near shows how slow it is) and found by the next, because
// the first one's late hit is remembered. Real hosts on 127.0.0.1, a chain
// 0-1-2-3; node 3 answers 2 s late.
func TestFarSlowOnlyHitFound(t *testing.T) {
	const delay = 2 * time.Second
	nodes := newNodes(t, 3, Options{})
	h := newHost(t)
	slow := &testNode{h: h, m: &testMatcher{}}
	f, err := New(Options{Host: h, Matcher: slowMatcher{slow.m, delay}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "flooder", f)
	slow.f = f
	nodes = append(nodes, slow)
	connect(t, nodes, chain(4))
	id := slow.hostTerminal(t, "far", "anna")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A fixed step, so that the rounds' waits do not depend on the
	// machine: (1+2+3+5) × 10 ms. The second query ends with the hit.
	opts := QueryOptions{StepWait: 10 * time.Millisecond, MaxTTL: 5, Want: 1}
	start := time.Now()
	if hits := collect(nodes[0].f.Query(ctx, id, opts)); len(hits) > 0 {
		t.Fatalf("first query found %d hits after %v; the slow node answers after %v: the test shows nothing", len(hits), time.Since(start), delay)
	}
	took := time.Since(start)
	waitFor(t, 30*time.Second, "the late hit", func() bool { return nodes[0].f.Stats().Dropped[DropLate] > 0 })

	start = time.Now()
	hits := collect(nodes[0].f.Query(ctx, id, opts))
	if len(hits) != 1 || hits[0].Hops != 3 || hits[0].Origin != slow.h.ID() {
		t.Fatalf("second query: %d hits after %v (first query ended after %v), want the one from node 3", len(hits), time.Since(start), took)
	}
	t.Logf("first query ended after %v, the second found the far hit after %v", took, time.Since(start))
}

// TestAnswerTimes checks the remembered answer times: the slowest per
// distance, within the TTL asked, for AnswerMemory, bounded.
func TestAnswerTimes(t *testing.T) {
	var a answerTimes
	t0 := time.Now()
	if w := a.wait(MaxTTL, t0); w != 0 {
		t.Fatalf("nothing remembered: wait %v", w)
	}
	a.note(5, 400*time.Millisecond, t0)
	a.note(5, 100*time.Millisecond, t0) // faster: the slowest stays
	a.note(2, 200*time.Millisecond, t0)
	a.note(0, time.Hour, t0)        // out of range: ignored
	a.note(MaxTTL+1, time.Hour, t0) // likewise
	for _, tc := range []struct {
		ttl   int
		after time.Duration
		want  time.Duration
	}{
		{1, 0, 0},
		{3, 0, 300*time.Millisecond + MinStepWait},
		{5, 0, 600*time.Millisecond + MinStepWait},
		{7, AnswerMemory, 600*time.Millisecond + MinStepWait},
		{7, AnswerMemory + time.Second, 0}, // forgotten
	} {
		if w := a.wait(tc.ttl, t0.Add(tc.after)); w != tc.want {
			t.Errorf("wait(%d) after %v = %v, want %v", tc.ttl, tc.after, w, tc.want)
		}
	}
	// An answer about as slow confirms the memory; a far slower one is
	// waited for only up to TTL × MaxStepWait.
	t1 := t0.Add(AnswerMemory / 2)
	a.note(5, 250*time.Millisecond, t1)
	if w, want := a.wait(5, t1.Add(AnswerMemory)), 600*time.Millisecond+MinStepWait; w != want {
		t.Errorf("confirmed: wait %v, want %v", w, want)
	}
	a.note(1, 3*time.Second, t1)
	if w := a.wait(1, t1); w != MaxStepWait {
		t.Errorf("wait for a 3 s slow answer from 1 hop = %v, want at most %v", w, MaxStepWait)
	}
	if w, want := a.wait(MaxTTL, t1), 4500*time.Millisecond+MinStepWait; w != want {
		t.Errorf("wait for a 3 s slow answer within %d hops = %v, want %v", MaxTTL, w, want)
	}
	// An answer slower than any round waits (a node frozen for a minute)
	// could not be waited for: it is not remembered, and queries do not
	// wait their longest for it for AnswerMemory.
	var b answerTimes
	b.note(2, time.Minute, t1)
	b.note(3, MaxTTL*MaxStepWait+time.Millisecond, t1)
	if w := b.wait(MaxTTL, t1); w != 0 {
		t.Errorf("wait after answers slower than any round = %v, want 0", w)
	}
	b.note(3, MaxTTL*MaxStepWait, t1) // just within
	if w := b.wait(MaxTTL, t1); w != MaxTTL*MaxStepWait {
		t.Errorf("wait after an answer within the longest round = %v, want %v", w, MaxTTL*MaxStepWait)
	}
}
