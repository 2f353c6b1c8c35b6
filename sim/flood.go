package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/search/flood"
)

// floodTotals sums the flood counters of the live nodes.
func (n *simnet) floodTotals() (msgs, handled, dups uint64) {
	for _, sn := range n.alive() {
		s := sn.fl.Stats()
		msgs += s.MessagesOut
		handled += s.QueriesHandled
		dups += s.Duplicates
	}
	return
}

// floodOnce runs one flood query from sn, waits for its last copies to
// settle, and returns the messages it cost, the nodes that handled it and
// the hop count of the hit from want (-1: none).
func (n *simnet) floodOnce(ctx context.Context, sn *simNode, id ident.ID, o flood.QueryOptions, want *simNode) (msgs, handled, dups uint64, hops int) {
	m0, h0, d0 := n.floodTotals()
	hops = -1
	for hit := range sn.fl.Query(ctx, id, o) {
		if want != nil && hit.Origin == want.h.ID() && hops < 0 {
			hops = hit.Hops
		}
	}
	// Copies still travel after the originator stops listening: wait
	// until the counters stand still.
	m1, h1, d1 := m0, h0, d0
	for ctx.Err() == nil {
		time.Sleep(4*n.cfg.Latency + 50*time.Millisecond)
		m, h, d := n.floodTotals()
		if m == m1 && h == h1 && d == d1 {
			break
		}
		m1, h1, d1 = m, h, d
	}
	return m1 - m0, h1 - h0, d1 - d0, hops
}

// measureFlood measures dynamic querying against full floods, and a
// flood's reach per TTL. Queries run one at a time so counters attribute.
func (n *simnet) measureFlood(ctx context.Context, res *Result) {
	live := n.alive()
	// Rounds wait flood.DefaultStepWait per TTL step, as in the resolver.
	step := flood.DefaultStepWait
	samples := n.cfg.FloodSamples
	var all, hop2 []float64
	found := 0
	for i := 0; i < 3*samples && ctx.Err() == nil; i++ {
		if i >= samples && len(hop2) >= 5 {
			break
		}
		from := live[n.rng.IntN(len(live))]
		to := from
		for to == from {
			to = live[n.rng.IntN(len(live))]
		}
		t := to.terms[n.rng.IntN(len(to.terms))]
		msgs, _, _, hops := n.floodOnce(ctx, from, ident.ID{Kind: ident.KindUID, Value: t.uid},
			flood.QueryOptions{Want: 1, StepWait: step}, to)
		if i < samples {
			all = append(all, float64(msgs))
			if hops > 0 {
				found++
			}
		}
		if hops == 2 {
			hop2 = append(hop2, float64(msgs))
		}
		n.cfg.Progress("flood: dynamic queries", min(i+1, samples), samples)
	}
	res.FloodMessagesPerQuery = mean(all)
	if len(all) > 0 {
		res.FloodFoundRate = float64(found) / float64(len(all))
	}
	res.FloodHop2Messages = mean(hop2)
	res.FloodHop2Samples = len(hop2)

	// Reach and cost of full floods of TTL 1..7, for an identifier no one
	// has, from a few origins. Without hits to wait for, the originator
	// need not listen long; the counters settle regardless.
	const origins = 3
	step = 2*n.cfg.Latency + 30*time.Millisecond
	for ttl := 1; ttl <= flood.MaxTTL && ctx.Err() == nil; ttl++ {
		var reach, msgs, dup []float64
		for o := range origins {
			from := live[n.rng.IntN(len(live))]
			id := ident.ID{Kind: ident.KindUID, Value: fmt.Sprintf("absent-%d-%d", ttl, o)}
			m, h, d, _ := n.floodOnce(ctx, from, id, flood.QueryOptions{Want: 1, MaxTTL: ttl, FullFlood: true, StepWait: step}, nil)
			reach = append(reach, float64(h))
			msgs = append(msgs, float64(m))
			dup = append(dup, float64(d))
			res.FloodMaxHandledPerQ = max(res.FloodMaxHandledPerQ, float64(h))
		}
		res.FloodReachByTTL = append(res.FloodReachByTTL, mean(reach))
		res.FloodMessagesByTTL = append(res.FloodMessagesByTTL, mean(msgs))
		if ttl == flood.MaxTTL {
			res.FloodFullMessages = mean(msgs)
			res.FloodDuplicatesPerQ = mean(dup)
		}
		n.cfg.Progress("flood: reach per TTL", ttl, flood.MaxTTL)
	}
	if res.FloodFullMessages > 0 {
		res.FloodHop2Ratio = res.FloodHop2Messages / res.FloodFullMessages
	}
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
