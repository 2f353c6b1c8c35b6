package flood

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// Query defaults.
const (
	DefaultWant = 10
	// DefaultStepWait is the wait per hop when a neighbour's round-trip
	// time is not known, and the most a measured one gives.
	DefaultStepWait = 150 * time.Millisecond
	// MinStepWait is the least wait per hop: a margin for the work of the
	// nodes on the path, over the measured round trips.
	MinStepWait = 25 * time.Millisecond
	// MaxStepWait bounds the wait per hop learnt from slow hits.
	MaxStepWait = time.Second
	// AnswerMemory is how long a Flooder remembers how long hits from each
	// distance took (see answerTimes).
	AnswerMemory = 10 * time.Minute
)

// deepening is the TTL schedule of dynamic querying, cut at MaxTTL.
var deepening = []int{1, 2, 3, 5, 7}

// QueryOptions tune one Query.
type QueryOptions struct {
	// Want is how many records end the search; zero means DefaultWant.
	// The records delivered by one flood neighbour count for at most
	// ceil(Want/2) of them: every hit is delivered all the same.
	Want int
	// MaxTTL is the TTL of the last (deepest) round; zero or more than
	// MaxTTL means MaxTTL.
	MaxTTL int
	// StepWait is the wait per TTL step: the round with TTL t waits t ×
	// StepWait for hits (hits travel t hops out and t back). Zero means
	// measured: four times the slowest neighbour's round-trip time (as
	// the DHT measured it) plus MinStepWait, at most DefaultStepWait, which
	// is also the wait when a neighbour's round-trip time is unknown.
	// Either way the wait grows with the hits: a hit from h hops that took
	// e to arrive shows hops of e/h, and every later wait (the running
	// round's included) allows 2 × e/h per hop, up to MaxStepWait, so
	// hits from farther, slower hops are still waited for. The last round
	// also waits for the slowest hit the Flooder remembers from at most
	// its TTL hops (answerTimes), so a match that only a far, slow node
	// holds is found once that node has answered before, even late.
	StepWait time.Duration
	// FullFlood sends one round at MaxTTL instead of deepening.
	FullFlood bool
	// Also are further readings of the query, carried in the same
	// messages (at most MaxAlso).
	Also []ident.ID
}

func (o QueryOptions) withDefaults() QueryOptions {
	if o.Want <= 0 {
		o.Want = DefaultWant
	}
	if o.MaxTTL <= 0 || o.MaxTTL > MaxTTL {
		o.MaxTTL = MaxTTL
	}
	return o
}

// schedule returns the TTLs of the rounds.
func (o QueryOptions) schedule() []int {
	if o.FullFlood {
		return []int{o.MaxTTL}
	}
	var ttls []int
	for _, t := range deepening {
		if t >= o.MaxTTL {
			break
		}
		ttls = append(ttls, t)
	}
	return append(ttls, o.MaxTTL)
}

// Hit is one hit message that reached one of our queries.
type Hit struct {
	// From is the neighbour that delivered the hit (the stream's
	// authenticated peer): the answering node itself when Hops is 1,
	// otherwise the last node of the reverse path.
	From peer.ID
	// Origin is the node that answered, as the hit claims. Every record's
	// signed body names it as the hosting node (Decode checks the names;
	// the resolver must verify the signatures).
	Origin peer.ID
	// Hops is Origin's distance in overlay hops, as Origin claims.
	Hops int
	// TTL is the TTL of the round whose query found the records.
	TTL int
	// Records are the matching terminals' records, unverified.
	Records []*record.Record

	elapsed time.Duration // since the round was sent
}

// learnStep returns the wait per hop that hit h shows is needed, or step
// if that is more.
func learnStep(step time.Duration, h Hit) time.Duration {
	if h.Hops <= 0 || h.elapsed <= 0 {
		return step
	}
	return max(step, min(MaxStepWait, h.elapsed*2/time.Duration(h.Hops)))
}

// answerTimes remembers, for each distance in hops, the slowest time
// from sending a round to a hit from that distance, for AnswerMemory. Hits
// that came after their query ended count too: they show what the next
// query must wait for. It is not safe for concurrent use.
type answerTimes [MaxTTL + 1]struct {
	took time.Duration
	at   time.Time // when took was last confirmed
}

// note records a hit from hops away that took took to arrive, at now. An
// answer at least half as slow as the remembered one confirms it; a
// slower one replaces it, as does any once the memory is stale. One slower
// than any round may wait (MaxTTL × MaxStepWait: a node that was frozen,
// a machine back from sleep) is not remembered: no query could wait for
// it, and it would hold every query's last round at its longest for
// AnswerMemory.
func (a *answerTimes) note(hops int, took time.Duration, now time.Time) {
	if hops < 1 || hops > MaxTTL || took <= 0 || took > MaxTTL*MaxStepWait {
		return
	}
	s := &a[hops]
	switch {
	case took >= s.took || now.Sub(s.at) > AnswerMemory:
		s.took, s.at = took, now
	case took*2 >= s.took:
		s.at = now
	}
}

// wait is how long a round with TTL ttl, sent at now, waits for the
// slowest answer remembered from at most ttl hops: half as long again,
// plus MinStepWait, and at most ttl × MaxStepWait. Zero when none is
// remembered.
func (a *answerTimes) wait(ttl int, now time.Time) time.Duration {
	var w time.Duration
	for h := 1; h <= min(ttl, MaxTTL); h++ {
		if s := a[h]; s.took > 0 && now.Sub(s.at) <= AnswerMemory {
			w = max(w, s.took*3/2+MinStepWait)
		}
	}
	return min(w, time.Duration(ttl)*MaxStepWait)
}

// tally counts records toward a query's Want, at most perPeer from each
// neighbour that delivered them (Hit.From, the stream's authenticated
// peer; a hit's origin and hops are claims a rogue makes up at will), so
// that one rogue neighbour answering every query at once cannot end it
// before deeper nodes are asked.
type tally struct {
	perPeer int
	by      map[peer.ID]int
	n       int
}

// newTally counts toward want: each neighbour counts at most ceil(want/2),
// so for a want of 2 or more an early end needs two neighbours' hits.
func newTally(want int) *tally {
	return &tally{perPeer: (want + 1) / 2, by: make(map[peer.ID]int)}
}

func (t *tally) add(h Hit) {
	if c := min(len(h.Records), t.perPeer-t.by[h.From]); c > 0 {
		t.by[h.From] += c
		t.n += c
	}
}

// pendingQuery is one round of one of our own queries, by GUID.
type pendingQuery struct {
	in   chan<- Hit
	done <-chan struct{}
	ttl  int
	sent time.Time
	// asked are the neighbours the round went to, with the hits each has
	// sent for it: hits come back along the reverse path, so only from
	// them.
	asked map[peer.ID]int
}

// stepWait is the measured wait per hop for a round sent to nbs.
func (f *Flooder) stepWait(nbs []peer.ID) time.Duration {
	var worst time.Duration
	for _, p := range nbs {
		rtt := f.host.Peerstore().LatencyEWMA(p)
		if rtt <= 0 {
			return DefaultStepWait
		}
		worst = max(worst, rtt)
	}
	return min(DefaultStepWait, 4*worst+MinStepWait)
}

// Query floods a query for id through the network and streams the hits.
// It does not match the node's own terminals. By default it deepens
// (dynamic querying): rounds with TTL 1, 2, 3, 5, 7 (cut at MaxTTL, each
// with a fresh GUID) go to the flood neighbours, each waiting TTL ×
// StepWait, until Want records have arrived (each neighbour's hits count
// for at most half of Want, rounded up: see the package doc); the last
// round also waits for the slowest answer remembered from its distance
// (see QueryOptions.StepWait). The channel closes once Want
// records have been delivered, after the last round's wait, when ctx ends
// or when the Flooder closes; also at once when id is not a valid query
// or there are no flood neighbours. The reader must drain the channel or
// cancel ctx.
func (f *Flooder) Query(ctx context.Context, id ident.ID, opts QueryOptions) <-chan Hit {
	out := make(chan Hit)
	probe := &Message{Type: TypeQuery, TTL: 1, Kind: id.Kind, Value: id.Value, Also: opts.Also}
	if err := probe.Validate(); err != nil {
		f.log.Debug("Invalid query", "id", id, "err", err)
		close(out)
		return out
	}
	if !f.enter() {
		close(out)
		return out
	}
	go func() {
		defer f.wg.Done()
		defer close(out)
		f.runQuery(ctx, id, opts.withDefaults(), out)
	}()
	return out
}

// maxQueuedHits bounds the hits a query holds that its reader has not
// taken: each neighbour asked may send maxHitsPerNeighbour hits a round,
// more than a reader may want to hold for all of them. More are dropped
// and counted (query_full).
const maxQueuedHits = 256

func (f *Flooder) runQuery(ctx context.Context, id ident.ID, opts QueryOptions, out chan<- Hit) {
	in := make(chan Hit, 64)
	done := make(chan struct{})
	var guids []GUID
	unregister := func() {
		f.mu.Lock()
		for _, g := range guids {
			delete(f.pending, g)
		}
		f.mu.Unlock()
		guids = nil
	}
	defer close(done)
	defer unregister()

	var queue []Hit
	got := newTally(opts.Want)
	learnt := time.Duration(0) // wait per hop shown by the hits so far
	schedule := opts.schedule()
rounds:
	for i, ttl := range schedule {
		nbs := f.neighbours("")
		if len(nbs) == 0 {
			break
		}
		g := NewGUID()
		now := time.Now()
		asked := make(map[peer.ID]int, len(nbs))
		for _, p := range nbs {
			asked[p] = 0
		}
		f.mu.Lock()
		f.pending[g] = &pendingQuery{in: in, done: done, ttl: ttl, sent: now, asked: asked}
		// Our own query coming back is a duplicate; a hit after the
		// query ended still shows how long its hops took.
		f.seen.add(g, route{sent: now, asked: asked}, now)
		var far time.Duration // the wait for remembered slow answers
		if i == len(schedule)-1 {
			far = f.answers.wait(ttl, now)
		}
		f.mu.Unlock()
		guids = append(guids, g)
		data, err := (&Message{Type: TypeQuery, GUID: g, TTL: ttl, Kind: id.Kind, Value: id.Value, Also: opts.Also}).Marshal()
		if err != nil { // Query validated id
			f.log.Warn("Cannot send query", "err", err)
			return
		}
		for _, p := range nbs {
			f.goSend(p, TypeQuery, data)
		}
		step := opts.StepWait
		if step <= 0 {
			step = f.stepWait(nbs)
		}
		step = max(step, learnt)
		sent := time.Now()
		roundWait := func() time.Duration { return max(time.Duration(ttl)*step, far) }
		timer := time.NewTimer(roundWait())
		for got.n < opts.Want {
			var send chan<- Hit
			var next Hit
			if len(queue) > 0 {
				send, next = out, queue[0]
			}
			select {
			case h := <-in:
				if len(queue) >= maxQueuedHits {
					f.countDrop(DropQueryFull)
					continue
				}
				queue = append(queue, h)
				got.add(h)
				if learnt = learnStep(learnt, h); learnt > step {
					// Slower hops than measured: give this round their time.
					step = learnt
					timer.Reset(time.Until(sent.Add(roundWait())))
				}
			case send <- next:
				queue = queue[1:]
			case <-timer.C:
				continue rounds
			case <-ctx.Done():
				timer.Stop()
				return
			case <-f.done:
				timer.Stop()
				return
			}
		}
		timer.Stop()
		break
	}
	unregister()
drain: // hits that arrived with the last timer tick
	for got.n < opts.Want {
		select {
		case h := <-in:
			if len(queue) >= maxQueuedHits {
				f.countDrop(DropQueryFull)
				continue
			}
			queue = append(queue, h)
			got.add(h)
		default:
			break drain
		}
	}
	for _, h := range queue {
		select {
		case out <- h:
		case <-ctx.Done():
			return
		case <-f.done:
			return
		}
	}
}
