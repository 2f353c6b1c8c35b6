package sim

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/p2pstream"
	"github.com/irmv/irmv/search"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// askNet builds three linked nodes with terminals (Latency 20 ms).
func askNet(tb testing.TB, waitIdentify bool) *simnet {
	tb.Helper()
	n := &simnet{cfg: Config{Nodes: 3, Latency: 20 * time.Millisecond, TerminalsPerNode: 1, WaitIdentify: waitIdentify}, byID: map[peer.ID]*simNode{}}
	n.cfg.defaults()
	n.keys = newKeysForTest(1)
	n.rng = newRngForTest(1)
	tb.Cleanup(n.close)
	ctx := context.Background()
	if err := n.build(ctx, &Result{}); err != nil {
		tb.Fatal(err)
	}
	if err := n.register(ctx, &Result{}); err != nil {
		tb.Fatal(err)
	}
	return n
}

// disconnect closes a's connections to b and waits until b has seen them
// go (mocknet closes the far end in the background).
func disconnect(tb testing.TB, a, b *simNode) {
	tb.Helper()
	sub, err := b.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		tb.Fatal(err)
	}
	defer sub.Close()
	if err := a.h.Network().ClosePeer(b.h.ID()); err != nil {
		tb.Fatal(err)
	}
	for b.h.Network().Connectedness(a.h.ID()) != network.NotConnected {
		select {
		case <-sub.Out():
		case <-time.After(time.Minute):
			tb.Fatal("the far end of a closed connection stays open")
		}
	}
}

// askTimes is what one lookup request from a to b's terminal took on the
// connection a has (warm), on a new connection (cold), and what a DHT
// request on a new connection took.
type askTimes struct{ warm, cold, dhtCold time.Duration }

func measureAsk(tb testing.TB, n *simnet) askTimes {
	tb.Helper()
	ctx := context.Background()
	a, b := n.nodes[0], n.nodes[1]
	ids := []ident.ID{{Kind: ident.KindUID, Value: b.terms[0].uid}}
	ask := func() time.Duration {
		t0 := time.Now()
		recs, _, err := search.QueryNode(ctx, a.h, b.h.ID(), ids, 1)
		d := time.Since(t0)
		if err != nil || len(recs) != 1 {
			tb.Fatalf("QueryNode: %d records, %v", len(recs), err)
		}
		return d
	}
	var at askTimes
	ask() // connected for sure
	at.warm = ask()
	disconnect(tb, a, b)
	at.cold = ask()
	disconnect(tb, a, b)
	m := p2pstream.NewDHTSender(a.h, []protocol.ID{"/irmv/kad/1.0.0"})
	t0 := time.Now()
	if _, err := m.SendRequest(ctx, b.h.ID(), pb.NewMessage(pb.Message_FIND_NODE, []byte("key"), 0)); err != nil {
		tb.Fatal(err)
	}
	at.dhtCold = time.Since(t0)
	return at
}

// TestRoundTrip checks that a lookup request and its answer take a whole
// link round trip, short messages included (see latentStream), also on a
// new connection, and that waiting for identify there costs more: at
// least half a round trip on mocknet, which delivers identify's answer
// (a short message followed by a close, on a stream the simulator does
// not wrap) without latency; a whole one on a real network.
func TestRoundTrip(t *testing.T) {
	for _, wait := range []bool{false, true} {
		n := askNet(t, wait)
		rt := 2 * n.cfg.Latency
		coldMin := rt
		if wait {
			coldMin = rt + rt/2
		}
		for range 2 {
			at := measureAsk(t, n)
			t.Logf("wait for identify %v: warm %v, cold %v, DHT cold %v (round trip %v)", wait, at.warm, at.cold, at.dhtCold, rt)
			if at.warm < rt {
				t.Errorf("warm ask took %v, less than a round trip of %v", at.warm, rt)
			}
			if at.cold < coldMin || at.dhtCold < coldMin {
				t.Errorf("cold ask %v, DHT request %v: less than %v", at.cold, at.dhtCold, coldMin)
			}
		}
	}
}

// BenchmarkAskRoundTrips reports, in link round trips (medians over b.N),
// what a lookup request costs on a connection the asker has and on a new
// one, and a DHT request on a new one: as nodes ask (p2pstream: no wait for
// identify) and as go-libp2p's host.NewStream would (wait-identify).
// Run with -benchtime 20x on a quiet machine: the time includes waiting
// for the CPU.
func BenchmarkAskRoundTrips(b *testing.B) {
	for _, wait := range []bool{false, true} {
		name := "p2pstream"
		if wait {
			name = "wait-identify"
		}
		b.Run(name, func(b *testing.B) {
			n := askNet(b, wait)
			rt := float64(2 * n.cfg.Latency)
			var warm, cold, dhtCold []float64
			for b.Loop() {
				at := measureAsk(b, n)
				warm = append(warm, float64(at.warm)/rt)
				cold = append(cold, float64(at.cold)/rt)
				dhtCold = append(dhtCold, float64(at.dhtCold)/rt)
			}
			b.ReportMetric(median(warm), "warm-rt")
			b.ReportMetric(median(cold), "cold-rt")
			b.ReportMetric(median(dhtCold), "dht-cold-rt")
		})
	}
}

func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}
