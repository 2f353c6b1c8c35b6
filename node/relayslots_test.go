package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"

	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// TestCloseWhileRelayMute: a private node whose relay takes its
// reservation request and never answers closes at once. circuit.Reserve
// bounds its stream by its own ReserveTimeout (a minute), not by the
// context, so the relay keeper held Close for that minute.
func TestCloseWhileRelayMute(t *testing.T) {
	addr, asked := muteRelay(t)
	o := nodetest.Options(t)
	o.Bootstrap = []string{addr}
	o.Reachability = node.ReachPrivate
	n := nodetest.Start(t, o)
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("the private node asked its relay for no reservation")
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	// Close takes well under a second; the bound is generous.
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited over 30 s for a reservation the relay never answers")
	}
}

// muteRelay is a bootstrap node that takes reservation requests and never
// answers them; asked tells of the first.
func muteRelay(t *testing.T) (addr string, asked <-chan struct{}) {
	mute, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	ch := make(chan struct{}, 1)
	mute.SetStreamHandler(proto.ProtoIDv2Hop, func(s network.Stream) {
		select {
		case ch <- struct{}{}:
		default:
		}
		// Holds the request unanswered until the stream goes.
		for {
			if _, err := s.Read(make([]byte, 1<<10)); err != nil {
				return
			}
		}
	})
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: mute.ID(), Addrs: mute.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	return addrs[0].String(), ch
}

// TestConnectionsWhileRelayMute: while the relay keeper waits for a
// reservation (15 s for a mute relay), other nodes still connect. The
// keeper read libp2p's connectedness events only between its steps: past
// the 48 events that libp2p queues, the emitter stalled, and with it every
// new connection of the node until the reservation gave up.
func TestConnectionsWhileRelayMute(t *testing.T) {
	addr, asked := muteRelay(t)
	o := nodetest.Options(t)
	o.Bootstrap = []string{addr}
	o.Reachability = node.ReachPrivate
	n := nodetest.Start(t, o)
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("the private node asked its relay for no reservation")
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	// Each connection and its end are two events: 40 of each are well
	// past what libp2p queues.
	for i := range 40 {
		// A connection comes and goes in milliseconds; the stall took
		// the rest of the keeper's 15 s.
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		if err := h.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		h.Network().ClosePeer(n.ID())
		for len(n.Host().Network().ConnsToPeer(h.ID())) > 0 {
			select {
			case <-ctx.Done():
				t.Fatalf("connection %d: the node saw it end only after 8 s", i)
			case <-time.After(5 * time.Millisecond):
			}
		}
		cancel()
	}
}
