package search

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/peerrate"
	"github.com/irmv/irmv/search/flood"
)

// Search limits and defaults.
const (
	DefaultTimeout        = 5 * time.Second
	MaxTimeout            = 60 * time.Second
	DefaultLimit          = 20
	MaxLimit              = 200
	DefaultFloodHeadStart = 250 * time.Millisecond
	// providersPerKey bounds how many hosting nodes one DHT key yields.
	providersPerKey = 20
)

// Errors of a search. They come back wrapped: test with errors.Is.
var (
	// ErrBadQuery is a query that cannot be searched.
	ErrBadQuery = errors.New("bad query")
	// ErrNotFound: no terminal answers the query.
	ErrNotFound = errors.New("nothing found")
	// ErrAmbiguous: several terminals answer the query equally well.
	ErrAmbiguous = errors.New("ambiguous")
)

// Options configure a Service.
type Options struct {
	Host       host.Host         // required
	Matcher    Matcher           // this node's terminals; required
	Normalizer *ident.Normalizer // required
	// Router is the DHT; nil turns the DHT path off.
	Router Router
	// TableSize reports the DHT routing table's size; nil: unknown (assume
	// non-empty when Router is set).
	TableSize func() int
	// Flooder floods queries; nil turns the flood path off.
	Flooder *flood.Flooder
	// FloodHeadStart is how long an exact lookup waits for the DHT before
	// flooding too; 0: DefaultFloodHeadStart.
	FloodHeadStart time.Duration
	Registerer     prometheus.Registerer // may be nil
	Logger         *slog.Logger          // nil: slog.Default()
}

// Service answers lookup requests from other nodes and runs searches.
type Service struct {
	o   Options
	m   *metrics
	srv *lookupServer
}

// New registers the lookup protocol on the host. Close removes it.
func New(o Options) (*Service, error) {
	if o.Host == nil || o.Matcher == nil || o.Normalizer == nil {
		return nil, errors.New("search.Options: Host, Matcher and Normalizer must be set")
	}
	if o.FloodHeadStart == 0 {
		o.FloodHeadStart = DefaultFloodHeadStart
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Service{o: o, m: newMetrics(o.Registerer)}
	s.srv = &lookupServer{host: o.Host, match: o.Matcher, log: o.Logger, metrics: s.m, limiters: peerrate.New(lookupRate, lookupBurst)}
	o.Host.SetStreamHandler(LookupProtocol, s.srv.handle)
	return s, nil
}

// SetLookupRate sets how many lookup requests each peer may make a second
// (default 100, burst 200); rate.Inf lifts the limit.
func (s *Service) SetLookupRate(r rate.Limit, burst int) {
	s.srv.limiters.Set(r, burst)
}

// Close stops answering lookups.
func (s *Service) Close() error {
	s.o.Host.RemoveStreamHandler(LookupProtocol)
	return nil
}

// Parse checks a query and returns every reading of its text
// (ident.Normalizer.Readings).
func (s *Service) Parse(q *client.Query) ([]ident.ID, error) {
	switch q.Via {
	case "":
		q.Via = client.ViaAuto
	case client.ViaAuto, client.ViaDHT, client.ViaFlood:
	default:
		return nil, fmt.Errorf("%w: via %q (want auto, dht or flood)", ErrBadQuery, q.Via)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 0 || q.Limit > MaxLimit {
		return nil, fmt.Errorf("%w: limit %d out of 1..%d", ErrBadQuery, q.Limit, MaxLimit)
	}
	if q.Timeout == 0 {
		q.Timeout = DefaultTimeout
	}
	if q.Timeout < 0 || q.Timeout > MaxTimeout {
		return nil, fmt.Errorf("%w: timeout %s out of 0..%s", ErrBadQuery, q.Timeout, MaxTimeout)
	}
	ids, err := s.o.Normalizer.Readings(q.Text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	return ids, nil
}

// Search runs a query and streams its results; the channel closes when
// every path is done, the limit is reached, the timeout passes or ctx ends.
func (s *Service) Search(ctx context.Context, q client.Query) (<-chan client.Result, error) {
	ids, err := s.Parse(&q)
	if err != nil {
		return nil, err
	}
	out := make(chan client.Result)
	go s.run(ctx, ids, q, out)
	return out, nil
}

// Resolve runs a query to its end and returns the terminal it means, as
// Best picks it: the single best match, or ErrAmbiguous with the
// terminals that share the best match, or ErrNotFound.
func (s *Service) Resolve(ctx context.Context, q client.Query) (client.Result, []client.Result, error) {
	results, err := s.Search(ctx, q)
	if err != nil {
		return client.Result{}, nil, err
	}
	var all []client.Result
	for r := range results {
		all = append(all, r)
	}
	if err := ctx.Err(); err != nil {
		return client.Result{}, nil, err
	}
	return Best(all)
}

// run is one search's life.
type run struct {
	s      *Service
	ids    []ident.ID // the query's readings
	q      client.Query
	start  time.Time
	out    chan<- client.Result
	cancel context.CancelFunc

	mu    sync.Mutex
	seen  map[string]bool
	seqs  map[string]uint64 // highest seq sent per terminal key
	sent  int
	first map[string]bool // paths that produced a result
	done  bool
	exact bool // an exact match came locally or through the DHT
}

func (s *Service) run(ctx context.Context, ids []ident.ID, q client.Query, out chan<- client.Result) {
	defer close(out)
	ctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	r := &run{s: s, ids: ids, q: q, start: time.Now(), out: out, cancel: cancel, seen: map[string]bool{}, seqs: map[string]uint64{}, first: map[string]bool{}}

	now := time.Now()
	for _, rec := range flood.MatchAll(s.o.Matcher, ids, q.Limit) {
		if b, err := rec.Verify(s.o.Host.ID(), now); err == nil {
			res := resultOf(rec, b, client.ViaLocal)
			res.Match = MatchOf(s.o.Normalizer, b.Identifiers, ids)
			r.emit(ctx, res)
		}
	}

	var wg sync.WaitGroup
	dhtDone := make(chan struct{})
	// The DHT path holds every whole identifier, so once it has answered
	// with an exact match, flooding for prefixes can find nothing better.
	floodCtx, floodCancel := context.WithCancel(ctx)
	defer floodCancel()
	useDHT := s.o.Router != nil && q.Via != client.ViaFlood
	if useDHT {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(dhtDone)
			r.viaDHT(ctx)
			if r.foundExact() {
				floodCancel()
			}
		}()
	} else {
		close(dhtDone)
	}
	if s.o.Flooder != nil && q.Via != client.ViaDHT {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !r.floodNow() {
				t := time.NewTimer(s.o.FloodHeadStart)
				select {
				case <-floodCtx.Done():
					t.Stop()
					return
				case <-dhtDone:
					t.Stop()
				case <-t.C:
				}
				if r.found(client.ViaDHT) || r.isDone() {
					return
				}
			}
			r.viaFlood(floodCtx, ctx, dhtDone)
		}()
	}
	wg.Wait()
	for _, path := range []string{client.ViaLocal, client.ViaDHT, client.ViaFlood} {
		outcome := "not_found"
		if r.found(path) {
			outcome = "found"
		}
		s.m.lookups.WithLabelValues(path, outcome).Inc()
	}
}

// floodNow reports whether flooding should start without waiting for the DHT.
func (r *run) floodNow() bool {
	if r.q.Via == client.ViaFlood || r.s.o.Router == nil {
		return true
	}
	for _, id := range r.ids {
		if id.Kind == ident.KindName {
			return true
		}
	}
	return r.s.o.TableSize != nil && r.s.o.TableSize() == 0
}

func (r *run) found(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first[path]
}

func (r *run) foundExact() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exact
}

func (r *run) isDone() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// emit sends a result unless its terminal was already sent, or a newer
// record of the same terminal key (one that registered at another node
// since) was; it ends the search when the limit is reached.
func (r *run) emit(ctx context.Context, res client.Result) {
	key := res.Node + "/" + res.Terminal
	r.mu.Lock()
	if res.Match == ident.MatchExact && res.Via != client.ViaFlood {
		r.exact = true // even when the flood brought the terminal first
	}
	if r.done || r.seen[key] {
		r.mu.Unlock()
		return
	}
	if len(res.Key) > 0 {
		if seq, ok := r.seqs[string(res.Key)]; ok && seq >= res.Seq {
			r.mu.Unlock()
			return
		}
		r.seqs[string(res.Key)] = res.Seq
	}
	r.seen[key] = true
	if !r.first[res.Via] {
		r.first[res.Via] = true
		r.s.m.latency.WithLabelValues(res.Via).Observe(time.Since(r.start).Seconds())
	}
	r.sent++
	if r.sent >= r.q.Limit {
		r.done = true
	}
	last := r.done
	r.mu.Unlock()
	res.ElapsedMS = float64(time.Since(r.start).Microseconds()) / 1000
	select {
	case r.out <- res:
	case <-ctx.Done():
	}
	if last {
		r.cancel()
	}
}

// maxDHTKeys bounds the DHT lookups of one search: a terminal matching a
// name has every term of the query (the last perhaps as a prefix, which
// the flood finds), so a few terms find what all would, and a name of many
// words does not send a DHT query per word.
const maxDHTKeys = 8

// dhtKeys are the DHT keys a query is looked up under: each reading and,
// for a name, its terms (whole words: prefixes are for the flood), at
// most maxDHTKeys in all.
func (r *run) dhtKeys() []ident.ID {
	keys := append([]ident.ID{}, r.ids...)
	for _, id := range r.ids {
		if id.Kind != ident.KindName {
			continue
		}
		for _, t := range ident.Terms(id.Value) {
			k := ident.ID{Kind: ident.KindName, Value: t}
			if len(keys) >= maxDHTKeys {
				return keys
			}
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

func (r *run) viaDHT(ctx context.Context) {
	h := r.s.o.Host
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		asked = map[peer.ID]bool{h.ID(): true}
	)
	for _, key := range r.dhtKeys() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ai := range r.s.o.Router.FindProvidersAsync(ctx, key.CID(), providersPerKey) {
				mu.Lock()
				dup := asked[ai.ID]
				asked[ai.ID] = true
				mu.Unlock()
				if dup {
					continue
				}
				if len(ai.Addrs) > 0 {
					h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					r.ask(ctx, ai.ID, client.ViaDHT, 0)
				}()
			}
		}()
	}
	wg.Wait()
}

// ask queries a hosting node directly and emits what verifies.
func (r *run) ask(ctx context.Context, p peer.ID, via string, hops int) {
	recs, bad, err := QueryNode(ctx, r.s.o.Host, p, r.ids, min(r.q.Limit, MaxLookupRecords))
	if bad > 0 {
		r.s.m.rejected.WithLabelValues(via).Add(float64(bad))
	}
	if err != nil {
		r.s.o.Logger.Debug("Lookup failed", "peer", p, "err", err)
		return
	}
	now := time.Now()
	for _, rec := range recs {
		b, err := rec.Verify(p, now)
		if err != nil {
			continue
		}
		m := MatchOf(r.s.o.Normalizer, b.Identifiers, r.ids)
		if m == ident.MatchNone {
			r.s.m.rejected.WithLabelValues(via).Inc()
			continue
		}
		res := resultOf(rec, b, via)
		res.Match = m
		res.Hops = hops
		r.emit(ctx, res)
	}
}

// viaFlood floods the query until ctx ends, and delivers what the flood
// brought until the search ends (deliver): a result emit has taken is
// marked sent, so dropping it when the DHT path's exact answer stops the
// flood would lose it for every path (one of two equal terminals would
// then look like the only match).
//
// One rogue flood neighbour can answer every query at once with records
// of made-up terminals on made-up nodes, which verify. So until the flood
// has ended, the records one neighbour delivers fill at most half the
// limit (rounded up), as they count toward the flood's Want; the rest are
// held back. With a limit of 1 the first result is the answer, so none is
// taken from the flood early: the flood wants records from two neighbours
// before it ends early, and what it brought is held until it has ended and
// the DHT path (dhtDone) has too, then delivered best match first. An
// identifier the DHT holds is thus answered from the DHT, whatever flood
// neighbours say.
func (r *run) viaFlood(ctx, deliver context.Context, dhtDone <-chan struct{}) {
	want, share := r.q.Limit, (r.q.Limit+1)/2
	if r.q.Limit == 1 {
		want, share = 2, 0
	}
	// Stop flooding a little before the search's deadline, so that what
	// was held back is still delivered.
	if d, ok := deliver.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-min(floodMargin, time.Until(d)/10)))
		defer cancel()
	}
	hits := r.s.o.Flooder.Query(ctx, r.ids[0], flood.QueryOptions{Want: want, Also: r.ids[1:]})
	taken := make(map[peer.ID]int)
	var held []client.Result
	// At most 4 × the limit held, half of it from one neighbour, so that
	// one cannot crowd out the others.
	heldBy := make(map[peer.ID]int)
	heldKeys := make(map[string]bool)
	maxHeld := 4 * r.q.Limit
	defer func() {
		select {
		case <-dhtDone:
		case <-ctx.Done(): // a little before the deadline: no time to wait
		}
		Rank(held)
		for _, res := range held {
			r.emit(deliver, res)
		}
	}()
	for hit := range hits {
		now := time.Now()
		for _, rec := range hit.Records {
			// A hit is made by the hosting node at query time, so its
			// status is fresh; its records must name that node.
			b, err := rec.Verify(hit.Origin, now)
			var m ident.Match
			if err == nil {
				m = MatchOf(r.s.o.Normalizer, b.Identifiers, r.ids)
			}
			if m == ident.MatchNone {
				r.s.m.rejected.WithLabelValues(client.ViaFlood).Inc()
				continue
			}
			res := resultOf(rec, b, client.ViaFlood)
			res.Match = m
			res.Hops = hit.Hops
			if taken[hit.From] >= share {
				// Later rounds find the same terminals again.
				if k := res.Node + "/" + res.Terminal; !heldKeys[k] && len(held) < maxHeld && heldBy[hit.From] < maxHeld/2 {
					heldKeys[k] = true
					heldBy[hit.From]++
					held = append(held, res)
				}
				continue
			}
			taken[hit.From]++
			r.emit(deliver, res)
		}
	}
}

// floodMargin is the most time before a search's deadline that its flood
// stops, and stops waiting for the DHT path, to deliver what it held back.
const floodMargin = 250 * time.Millisecond
