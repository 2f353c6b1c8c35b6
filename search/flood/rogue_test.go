package flood

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// TestRogueNeighbourCannotEndQuery: a rogue flood neighbour answers every
// query at once with Want matching records, each signed by a node key it
// made up and naming that node as origin, so they pass every check. An
// honest node three hops away holds the real match: the query must still
// deepen to it, and deliver the rogue's hits as well.
func TestRogueNeighbourCannotEndQuery(t *testing.T) {
	const want = 4
	nodes := newNodes(t, 4, Options{})
	connect(t, nodes, chain(4))
	id := nodes[3].hostTerminal(t, "t1", "frank")

	rogue := newHost(t)
	var fakes []*Message
	for i := range want {
		r, origin := madeUpRecord(t, "fake"+string(rune('a'+i)), id.Value)
		fakes = append(fakes, &Message{Type: TypeHit, Hops: 3, Origin: origin, Records: []*record.Record{r}})
	}
	queried := make(chan int, 16) // TTLs of the queries the rogue saw
	rogue.SetStreamHandler(ProtocolID, func(s network.Stream) {
		q, err := Decode(s, MaxQuerySize)
		from := s.Conn().RemotePeer()
		s.Close()
		if err != nil || q.Type != TypeQuery {
			return
		}
		select {
		case queried <- q.TTL:
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, fake := range fakes {
			hit := *fake
			hit.GUID = q.GUID
			out, err := rogue.NewStream(ctx, from, ProtocolID)
			if err != nil {
				return
			}
			data, err := hit.Marshal()
			if err != nil {
				t.Errorf("encode hit: %v", err) // the fakes must pass transit checks
			}
			out.Write(data) // fails once the query has ended and the test closes
			out.Close()
		}
	})
	joinAsNeighbour(t, rogue, nodes[0])

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Generous waits: the first round's rogue hits must not end the
	// query, and the honest hit has three rounds to arrive.
	hits := collect(nodes[0].f.Query(ctx, id, QueryOptions{Want: want, MaxTTL: 3, StepWait: time.Second}))
	honest, fake := 0, 0
	for _, h := range hits {
		switch {
		case h.Origin == nodes[3].h.ID() && h.From == nodes[1].h.ID():
			honest++
		case h.From == rogue.ID():
			fake++
		default:
			t.Errorf("unexpected hit %+v", h)
		}
	}
	close(queried)
	var ttls []int
	for ttl := range queried {
		ttls = append(ttls, ttl)
	}
	t.Logf("rogue queried with TTLs %v; %d honest hits, %d rogue hits", ttls, honest, fake)
	if honest != 1 {
		t.Errorf("got %d hits from the honest node 3 hops away, want 1: the rogue ended the query early", honest)
	}
	if fake < want {
		t.Errorf("got %d of the rogue's hits, want every one of the first round's %d delivered", fake, want)
	}
}

// TestTallyPerNeighbour: each neighbour counts for at most ceil(Want/2)
// records, so for a Want of 2 or more an early end needs two neighbours.
func TestTallyPerNeighbour(t *testing.T) {
	recs := func(n int) []*record.Record { return make([]*record.Record, n) }
	a, b := peer.ID("a"), peer.ID("b")
	for _, c := range []struct {
		want    int
		hits    []Hit
		counted int
	}{
		{1, []Hit{{From: a, Records: recs(1)}}, 1},
		{2, []Hit{{From: a, Records: recs(32)}}, 1},
		{2, []Hit{{From: a, Records: recs(1)}, {From: b, Records: recs(1)}}, 2},
		{4, []Hit{{From: a, Records: recs(3)}, {From: a, Records: recs(3)}}, 2},
		{4, []Hit{{From: a, Records: recs(32)}, {From: b, Records: recs(1)}}, 3},
		{5, []Hit{{From: a, Records: recs(32)}, {From: b, Records: recs(32)}}, 6},
		{20, []Hit{{From: a, Records: recs(32), Origin: "x"}, {From: a, Records: recs(32), Origin: "y"}}, 10},
	} {
		got := newTally(c.want)
		for _, h := range c.hits {
			got.add(h)
		}
		if got.n != c.counted {
			t.Errorf("want %d, hits %v: counted %d, want %d", c.want, c.hits, got.n, c.counted)
		}
	}
}

// TestQueryHitsBounded: neighbours that send a pending query as many hits
// as each may, while the query's reader takes none, fill no more than the
// query's bound; the rest are dropped and counted.
func TestQueryHitsBounded(t *testing.T) {
	const rogues = 6
	const sent = rogues * maxHitsPerNeighbour // over maxQueuedHits + 64 in transit
	nodes := newNodes(t, 1, Options{})
	id := ident.ID{Kind: ident.KindName, Value: "frank"}
	r, origin := madeUpRecord(t, "fake", "frank")
	for range rogues {
		rogueNeighbour(t, nodes[0], r, origin, maxHitsPerNeighbour, nil)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hits := nodes[0].f.Query(ctx, id, QueryOptions{Want: 10 * sent, MaxTTL: 1, StepWait: 50 * time.Second})
	// Nobody reads the hits while the rogues send. Each hit is either
	// held (at most maxQueuedHits, + 64 in transit) or dropped.
	waitFor(t, 30*time.Second, "the rogues' hits dropped beyond the bound", func() bool {
		return nodes[0].f.Stats().Dropped[DropQueryFull] >= sent-maxQueuedHits-64
	})
	waitFor(t, 30*time.Second, "the rogues' hits received", func() bool { return nodes[0].f.Stats().MessagesIn >= sent })
	cancel()
	n := len(collect(hits))
	t.Logf("%d hits sent, %d dropped as query_full, %d read after cancel", sent, nodes[0].f.Stats().Dropped[DropQueryFull], n)
}

// madeUpRecord is a record for name signed by a node key made up for it,
// naming that node as host: it passes every check a flood hit gets.
func madeUpRecord(t *testing.T, terminal, name string) (*record.Record, peer.ID) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	origin, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	r, err := record.SignNode(&record.Body{
		Terminal:    terminal,
		Identifiers: record.Identifiers{Name: name},
		Node:        origin.String(),
		Seq:         1,
		Time:        time.Now().UnixMilli(),
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	r.Status = record.StatusOnline
	return r, origin
}

// joinAsNeighbour connects h to n and waits until n knows it speaks the
// flood protocol (a flood neighbour).
func joinAsNeighbour(t *testing.T, h host.Host, n *testNode) {
	t.Helper()
	if err := h.Connect(context.Background(), peerInfo(n.h)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "rogue known as a flood neighbour", func() bool {
		ps, _ := n.h.Peerstore().SupportsProtocols(h.ID(), ProtocolID)
		return len(ps) == 1
	})
}

// rogueNeighbour joins h to n as a flood neighbour that, for every query,
// passes the GUID to guids and answers with hits copies of a hit of r.
func rogueNeighbour(t *testing.T, n *testNode, r *record.Record, origin peer.ID, hits int, guids chan<- GUID) host.Host {
	t.Helper()
	rogue := newHost(t)
	rogue.SetStreamHandler(ProtocolID, func(s network.Stream) {
		q, err := Decode(s, MaxQuerySize)
		from := s.Conn().RemotePeer()
		s.Close()
		if err != nil || q.Type != TypeQuery {
			return
		}
		select {
		case guids <- q.GUID:
		default:
		}
		_ = sendHits(rogue, from, q.GUID, r, origin, hits) // fails once the test is over
	})
	joinAsNeighbour(t, rogue, n)
	return rogue
}

// sendHits sends n hits for g from h to p, one stream each.
func sendHits(h host.Host, p peer.ID, g GUID, r *record.Record, origin peer.ID, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hit := Message{Type: TypeHit, GUID: g, Hops: 1, Origin: origin, Records: []*record.Record{r}}
	for range n {
		out, err := h.NewStream(ctx, p, ProtocolID)
		if err != nil {
			return err
		}
		err = Encode(out, &hit)
		out.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// TestHitsOnlyFromAskedPeers: hits travel back along the reverse path, so
// a hit for one of our own queries can only come from a neighbour the
// query went to. A peer that was not asked (here one that learnt the GUID
// from a rogue neighbour) has its hits dropped and counted, while the
// query runs and after it ended, and they are not delivered.
func TestHitsOnlyFromAskedPeers(t *testing.T) {
	nodes := newNodes(t, 1, Options{})
	id := ident.ID{Kind: ident.KindName, Value: "frank"}
	r, origin := madeUpRecord(t, "fake", "frank")
	guids := make(chan GUID, 1)
	rogue := rogueNeighbour(t, nodes[0], r, origin, 1, guids)
	stranger := newHost(t) // no flood handler: never a neighbour
	if err := stranger.Connect(context.Background(), peerInfo(nodes[0].h)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qctx, stop := context.WithCancel(ctx)
	hits := make(chan []Hit, 1)
	go func() {
		hits <- collect(nodes[0].f.Query(qctx, id, QueryOptions{Want: 100, MaxTTL: 1, StepWait: 50 * time.Second}))
	}()
	var g GUID
	select {
	case g = <-guids:
	case <-ctx.Done():
		t.Fatal("the query did not reach the rogue neighbour")
	}
	const strangers = 5
	if err := sendHits(stranger, nodes[0].h.ID(), g, r, origin, strangers); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every hit handled", func() bool {
		s := nodes[0].f.Stats()
		return s.HitsDelivered+s.Dropped[DropUnasked] >= 1+strangers
	})
	stop()
	got := <-hits
	for _, h := range got {
		if h.From != rogue.ID() {
			t.Errorf("delivered a hit from %s, which was not asked", h.From)
		}
	}
	if len(got) != 1 {
		t.Errorf("delivered %d hits, want the rogue neighbour's 1", len(got))
	}
	if d := nodes[0].f.Stats().Dropped[DropUnasked]; d != strangers {
		t.Errorf("dropped %d hits as unasked, want %d", d, strangers)
	}

	// After the query ended: still dropped as unasked, not taken as a
	// late answer (which would set how long later queries wait).
	if err := sendHits(stranger, nodes[0].h.ID(), g, r, origin, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the late hit handled", func() bool {
		return nodes[0].f.Stats().Dropped[DropUnasked] == strangers+1
	})
	if d := nodes[0].f.Stats().Dropped[DropLate]; d != 0 {
		t.Errorf("%d hits from an unasked peer taken as late answers", d)
	}
}

// TestHitsPerNeighbourBounded: one neighbour sends far more hits for one
// query than an honest one can (its own matches in at most MaxHitRecords
// hits plus maxRoutedHits routed from behind it) while the reader takes
// them all: the excess is dropped and counted, not delivered.
func TestHitsPerNeighbourBounded(t *testing.T) {
	const sent = 3 * maxHitsPerNeighbour
	nodes := newNodes(t, 1, Options{})
	id := ident.ID{Kind: ident.KindName, Value: "frank"}
	r, origin := madeUpRecord(t, "fake", "frank")
	rogueNeighbour(t, nodes[0], r, origin, sent, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	qctx, stop := context.WithCancel(ctx)
	hits := make(chan []Hit, 1)
	go func() {
		hits <- collect(nodes[0].f.Query(qctx, id, QueryOptions{Want: 10 * sent, MaxTTL: 1, StepWait: 50 * time.Second}))
	}()
	waitFor(t, 30*time.Second, "the rogue's hits handled", func() bool {
		s := nodes[0].f.Stats()
		return s.HitsDelivered+s.Dropped[DropRate]+s.Dropped[DropQueryFull] >= sent
	})
	stop()
	got := len(<-hits)
	s := nodes[0].f.Stats()
	t.Logf("%d hits sent, %d delivered, %d dropped as rate, %d as query_full", sent, got, s.Dropped[DropRate], s.Dropped[DropQueryFull])
	if got > maxHitsPerNeighbour {
		t.Errorf("delivered %d hits from one neighbour for one query, want at most %d", got, maxHitsPerNeighbour)
	}
	if s.Dropped[DropRate] < sent-maxHitsPerNeighbour {
		t.Errorf("dropped %d hits as rate, want at least %d", s.Dropped[DropRate], sent-maxHitsPerNeighbour)
	}
}
