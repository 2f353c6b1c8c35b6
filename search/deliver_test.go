package search

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search/flood"
)

// recordsMatcher answers every query with its records.
type recordsMatcher []*record.Record

func (m recordsMatcher) Match(ident.ID, int) []*record.Record { return m }

// TestFloodResultOutlivesFloodStop: a flood result that the search has
// taken is delivered even when the DHT path's exact answer stops the
// flood before the reader has read it. It used to be dropped, while the
// DHT path skipped it as already sent: `irmv call "Kim Berg"` then saw
// one of two equal terminals and rang it.
func TestFloodResultOutlivesFloodStop(t *testing.T) {
	newHost := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, "host", h)
		return h
	}
	newFlooder := func(h host.Host, m flood.Matcher) *flood.Flooder {
		f, err := flood.New(flood.Options{Host: h, Matcher: m})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, "flooder", f)
		return f
	}
	asker, hosting := newHost(), newHost()
	var kims recordsMatcher
	for _, handle := range []string{"kim-1", "kim-2"} {
		b := &record.Body{Terminal: handle, Identifiers: record.Identifiers{Name: "Kim Berg"}, Node: hosting.ID().String(), Seq: 1, Time: time.Now().UnixMilli()}
		r, err := record.SignNode(b, hosting.Peerstore().PrivKey(hosting.ID()))
		if err != nil {
			t.Fatal(err)
		}
		r.Status = record.StatusOnline
		kims = append(kims, r)
	}
	newFlooder(hosting, kims)
	norm, err := ident.NewNormalizer("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Host: asker, Matcher: recordsMatcher{}, Normalizer: norm, Flooder: newFlooder(asker, recordsMatcher{})})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "service", s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := asker.Connect(ctx, peer.AddrInfo{ID: hosting.ID(), Addrs: hosting.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for !supportsFlood(asker, hosting.ID()) || !supportsFlood(hosting, asker.ID()) {
		select {
		case <-ctx.Done():
			t.Fatal("the hosts never learnt each other's flood protocol")
		case <-time.After(10 * time.Millisecond):
		}
	}

	q := client.Query{Text: "Kim Berg", Via: client.ViaFlood}
	ids, err := s.Parse(&q)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan client.Result)
	r := &run{s: s, ids: ids, q: q, start: time.Now(), out: out, cancel: cancel, seen: map[string]bool{}, seqs: map[string]uint64{}, first: map[string]bool{}}
	floodCtx, stopFlood := context.WithCancel(ctx)
	defer stopFlood()
	flooded := make(chan struct{})
	noDHT := make(chan struct{})
	close(noDHT)
	go func() {
		defer close(flooded)
		r.viaFlood(floodCtx, ctx, noDHT)
	}()
	first := <-out
	// The second terminal is taken (marked sent) and waits for the reader
	// when the DHT path, answering exactly, stops the flood.
	for {
		r.mu.Lock()
		taken := len(r.seen)
		r.mu.Unlock()
		if taken == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the flood never brought the second terminal")
		case <-time.After(10 * time.Millisecond):
		}
	}
	stopFlood()
	select {
	case second := <-out:
		if second.Terminal == first.Terminal {
			t.Fatalf("%s twice", first.Terminal)
		}
	case <-flooded:
		t.Fatalf("the flood path ended without delivering the second terminal (the first was %s)", first.Terminal)
	}
	<-flooded
}

func supportsFlood(h host.Host, p peer.ID) bool {
	ps, err := h.Peerstore().SupportsProtocols(p, flood.ProtocolID)
	return err == nil && len(ps) > 0
}

// hungRouter is a real DHT whose lookups never answer: they end only when
// the search does, as on a network whose DHT peers have gone quiet.
type hungRouter struct{ *dht.IpfsDHT }

func (hungRouter) FindProvidersAsync(ctx context.Context, _ cid.Cid, _ int) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch
}

// TestLimitOneFloodAnswerWhenDHTHangs: a limit-1 search holds the flood's
// answer until the DHT path has ended; when that path never ends, the
// answer still comes before the search's deadline, not lost with it.
func TestLimitOneFloodAnswerWhenDHTHangs(t *testing.T) {
	newHost := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, "host", h)
		return h
	}
	newFlooder := func(h host.Host, m flood.Matcher) *flood.Flooder {
		f, err := flood.New(flood.Options{Host: h, Matcher: m})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, "flooder", f)
		return f
	}
	asker, hosting := newHost(), newHost()
	b := &record.Body{Terminal: "kim-1", Identifiers: record.Identifiers{Name: "Kim Berg"}, Node: hosting.ID().String(), Seq: 1, Time: time.Now().UnixMilli()}
	r, err := record.SignNode(b, hosting.Peerstore().PrivKey(hosting.ID()))
	if err != nil {
		t.Fatal(err)
	}
	r.Status = record.StatusOnline
	newFlooder(hosting, recordsMatcher{r})
	d, err := dht.New(asker, dht.Mode(dht.ModeServer))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "dht", d)
	norm, err := ident.NewNormalizer("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Host: asker, Matcher: recordsMatcher{}, Normalizer: norm, Router: hungRouter{d}, Flooder: newFlooder(asker, recordsMatcher{})})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "service", s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := asker.Connect(ctx, peer.AddrInfo{ID: hosting.ID(), Addrs: hosting.Addrs()}); err != nil {
		t.Fatal(err)
	}
	for !supportsFlood(asker, hosting.ID()) || !supportsFlood(hosting, asker.ID()) {
		select {
		case <-ctx.Done():
			t.Fatal("the hosts never learnt each other's flood protocol")
		case <-time.After(10 * time.Millisecond):
		}
	}
	res, err := s.Search(ctx, client.Query{Text: "ki be", Limit: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got []client.Result
	for r := range res {
		got = append(got, r)
	}
	if len(got) != 1 || got[0].Terminal != "kim-1" {
		t.Fatalf("got %+v, want kim-1 through the flood", got)
	}
	t.Logf("found after %.0f ms", got[0].ElapsedMS)
}
