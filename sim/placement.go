package sim

import (
	"context"
	"slices"

	"github.com/irmv/irmv/ident"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
)

// placement records, once every identifier is published, where the
// records of the terminals' identifiers are stored: how many of the k
// (the publisher's) DHT servers closest to each key (its host left out) store it, and how
// many records none of them or no node but the host stores.
func (n *simnet) placement(ctx context.Context, res *Result) {
	var ids []peer.ID
	for _, sn := range n.nodes {
		if !sn.private { // a DHT client stores no records
			ids = append(ids, sn.h.ID())
		}
	}
	holds := func(p peer.ID, key []byte) bool {
		ps, err := n.byID[p].d.ProviderStore().GetProviders(ctx, key)
		return err == nil && len(ps) > 0
	}
	var counts []float64
	for _, sn := range n.nodes {
		for _, t := range sn.terms {
			if ctx.Err() != nil {
				return
			}
			key := ident.ID{Kind: ident.KindUID, Value: t.uid}.CID().Hash()
			closest := slices.DeleteFunc(kb.SortClosestPeers(slices.Clone(ids), kb.ConvertKey(string(key))), func(p peer.ID) bool { return p == sn.h.ID() })
			k := min(sn.k, len(closest)) // its publisher's k
			c := 0
			for _, p := range closest[:k] {
				if holds(p, key) {
					c++
				}
			}
			counts = append(counts, float64(c))
			if c > 0 {
				continue
			}
			res.RecordsOffClosest++
			if !slices.ContainsFunc(closest[k:], func(p peer.ID) bool { return holds(p, key) }) {
				res.RecordsOnlyAtHost++
			}
		}
	}
	res.ClosestHoldersP50 = percentile(counts, 50)
	res.ClosestHoldersP1 = percentile(counts, 1)
	if len(counts) > 0 {
		res.ClosestHoldersMin = slices.Min(counts)
	}
}
