package rtheal_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/irmv/irmv/internal/dhttest"
	"github.com/irmv/irmv/internal/leaktest"
	"github.com/irmv/irmv/internal/rtheal"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// TestDropsDeadPeers: when two of five routing-table peers stop, the
// healer drops both and refreshes the table; a live peer whose connection
// was closed stays.
func TestDropsDeadPeers(t *testing.T) {
	a, da := dhttest.Node(t)
	heal, err := rtheal.New(a, da, rtheal.Options{Delay: 10 * time.Millisecond, MinRefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer heal.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var peers []host.Host
	for range 5 {
		h, _ := dhttest.Node(t)
		if err := a.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, h)
	}
	inTable := func(h host.Host) bool { return da.RoutingTable().Find(h.ID()) != "" }
	dhttest.WaitFor(t, "all five peers in the routing table", func() bool { return da.RoutingTable().Size() == 5 })

	dead := peers[:2]
	for _, h := range dead {
		h.Close()
	}
	// A live peer's connection ends too (as a connection manager trims).
	a.Network().ClosePeer(peers[2].ID())
	dhttest.WaitFor(t, "dead peers dropped", func() bool { return !slices.ContainsFunc(dead, inTable) })
	if err := heal.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	st := heal.Stats()
	if st.Dropped != 2 || st.Refreshes < 1 {
		t.Errorf("stats %+v, want 2 dropped and a refresh", st)
	}
	for _, h := range peers[2:] {
		if !inTable(h) {
			t.Errorf("live peer %s left the routing table", h.ID())
		}
	}
}

// TestKeepsTableWithoutConnections: a node that lost every connection (its
// own network is down) drops nobody.
func TestKeepsTableWithoutConnections(t *testing.T) {
	a, da := dhttest.Node(t)
	heal, err := rtheal.New(a, da, rtheal.Options{Delay: 10 * time.Millisecond, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer heal.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, _ := dhttest.Node(t)
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	dhttest.WaitFor(t, "the peer in the routing table", func() bool { return da.RoutingTable().Size() == 1 })
	b.Close()
	dhttest.WaitFor(t, "the peer checked", func() bool { return heal.Stats().Checked == 1 })
	if err := heal.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if st := heal.Stats(); st.Dropped != 0 || da.RoutingTable().Size() != 1 {
		t.Errorf("stats %+v, table size %d; want nothing dropped", st, da.RoutingTable().Size())
	}
}

// TestAliveForgotten: a peer found alive is remembered only for
// RecheckAfter (one entry per peer that ever dropped its connection and
// answered, for the life of the node, before).
func TestAliveForgotten(t *testing.T) {
	a, da := dhttest.Node(t)
	heal, err := rtheal.New(a, da, rtheal.Options{Delay: 10 * time.Millisecond, RecheckAfter: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer heal.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var peers []host.Host
	for range 3 {
		h, _ := dhttest.Node(t)
		if err := a.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, h)
	}
	dhttest.WaitFor(t, "the peers in the routing table", func() bool { return da.RoutingTable().Size() == 3 })
	for i, h := range peers {
		a.Network().ClosePeer(h.ID())
		dhttest.WaitFor(t, "the peer checked", func() bool { return heal.Stats().Checked == i+1 })
	}
	if err := heal.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := heal.AliveForTest(); n > 1 {
		t.Errorf("%d peers remembered as alive, want at most the last one (RecheckAfter passed for the others)", n)
	}
}
