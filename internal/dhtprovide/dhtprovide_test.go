package dhtprovide_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/dhtprovide"
	"github.com/irmv/irmv/internal/dhttest"
	"github.com/irmv/irmv/internal/leaktest"
	"github.com/irmv/irmv/search"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// withDeadPeers is a node whose routing table holds only peers that have
// stopped: its lookups find no reachable peer.
func withDeadPeers(t *testing.T, ctx context.Context) (host.Host, *dht.IpfsDHT) {
	t.Helper()
	a, da := dhttest.Node(t)
	for range 2 {
		h, d := dhttest.Node(t)
		if err := a.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		dhttest.WaitFor(t, "the peer in the routing table", func() bool { return da.RoutingTable().Find(h.ID()) != "" })
		d.Close()
		h.Close()
	}
	return a, da
}

func holds(t *testing.T, d *dht.IpfsDHT, c cid.Cid) bool {
	t.Helper()
	ps, err := d.ProviderStore().GetProviders(context.Background(), c.Hash())
	return err == nil && len(ps) > 0
}

// TestProvideStoredNowhere: a provide whose lookup reached no peer fails
// (kad-dht's Provide reports success then, and the node's did, so the
// publisher never tried again while only the publisher stored the record).
func TestProvideStoredNowhere(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, da := withDeadPeers(t, ctx)
	c := ident.ID{Kind: ident.KindUID, Value: "alice"}.CID()
	stored, err := dhtprovide.Provide(ctx, da, c, true, dhtprovide.Addrs{})
	if !errors.Is(err, dhtprovide.ErrNotProvided) {
		t.Fatalf("provide with only dead peers: stored on %v, err %v; want %v", stored, err, dhtprovide.ErrNotProvided)
	}
	if !holds(t, da, c) {
		t.Fatal("the node does not store itself as the provider")
	}
}

type router struct{ d *dht.IpfsDHT }

func (r router) Provide(ctx context.Context, c cid.Cid, announce bool) error {
	_, err := dhtprovide.Provide(ctx, r.d, c, announce, dhtprovide.Addrs{})
	return err
}

func (r router) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	return r.d.FindProvidersAsync(ctx, c, count)
}

// TestPublisherRetriesUntilStored: the publisher keeps an identifier
// whose record no peer took pending, and stores it on the first live
// peer that comes.
func TestPublisherRetriesUntilStored(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, da := withDeadPeers(t, ctx)
	reg := prometheus.NewRegistry()
	pub := search.NewPublisher(router{da}, time.Hour, reg, nil)
	defer pub.Close()
	id := ident.ID{Kind: ident.KindUID, Value: "alice"}
	pub.Publish([]ident.ID{id})
	dhttest.WaitFor(t, "a failed announcement", func() bool { return provides(t, reg, "error") > 0 })
	if n := provides(t, reg, "ok"); n != 0 {
		t.Fatalf("%v announcements counted done while no peer took the record", n)
	}
	if n := pub.Pending(); n != 1 {
		t.Fatalf("pending after an announcement no peer took: %d, want 1", n)
	}
	b, db := dhttest.Node(t)
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	dhttest.WaitFor(t, "the record on the live peer", func() bool { return holds(t, db, id.CID()) })
	dhttest.WaitFor(t, "nothing pending", func() bool { return pub.Pending() == 0 })
}

// provides is the publisher's count of announcements with outcome.
func provides(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "irmv_dht_provides_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
