package node_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/pbio"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// dhtListener is a libp2p host that speaks just enough of irmv's DHT
// protocol to be asked for closer peers (it knows none) and to be sent
// provider records, whose announced addresses it passes on.
func dhtListener(t *testing.T) (peer.AddrInfo, <-chan []string) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/"+lanAddr+"/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatalf("listen on %s (run under scripts/netns-run): %v", lanAddr, err)
	}
	testenv.Close(t, "h", h)
	provided := make(chan []string, 16)
	h.SetStreamHandler("/irmv/kad/1.0.0", func(s network.Stream) {
		defer s.Close()
		r := pbio.NewDelimitedReader(s, network.MessageSizeMax)
		w := pbio.NewDelimitedWriter(s)
		for {
			var m dhtpb.Message
			if err := r.ReadMsg(&m); err != nil {
				return
			}
			if m.GetType() == dhtpb.Message_ADD_PROVIDER {
				var addrs []string
				for _, p := range m.GetProviderPeers() {
					for _, b := range p.GetAddrs() {
						if a, err := ma.NewMultiaddrBytes(b); err == nil {
							addrs = append(addrs, a.String())
						}
					}
				}
				select {
				case provided <- addrs:
				default:
				}
				continue // no answer to ADD_PROVIDER
			}
			if err := w.WriteMsg(&dhtpb.Message{Type: m.GetType(), Key: m.GetKey()}); err != nil {
				return
			}
		}
	})
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}, provided
}

// TestProvideAddrsPerPeer: a node tells a DHT peer on its own LAN its LAN
// addresses in a provider record, and a peer beyond its LAN none of them
// (here: no public or relay address is left, so only the placeholder).
func TestProvideAddrsPerPeer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		beyondLAN  bool
		wantLANIP  bool
		wantPlaceh bool
	}{
		{"peer on the LAN", false, true, false},
		{"peer beyond the LAN", true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := nodetest.Options(t)
			o.Listen = []string{"/ip4/" + lanAddr + "/tcp/0"}
			o.Reachability = node.ReachPublic
			n := nodetest.Start(t, o)
			listener, provided := dhtListener(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := n.Host().Connect(ctx, listener); err != nil {
				t.Fatal(err)
			}
			nodetest.WaitFor(t, "the listener in the routing table", func() bool {
				return n.DHT().RoutingTable().Find(listener.ID) != ""
			})
			if tc.beyondLAN {
				// The node no longer counts lanAddr's subnet as its own:
				// the listener is somewhere else.
				n.SetSubnetsForTest([]*net.IPNet{{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)}})
			}
			if _, err := n.Registry().Register(client.Registration{Name: "Anna Lindqvist", Address: "10.99.0.11"}); err != nil {
				t.Fatal(err)
			}
			var addrs []string
			select {
			case addrs = <-provided:
			case <-ctx.Done():
				t.Fatal("no provider record reached the listener")
			}
			var lanIP, placeholder bool
			for _, a := range addrs {
				lanIP = lanIP || strings.Contains(a, "/ip4/"+lanAddr+"/")
				placeholder = placeholder || a == "/p2p-circuit"
				if strings.Contains(a, "/ip4/127.") {
					t.Errorf("loopback address %s announced to a peer on %s", a, lanAddr)
				}
			}
			if lanIP != tc.wantLANIP || placeholder != tc.wantPlaceh {
				t.Errorf("provider record addresses %v: LAN address %v (want %v), placeholder %v (want %v)",
					addrs, lanIP, tc.wantLANIP, placeholder, tc.wantPlaceh)
			}
		})
	}
}
