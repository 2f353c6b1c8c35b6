package node_test

import (
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
	mute, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	asked := make(chan struct{}, 1)
	mute.SetStreamHandler(proto.ProtoIDv2Hop, func(s network.Stream) {
		select {
		case asked <- struct{}{}:
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
	o := nodetest.Options(t)
	o.Bootstrap = []string{addrs[0].String()}
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
