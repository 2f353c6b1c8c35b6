package rtheal_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/irmv/irmv/internal/leaktest"
	"github.com/irmv/irmv/internal/rtheal"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func newNode(t *testing.T) (host.Host, *dht.IpfsDHT) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "host", h)
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/irmv-test"), dht.DisableAutoRefresh())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return h, d
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDropsDeadPeers: when two of five routing-table peers stop, the
// healer drops both and refreshes the table; a live peer whose connection
// was closed stays.
func TestDropsDeadPeers(t *testing.T) {
	a, da := newNode(t)
	heal, err := rtheal.New(a, da, rtheal.Options{Delay: 10 * time.Millisecond, MinRefreshInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer heal.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var peers []host.Host
	for range 5 {
		h, _ := newNode(t)
		if err := a.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, h)
	}
	inTable := func(h host.Host) bool { return da.RoutingTable().Find(h.ID()) != "" }
	waitFor(t, "all five peers in the routing table", func() bool { return da.RoutingTable().Size() == 5 })

	dead := peers[:2]
	for _, h := range dead {
		h.Close()
	}
	// A live peer's connection ends too (as a connection manager trims).
	a.Network().ClosePeer(peers[2].ID())
	waitFor(t, "dead peers dropped", func() bool { return !slices.ContainsFunc(dead, inTable) })
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
	a, da := newNode(t)
	heal, err := rtheal.New(a, da, rtheal.Options{Delay: 10 * time.Millisecond, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer heal.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, _ := newNode(t)
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the peer in the routing table", func() bool { return da.RoutingTable().Size() == 1 })
	b.Close()
	waitFor(t, "the peer checked", func() bool { return heal.Stats().Checked == 1 })
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
	a, da := newNode(t)
	heal, err := rtheal.New(a, da, rtheal.Options{Delay: 10 * time.Millisecond, RecheckAfter: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer heal.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var peers []host.Host
	for range 3 {
		h, _ := newNode(t)
		if err := a.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, h)
	}
	waitFor(t, "the peers in the routing table", func() bool { return da.RoutingTable().Size() == 3 })
	for i, h := range peers {
		a.Network().ClosePeer(h.ID())
		waitFor(t, "the peer checked", func() bool { return heal.Stats().Checked == i+1 })
	}
	if err := heal.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if n := heal.AliveForTest(); n > 1 {
		t.Errorf("%d peers remembered as alive, want at most the last one (RecheckAfter passed for the others)", n)
	}
}
