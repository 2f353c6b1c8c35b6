package sim

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// tracingRouter is the search.Router of a simulated node: the node's DHT,
// timing Provide and recording the query events of lookups whose context
// carries a *lookupTrace.
type tracingRouter struct {
	d *dht.IpfsDHT

	mu       sync.Mutex
	provides []time.Duration
}

func (r *tracingRouter) Provide(ctx context.Context, c cid.Cid, announce bool) error {
	start := time.Now()
	err := r.d.Provide(ctx, c, announce)
	if err == nil {
		r.mu.Lock()
		r.provides = append(r.provides, time.Since(start))
		r.mu.Unlock()
	}
	return err
}

func (r *tracingRouter) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	tr, _ := ctx.Value(traceKey{}).(*lookupTrace)
	if tr == nil {
		return r.d.FindProvidersAsync(ctx, c, count)
	}
	ectx, events := routing.RegisterForQueryEvents(ctx)
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		for ev := range events {
			tr.add(ev)
		}
	}()
	in := r.d.FindProvidersAsync(ectx, c, count)
	out := make(chan peer.AddrInfo)
	start := time.Now()
	go func() {
		defer close(out)
		for ai := range in {
			tr.mu.Lock()
			if tr.firstProvider == 0 {
				tr.firstProvider = time.Since(start)
			}
			tr.providers = append(tr.providers, ai.ID)
			tr.mu.Unlock()
			select {
			case out <- ai:
			case <-ctx.Done():
				for range in { // let the DHT goroutine finish
				}
				return
			}
		}
	}()
	return out
}

type traceKey struct{}

// lookupTrace reconstructs the depth of every peer a lookup queried and
// the peer whose answer named it.
type lookupTrace struct {
	wg      sync.WaitGroup
	mu      sync.Mutex
	depth   map[peer.ID]int
	parent  map[peer.ID]peer.ID
	queried []peer.ID
	// firstProvider is how long the DHT took to name the first hosting node.
	firstProvider time.Duration
	// providers are the hosting nodes the DHT named.
	providers []peer.ID
}

func newTrace() *lookupTrace {
	return &lookupTrace{depth: map[peer.ID]int{}, parent: map[peer.ID]peer.ID{}}
}

func (t *lookupTrace) add(ev *routing.QueryEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch ev.Type {
	case routing.SendingQuery:
		if t.depth[ev.ID] == 0 {
			t.depth[ev.ID] = 1 // from the asker's own routing table
		}
		t.queried = append(t.queried, ev.ID)
	case routing.PeerResponse:
		d := t.depth[ev.ID]
		for _, ai := range ev.Responses {
			if ai != nil && t.depth[ai.ID] == 0 {
				t.depth[ai.ID] = d + 1
				t.parent[ai.ID] = ev.ID
			}
		}
	}
}

// minDepth is the smallest depth of a queried peer for which holds is
// true, or -1.
func (t *lookupTrace) minDepth(holds func(peer.ID) bool) int {
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	best := -1
	for _, p := range t.queried {
		if d := t.depth[p]; (best < 0 || d < best) && holds(p) {
			best = d
		}
	}
	return best
}

// countedRoundTrips is the link round trips on the fastest path the trace
// shows to a peer for which holds is true: one per request, coldCost
// instead on each connection the asker did not have when the lookup began
// (cold), each weighted by its link's latency over the base latency
// (weight). It is -1 when no queried peer holds. Unlike the measured
// latency, it does not grow when the machine is short of CPU.
func (t *lookupTrace) countedRoundTrips(holds func(peer.ID) bool, cold func(peer.ID) bool, coldCost float64, weight func(peer.ID) float64) float64 {
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	best := -1.0
	for _, p := range t.queried {
		if !holds(p) {
			continue
		}
		rt := 0.0
		for q, hop := p, 0; q != "" && hop < 20; q, hop = t.parent[q], hop+1 {
			c := 1.0
			if cold(q) {
				c = coldCost
			}
			rt += c * weight(q)
		}
		if best < 0 || rt < best {
			best = rt
		}
	}
	return best
}

// wasQueried reports whether the lookup sent p a DHT query.
func (t *lookupTrace) wasQueried(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.depth[p]
	return ok && slices.Contains(t.queried, p)
}
