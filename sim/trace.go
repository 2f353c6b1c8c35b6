package sim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/irmv/irmv/internal/dhtprovide"
	"github.com/irmv/irmv/internal/p2pstream"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
)

// tracingRouter is the search.Router of a simulated node: the node's DHT,
// publishing as a node does (internal/dhtprovide), timing Provide and
// counting its outcomes, and recording the query events of lookups whose
// context carries a *lookupTrace.
type tracingRouter struct {
	d *dht.IpfsDHT
	// kad publishes with kad-dht's own Provide instead (Config.KadProvide).
	kad bool

	mu       sync.Mutex
	provides []time.Duration
	outcomes map[string]int // by provideOutcome
}

func (r *tracingRouter) Provide(ctx context.Context, c cid.Cid, announce bool) error {
	start := time.Now()
	var err error
	if r.kad {
		err = r.d.Provide(ctx, c, announce)
	} else {
		// The simulated nodes have one address each, usable by all.
		_, err = dhtprovide.Provide(ctx, r.d, c, announce, dhtprovide.Addrs{})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outcomes == nil {
		r.outcomes = map[string]int{}
	}
	r.outcomes[provideOutcome(err)]++
	if err == nil {
		r.provides = append(r.provides, time.Since(start))
	}
	return err
}

// Outcomes of a Provide (Result.ProvideOutcomes).
const (
	provideOK         = "ok"
	provideTimedOut   = "timed out"
	provideNotStored  = "no peer took the record"
	provideNoPeers    = "no peer in the routing table"
	provideOtherError = "failed: "
)

func provideOutcome(err error) string {
	switch {
	case err == nil:
		return provideOK
	case errors.Is(err, context.DeadlineExceeded):
		return provideTimedOut
	case errors.Is(err, dhtprovide.ErrNotProvided):
		return provideNotStored
	case errors.Is(err, kb.ErrLookupFailure):
		return provideNoPeers
	}
	return provideOtherError + err.Error()
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
	// dhtErrs are the DHT requests of the lookup that failed, by peer.
	dhtErrs map[peer.ID]error
}

func (t *lookupTrace) dhtFailed(p peer.ID, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dhtErrs == nil {
		t.dhtErrs = map[peer.ID]error{}
	}
	t.dhtErrs[p] = err
}

// holderFailures tells, for a lookup whose DHT query named no provider,
// whether it asked a live node storing the record, and how the request
// failed if it did.
func (t *lookupTrace) holderFailures(holds func(peer.ID) bool) string {
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	asked, failed := 0, map[string]int{}
	for _, p := range slices.Compact(slices.Sorted(slices.Values(t.queried))) {
		if !holds(p) {
			continue
		}
		asked++
		if err := t.dhtErrs[p]; err != nil {
			failed[strings.TrimPrefix(askReason(err), "ask failed: ")]++
		}
	}
	if asked == 0 {
		return ", no node storing the record was asked"
	}
	if len(failed) == 0 {
		return ", nodes storing the record answered without it"
	}
	return ", a request to a node storing the record failed: " + strings.Join(slices.Sorted(maps.Keys(failed)), ", ")
}

// tracingSender is p2pstream's DHT message sender, recording the failed
// requests of traced lookups.
type tracingSender struct {
	pb.MessageSenderWithDisconnect
}

func newTracingSender(h host.Host, protos []protocol.ID) pb.MessageSenderWithDisconnect {
	return tracingSender{p2pstream.NewDHTSender(h, protos)}
}

func (s tracingSender) SendRequest(ctx context.Context, p peer.ID, m *pb.Message) (*pb.Message, error) {
	resp, err := s.MessageSenderWithDisconnect.SendRequest(ctx, p, m)
	if tr, _ := ctx.Value(traceKey{}).(*lookupTrace); tr != nil && err != nil {
		tr.dhtFailed(p, err)
	}
	return resp, err
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

// asked describes, for a missed lookup, the peers its DHT query asked, as
// rank:step, closest first: rank among the live nodes in distance to the
// key (1: closest; "x" a dead node), step of the query ("r" from the
// asker's routing table, "2" named in a first answer, ...), "!" for a
// failed request; then the ranks of the live nodes storing the record.
func (t *lookupTrace) asked(rank func(peer.ID) int, dead func(peer.ID) bool, holderRanks []string) string {
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	type ask struct {
		rank int
		s    string
	}
	var as []ask
	ndead := 0
	for _, p := range slices.Compact(slices.Sorted(slices.Values(t.queried))) {
		step := "r"
		if d := t.depth[p]; d > 1 {
			step = strconv.Itoa(d)
		}
		r := rank(p)
		s := strconv.Itoa(r) + ":" + step
		switch {
		case dead(p):
			s, ndead = "x:"+step, ndead+1
		case t.dhtErrs[p] != nil:
			s += "!"
		}
		as = append(as, ask{r, s})
	}
	slices.SortFunc(as, func(a, b ask) int { return a.rank - b.rank })
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.s
	}
	return fmt.Sprintf("asked %d (%d dead): %s; record on live ranks %s",
		len(as), ndead, strings.Join(out, " "), strings.Join(holderRanks, " "))
}
