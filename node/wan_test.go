package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node/nodetest"
)

// TestWANCheckDoesNotStallIdentify: while the node checks a public
// address with a peer that never answers (AutoNAT v2 waits 15 s for it),
// identify's events still go through. libp2p's emitters wait for a
// subscriber whose buffer is full, and the check used to run on the
// subscription's own loop: 128 peers identified meanwhile stalled
// identify for every peer until the check gave up. The observed
// addresses are told by the test on the node's event bus; nothing is
// sent to them (only the silent peer is asked to dial them).
func TestWANCheckDoesNotStallIdentify(t *testing.T) {
	o := nodetest.Options(t)
	// A LAN address: observed public addresses are checked at its port.
	o.Listen = append(o.Listen, "/ip4/10.99.0.1/tcp/0")
	n := nodetest.Start(t, o)

	silent, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "silent peer", silent)
	asked, ended := make(chan struct{}), make(chan struct{})
	silent.SetStreamHandler(autonatv2.DialProtocol, func(s network.Stream) {
		select {
		case <-asked:
		default:
			close(asked)
		}
		buf := make([]byte, 1024)
		for {
			if _, err := s.Read(buf); err != nil {
				break // the asking node gave up
			}
		}
		s.Reset()
		select {
		case <-ended:
		default:
			close(ended)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := silent.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	h := n.Host()
	nodetest.WaitFor(t, "the node to learn the silent peer's AutoNAT v2", func() bool {
		ps, err := h.Peerstore().SupportsProtocols(silent.ID(), autonatv2.DialProtocol)
		return err == nil && len(ps) > 0
	})
	em, err := h.EventBus().Emitter(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "emitter", em)
	conn := h.Network().ConnsToPeer(silent.ID())[0]
	seen := func(i int) error {
		obs := ma.StringCast(fmt.Sprintf("/ip4/198.51.%d.%d/tcp/4001", i/250, i%250+1))
		return em.Emit(event.EvtPeerIdentificationCompleted{Peer: silent.ID(), Conn: conn, ObservedAddr: obs})
	}

	// A check under way with the silent peer. Each try is a new address
	// (one tried is not tried again for minutes).
	for i := 0; ; i++ {
		if err := seen(i); err != nil {
			t.Fatal(err)
		}
		select {
		case <-asked:
		case <-ctx.Done():
			t.Fatal("the node never asked the silent peer to check an address")
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	done := make(chan error, 1)
	go func() {
		for i := 1000; i < 3000; i++ {
			if err := seen(i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ended:
		t.Fatal("2,000 identify events waited for the address check to end")
	}
}
