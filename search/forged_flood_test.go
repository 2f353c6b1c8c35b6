package search_test

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search/flood"
)

// TestForgedFloodHitsRejected: a rogue flood neighbour answers every query
// with hits whose records pass the protocol's transit checks (they name
// the rogue as their host) but are forged, tampered, stale or signed by
// someone else. The resolver keeps only the one good record and counts the
// rest in irmv_records_rejected_total{path="flood"}.
func TestForgedFloodHitsRejected(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	bad, other := newHost(t), newHost(t)
	good := nodeRecord(t, bad, bad.ID(), "good", 0)
	tampered := nodeRecord(t, bad, bad.ID(), "tampered", 0)
	tampered.Body = []byte(strings.Replace(string(tampered.Body), "tampered", "tampereD", 1))
	badSig := nodeRecord(t, bad, bad.ID(), "badsig", 0)
	badSig.Sig[0] ^= 0xff
	// Names the rogue but is signed by another node's key.
	otherSigned := nodeRecord(t, other, bad.ID(), "othersigned", 0)
	stale := nodeRecord(t, bad, bad.ID(), "stale", 2*record.MaxAge)
	future := nodeRecord(t, bad, bad.ID(), "future", -2*record.MaxAge)
	forged := []*record.Record{tampered, badSig, otherSigned, stale, future}

	bad.SetStreamHandler(flood.ProtocolID, func(s network.Stream) {
		q, err := flood.Decode(s, flood.MaxQuerySize)
		from := s.Conn().RemotePeer()
		s.Close()
		if err != nil || q.Type != flood.TypeQuery {
			return
		}
		hit := &flood.Message{Type: flood.TypeHit, GUID: q.GUID, Hops: q.Hops + 1, Origin: bad.ID(),
			Records: append([]*record.Record{good}, forged...)}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := bad.NewStream(ctx, from, flood.ProtocolID)
		if err != nil {
			return
		}
		if err := flood.Encode(out, hit); err != nil {
			t.Errorf("encode hit: %v", err) // the forgeries must pass transit checks
		}
		out.Close()
	})
	if err := bad.Connect(context.Background(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "rogue known as a flood neighbour", func() bool {
		ps, _ := n.Host().Peerstore().SupportsProtocols(bad.ID(), flood.ProtocolID)
		return len(ps) > 0
	})

	var got []client.Result
	for _, uid := range []string{"good", "tampered", "badsig", "othersigned", "stale", "future"} {
		got = append(got, collect(t, n, client.Query{Text: "uid:" + uid, Via: client.ViaFlood, Timeout: 3 * time.Second})...)
	}
	if len(got) == 0 {
		t.Fatal("the good record was not found either: the rogue's hits never arrived")
	}
	for _, r := range got {
		if r.Identifiers.UID != "good" || !r.Verified {
			t.Errorf("forged record reached the results: %+v", r)
		}
	}
	// The rogue answers every query with its good record too; that record
	// answers only uid:good, so the other queries must not return it.
	if len(got) != 1 {
		t.Errorf("got %d results over six queries, want the good record once: %+v", len(got), got)
	}
	rejected := floodRejected(t, n.APIURL())
	t.Logf("irmv_records_rejected_total{path=\"flood\"} = %v", rejected)
	if rejected < float64(len(forged)) {
		t.Errorf("rejected %v records, want at least %d", rejected, len(forged))
	}
}

func floodRejected(t *testing.T, api string) float64 {
	t.Helper()
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, `irmv_records_rejected_total{path="flood"} `); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// TestRogueFloodNeighbourCannotFillResults: a rogue flood neighbour answers
// every query at once with the search's limit of matching records, each
// signed by a node key it made up, so they verify. The real terminal, two
// hops away behind an honest node, must still be among the results.
func TestRogueFloodNeighbourCannotFillResults(t *testing.T) {
	const limit = 4
	nodes := nodetest.Chain(t, 2, nil)
	first := nodes[0]
	// The real terminal's node speaks only the flood, so the DHT does not
	// link it to first: it stays two hops away.
	far := newHost(t)
	honest, err := record.SignNode(&record.Body{Terminal: "real", Identifiers: record.Identifiers{UID: "kim-9"},
		Node: far.ID().String(), Seq: 1, Time: time.Now().UnixMilli()}, far.Peerstore().PrivKey(far.ID()))
	if err != nil {
		t.Fatal(err)
	}
	honest.Status = record.StatusOnline
	ff, err := flood.New(flood.Options{Host: far, Matcher: oneRecord{honest}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ff.Close(); err != nil {
			t.Errorf("closing flooder: %v", err)
		}
	})
	if err := far.Connect(context.Background(), peer.AddrInfo{ID: nodes[1].ID(), Addrs: nodes[1].Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "far node known as a flood neighbour", func() bool {
		ps, _ := nodes[1].Host().Peerstore().SupportsProtocols(far.ID(), flood.ProtocolID)
		qs, _ := far.Peerstore().SupportsProtocols(nodes[1].ID(), flood.ProtocolID)
		return len(ps) > 0 && len(qs) > 0
	})

	bad := newHost(t)
	var recs []*record.Record
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	origin, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * limit {
		r, err := record.SignNode(&record.Body{Terminal: "fake-" + strconv.Itoa(i), Identifiers: record.Identifiers{UID: "kim-9"},
			Node: origin.String(), Seq: 1, Time: time.Now().UnixMilli()}, key)
		if err != nil {
			t.Fatal(err)
		}
		r.Status = record.StatusOnline
		recs = append(recs, r)
	}
	bad.SetStreamHandler(flood.ProtocolID, func(s network.Stream) {
		q, err := flood.Decode(s, flood.MaxQuerySize)
		from := s.Conn().RemotePeer()
		s.Close()
		if err != nil || q.Type != flood.TypeQuery {
			return
		}
		hit := &flood.Message{Type: flood.TypeHit, GUID: q.GUID, Hops: 2, Origin: origin, Records: recs}
		data, err := hit.Marshal()
		if err != nil {
			t.Errorf("encode hit: %v", err) // the fakes must pass transit checks
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := bad.NewStream(ctx, from, flood.ProtocolID)
		if err != nil {
			return
		}
		out.Write(data) // fails when the search has ended and the test closes
		out.Close()
	})
	if err := bad.Connect(context.Background(), peer.AddrInfo{ID: first.ID(), Addrs: first.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "rogue known as a flood neighbour", func() bool {
		ps, _ := first.Host().Peerstore().SupportsProtocols(bad.ID(), flood.ProtocolID)
		return len(ps) > 0
	})

	got := collect(t, first, client.Query{Text: "uid:kim-9", Via: client.ViaFlood, Limit: limit, Timeout: 30 * time.Second})
	found := 0
	for _, r := range got {
		if r.Node == far.ID().String() {
			found++
		}
	}
	t.Logf("%d results, %d of them the real terminal; first connected to it: %v",
		len(got), found, first.Host().Network().Connectedness(far.ID()))
	if found != 1 {
		t.Errorf("the real terminal is not among the %d results: %+v", len(got), got)
	}
	if len(got) != limit {
		t.Errorf("got %d results, want the limit %d (the rogue's fill the rest)", len(got), limit)
	}
}

// oneRecord is a flood.Matcher hosting one terminal, matched by unique ID.
type oneRecord struct{ r *record.Record }

func (m oneRecord) Match(id ident.ID, limit int) []*record.Record {
	b, err := m.r.Decoded()
	if err != nil || id.Kind != ident.KindUID || id.Value != b.Identifiers.UID || limit < 1 {
		return nil
	}
	return []*record.Record{m.r}
}

// TestRogueFloodNeighboursCannotDecideLimitOne: with a limit of 1 the first
// result is the answer, so a rogue flood neighbour answering every query
// at once with its own signed record of the queried unique ID would be
// it. A bare unique ID is flooded at once (it is read as a name too),
// while the DHT path names the real terminal's node: the DHT's answer
// must be the result, with one rogue neighbour and with two.
func TestRogueFloodNeighboursCannotDecideLimitOne(t *testing.T) {
	nodes := nodetest.Chain(t, 4, nil)
	first, last := nodes[0], nodes[3]
	for _, n := range nodes {
		nodetest.WaitFor(t, "routing tables", func() bool { return n.DHT().RoutingTable().Size() >= 2 })
	}
	if _, err := last.Registry().Register(client.Registration{UID: "kim-9", Address: "10.99.0.42"}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "announced", func() bool {
		return len(collect(t, first, client.Query{Text: "uid:kim-9", Via: client.ViaDHT, Limit: 1, Timeout: time.Second})) > 0
	})

	var asked atomic.Int64 // queries the rogues answered
	addRogue := func() {
		bad := newHost(t)
		fake := nodeRecord(t, bad, bad.ID(), "kim-9", 0)
		bad.SetStreamHandler(flood.ProtocolID, func(s network.Stream) {
			q, err := flood.Decode(s, flood.MaxQuerySize)
			from := s.Conn().RemotePeer()
			s.Close()
			if err != nil || q.Type != flood.TypeQuery {
				return
			}
			asked.Add(1)
			data, err := (&flood.Message{Type: flood.TypeHit, GUID: q.GUID, Hops: 1, Origin: bad.ID(), Records: []*record.Record{fake}}).Marshal()
			if err != nil {
				t.Errorf("encode hit: %v", err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if out, err := bad.NewStream(ctx, from, flood.ProtocolID); err == nil {
				out.Write(data) // fails when the search has ended and the test closes
				out.Close()
			}
		})
		if err := bad.Connect(context.Background(), peer.AddrInfo{ID: first.ID(), Addrs: first.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
		nodetest.WaitFor(t, "rogue known as a flood neighbour", func() bool {
			ps, _ := first.Host().Peerstore().SupportsProtocols(bad.ID(), flood.ProtocolID)
			return len(ps) > 0
		})
	}
	for rogues := 1; rogues <= 2; rogues++ {
		addRogue()
		before := asked.Load()
		for range 5 {
			got := collect(t, first, client.Query{Text: "kim-9", Limit: 1, Timeout: 10 * time.Second})
			if len(got) != 1 || got[0].Node != last.ID().String() {
				t.Errorf("%d rogue neighbours: got %+v, want only the real terminal on %s", rogues, got, last.ID())
			}
		}
		if asked.Load() == before {
			t.Errorf("%d rogue neighbours: never queried, so they were not put to the test", rogues)
		}
	}
}

// TestLimitOneFloodOnly: a limit-1 search that only the flood answers (a
// name prefix, which the DHT holds no key for) still returns the match,
// once the flood has ended, whether it floods alone or beside the DHT.
func TestLimitOneFloodOnly(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	if _, err := nodes[1].Registry().Register(client.Registration{Name: "Kim Berg", Address: "10.99.0.42"}); err != nil {
		t.Fatal(err)
	}
	for _, via := range []string{client.ViaFlood, client.ViaAuto} {
		got := collect(t, nodes[0], client.Query{Text: "ki be", Via: via, Limit: 1, Timeout: 10 * time.Second})
		if len(got) != 1 || got[0].Node != nodes[1].ID().String() || got[0].Via != client.ViaFlood {
			t.Errorf("via %s: got %+v, want Kim Berg on %s through the flood", via, got, nodes[1].ID())
		} else {
			t.Logf("via %s: found after %.0f ms", via, got[0].ElapsedMS)
		}
	}
}
