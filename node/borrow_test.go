package node_test

import (
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/call/turn/grant"
	"github.com/irmv/irmv/node/nodetest"
)

// TestMuteLenderAsked once: a node behind a NAT whose only lender takes
// grant requests and never answers gives its terminals their servers
// without the lender's after one wait (borrowWait, 2 s), not one wait
// each: every welcome, invite and accept asked the mute lender again, one
// after the other, so eight welcomes at once took 16 s.
func TestMuteLenderAskedOnce(t *testing.T) {
	mute, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mute.Close() })
	mute.SetStreamHandler(grant.Protocol, func(s network.Stream) {
		for {
			if _, err := s.Read(make([]byte, 256)); err != nil {
				return
			}
		}
	})
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: mute.ID(), Addrs: mute.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	o := nodetest.Options(t) // its relay is on loopback: not public
	o.Bootstrap = []string{addrs[0].String()}
	n := nodetest.Start(t, o)
	nodetest.WaitFor(t, "the mute node known to lend", func() bool {
		ps, _ := n.Host().Peerstore().SupportsProtocols(mute.ID(), grant.Protocol)
		return len(ps) > 0
	})

	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := n.ICEServersForTest("t"); len(got) == 0 {
				t.Error("no ICE servers: the node's own relay is missing")
			}
		})
	}
	wg.Wait()
	// One wait is 2 s; eight in a row are 16.
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("8 terminals' ICE servers took %v: the mute lender was asked for each", d)
	}
}
