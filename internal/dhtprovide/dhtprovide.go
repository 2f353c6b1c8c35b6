// Package dhtprovide announces provider records into kad-dht the way an
// irmv node does, for the node and for the simulator (sim), so that the
// simulator measures the node's own publishing.
//
// It differs from kad-dht's IpfsDHT.Provide in two ways. Each peer is told
// only the addresses of this node that it can use (kad-dht sends every
// peer the same list, private addresses included). And a provide counts
// as done only when its lookup of the closest peers completed and one of
// them took the record: kad-dht's Provide reports success when its lookup
// found no reachable peer or every ADD_PROVIDER failed, so a publisher
// would not try again while no node but the publisher stores the record.
package dhtprovide

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrNotProvided: the lookup named no peer, or none of the closest peers
// took the provider record; the publisher tries again.
var ErrNotProvided = errors.New("no peer stored the provider record")

// PutTimeout bounds one ADD_PROVIDER (kad-dht's putOperationTimeout).
const PutTimeout = 30 * time.Second

// Addrs chooses the addresses of this node each peer is told. Nil fields
// keep every address.
type Addrs struct {
	// Filter keeps the peerstore addresses of a peer this node can use
	// (to tell what the peer sees of it when not connected).
	Filter func([]ma.Multiaddr) []ma.Multiaddr
	// AnnounceTo picks from own, this node's addresses, those a peer
	// reached at remote can use.
	AnnounceTo func(own, remote []ma.Multiaddr) []ma.Multiaddr
}

// Provide stores this node as a provider of c in d's own provider store
// and, if announce, on the closest peers of c's key (d's k) that a lookup
// bounded by ctx found. It fails when the lookup did not complete within
// ctx (kad-dht's Provide stores the record on the far peers found so far
// then), when ctx ended before the records were sent, or with
// ErrNotProvided when no peer took it. It returns the peers that took it.
func Provide(ctx context.Context, d *dht.IpfsDHT, c cid.Cid, announce bool, a Addrs) ([]peer.ID, error) {
	// Stores this node as a provider locally; announces nothing.
	if err := d.Provide(ctx, c, false); err != nil || !announce {
		return nil, err
	}
	msgr, err := dhtpb.NewProtocolMessenger(d.MessageSender())
	if err != nil {
		return nil, err
	}
	// An error when ctx ended before the lookup completed.
	peers, err := d.GetClosestPeers(ctx, string(c.Hash()))
	if err != nil {
		return nil, err
	}
	h := d.Host()
	own := h.Addrs()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		stored []peer.ID
	)
	for _, p := range peers {
		wg.Go(func() {
			addrs := own
			if a.AnnounceTo != nil {
				var remote []ma.Multiaddr
				for _, conn := range h.Network().ConnsToPeer(p) {
					remote = append(remote, conn.RemoteMultiaddr())
				}
				if len(remote) == 0 {
					remote = h.Peerstore().Addrs(p)
					if a.Filter != nil {
						remote = a.Filter(remote)
					}
				}
				addrs = a.AnnounceTo(own, remote)
			}
			pctx, cancel := context.WithTimeout(ctx, PutTimeout)
			defer cancel()
			if msgr.PutProviderAddrs(pctx, p, c.Hash(), peer.AddrInfo{ID: h.ID(), Addrs: addrs}) == nil {
				mu.Lock()
				stored = append(stored, p)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return stored, err
	}
	if len(stored) == 0 {
		return nil, ErrNotProvided
	}
	return stored, nil
}
