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
			if err := Encode(out, &hit); err != nil {
				t.Errorf("encode hit: %v", err) // the fakes must pass transit checks
			}
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

// TestQueryHitsBounded: a peer that knows a pending query's GUID and sends
// it hit after hit, while the query's reader takes none, fills no more
// than the query's bound; the rest are dropped and counted.
func TestQueryHitsBounded(t *testing.T) {
	const sent = 3 * maxQueuedHits
	nodes := newNodes(t, 1, Options{})
	id := ident.ID{Kind: ident.KindName, Value: "frank"}
	r, origin := madeUpRecord(t, "fake", "frank")

	rogue := newHost(t)
	flooded := make(chan error, 1)
	rogue.SetStreamHandler(ProtocolID, func(s network.Stream) {
		q, err := Decode(s, MaxQuerySize)
		from := s.Conn().RemotePeer()
		s.Close()
		if err != nil || q.Type != TypeQuery {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		hit := Message{Type: TypeHit, GUID: q.GUID, Hops: 1, Origin: origin, Records: []*record.Record{r}}
		for range sent {
			out, err := rogue.NewStream(ctx, from, ProtocolID)
			if err != nil {
				flooded <- err
				return
			}
			if err := Encode(out, &hit); err != nil {
				flooded <- err
				return
			}
			out.Close()
		}
		flooded <- nil
	})
	joinAsNeighbour(t, rogue, nodes[0])

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hits := nodes[0].f.Query(ctx, id, QueryOptions{Want: 10 * sent, MaxTTL: 1, StepWait: 50 * time.Second})
	select { // nobody reads the hits while the rogue sends
	case err := <-flooded:
		if err != nil {
			t.Fatalf("rogue: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the rogue's hits were not all taken")
	}
	waitFor(t, 20*time.Second, "the rogue's hits handled", func() bool {
		s := nodes[0].f.Stats()
		return s.HitsDelivered+s.Dropped[DropQueryFull] >= sent
	})
	dropped := nodes[0].f.Stats().Dropped[DropQueryFull]
	cancel()
	n := len(collect(hits))
	t.Logf("%d hits sent, %d dropped as query_full, %d read after cancel", sent, dropped, n)
	if dropped < sent-maxQueuedHits-64 {
		t.Errorf("%d of %d hits dropped; a query holds at most %d (+64 in transit)", dropped, sent, maxQueuedHits)
	}
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
