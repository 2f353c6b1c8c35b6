package flood

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/peerrate"
	"github.com/irmv/irmv/record"
)

// ProtocolID is the libp2p protocol of query flooding.
const ProtocolID protocol.ID = "/irmv/flood/1.0.0"

// ServiceName is the resource-manager service of flood streams.
const ServiceName = "irmv.flood"

const (
	// readTimeout bounds reading one inbound message.
	readTimeout = 10 * time.Second
	// sendTimeout bounds opening a stream and writing one message.
	sendTimeout = 5 * time.Second
	// maxConcurrentSends bounds outbound streams in flight; a handler that
	// would exceed it waits (backpressure on the inbound side).
	maxConcurrentSends = 256
	// maxRoutedHits bounds the hit messages routed back per query GUID, so
	// a node cannot use the reverse path to flood the originator.
	maxRoutedHits = 64
	// maxHitsPerNeighbour bounds the hit messages one neighbour may send
	// for one round of our own queries: an honest one sends its own
	// matches (at most MaxHitRecords, so at most as many hits) and routes
	// at most maxRoutedHits from behind it.
	maxHitsPerNeighbour = maxRoutedHits + MaxHitRecords
)

// Defaults for zero Options fields.
const (
	DefaultMaxNeighbours            = 8
	DefaultPerPeerRate   rate.Limit = 50
	DefaultPerPeerBurst             = 100
	DefaultDedupSize                = 10000
	DefaultDedupTTL                 = 2 * time.Minute
)

// Matcher finds the node's own hosted terminals that match an identifier.
type Matcher interface {
	// Match returns at most limit records of hosted terminals matching id
	// (for names: every query token is a prefix of a token of the
	// terminal's folded name). Each record must name this node as its
	// hosting node. It must be safe for concurrent use and fast: it runs
	// on the stream handler.
	Match(id ident.ID, limit int) []*record.Record
}

// Options configure a Flooder.
type Options struct {
	// Host is the libp2p host; required.
	Host host.Host
	// Matcher answers queries from the node's hosted terminals; required.
	Matcher Matcher
	// MaxNeighbours is how many flood-capable connected peers a query is
	// sent to; zero means DefaultMaxNeighbours.
	MaxNeighbours int
	// PerPeerRate and PerPeerBurst limit the queries accepted from one
	// peer (token bucket); zero means DefaultPerPeerRate and
	// DefaultPerPeerBurst. rate.Inf disables the limit.
	PerPeerRate  rate.Limit
	PerPeerBurst int
	// DedupSize and DedupTTL bound the cache of seen GUIDs and their
	// reverse paths; zero means DefaultDedupSize and DefaultDedupTTL.
	DedupSize int
	DedupTTL  time.Duration
	// Registerer receives the prometheus metrics; nil means no metrics.
	// Close unregisters them.
	Registerer prometheus.Registerer
	// Logger receives debug logs of drops and send failures; nil discards.
	Logger *slog.Logger
}

// Flooder speaks the flood protocol on a host: it answers and forwards
// other nodes' queries, routes hits back, and originates queries.
type Flooder struct {
	host    host.Host
	matcher Matcher
	log     *slog.Logger
	opts    Options
	metrics *metrics
	stats   counters

	done    chan struct{} // closed by Close
	sendSem chan struct{}
	wg      sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	seen     *guidCache
	pending  map[GUID]*pendingQuery
	answers  answerTimes        // how long hits took, by distance
	limiters *peerrate.Limiters // query rate per sending peer
}

// New starts a Flooder on opts.Host: it registers the ProtocolID stream
// handler. It fails with ErrNoHost or ErrNoMatcher when those are missing,
// or with the Registerer's error.
func New(opts Options) (*Flooder, error) {
	if opts.Host == nil {
		return nil, ErrNoHost
	}
	if opts.Matcher == nil {
		return nil, ErrNoMatcher
	}
	if opts.MaxNeighbours <= 0 {
		opts.MaxNeighbours = DefaultMaxNeighbours
	}
	if opts.PerPeerRate <= 0 {
		opts.PerPeerRate = DefaultPerPeerRate
	}
	if opts.PerPeerBurst <= 0 {
		opts.PerPeerBurst = DefaultPerPeerBurst
	}
	if opts.DedupSize <= 0 {
		opts.DedupSize = DefaultDedupSize
	}
	if opts.DedupTTL <= 0 {
		opts.DedupTTL = DefaultDedupTTL
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	f := &Flooder{
		host:     opts.Host,
		matcher:  opts.Matcher,
		log:      log.With("component", "flood"),
		opts:     opts,
		metrics:  m,
		done:     make(chan struct{}),
		sendSem:  make(chan struct{}, maxConcurrentSends),
		seen:     newGUIDCache(opts.DedupSize, opts.DedupTTL),
		pending:  make(map[GUID]*pendingQuery),
		limiters: peerrate.New(opts.PerPeerRate, opts.PerPeerBurst),
	}
	f.host.SetStreamHandler(ProtocolID, f.handleStream)
	return f, nil
}

// Close removes the stream handler, ends running queries and waits for
// every goroutine the Flooder started. Only the first call does anything.
func (f *Flooder) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.done)
	f.mu.Unlock()
	f.host.RemoveStreamHandler(ProtocolID)
	f.wg.Wait()
	f.metrics.unregister()
	return nil
}

// enter registers a goroutine with f.wg unless f is closed.
func (f *Flooder) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	return true
}

// opContext returns a context with timeout d that Close also cancels.
func (f *Flooder) opContext(d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		select {
		case <-f.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (f *Flooder) handleStream(s network.Stream) {
	if !f.enter() {
		_ = s.Reset()
		return
	}
	defer f.wg.Done()
	from := s.Conn().RemotePeer()
	_ = s.Scope().SetService(ServiceName)
	_ = s.SetReadDeadline(time.Now().Add(readTimeout))
	m, err := Decode(s, MaxMessageSize)
	if err != nil {
		_ = s.Reset()
		r := dropReasonOf(err)
		f.countDrop(r)
		f.log.Debug("Dropped message", "peer", from, "reason", r, "err", err)
		return
	}
	_ = s.Close()
	f.countIn(m.Type)
	switch m.Type {
	case TypeQuery:
		f.handleQuery(from, m)
	case TypeHit:
		f.handleHit(from, m)
	}
}

// SetPerPeerRate sets the queries each peer may send a second, burst at
// once, starting every peer's bucket afresh; r 0 lets burst through and
// no more (a test's exact limit), rate.Inf lifts the limit.
func (f *Flooder) SetPerPeerRate(r rate.Limit, burst int) {
	f.limiters.Set(r, burst)
}

func (f *Flooder) handleQuery(from peer.ID, m *Message) {
	now := time.Now()
	if !f.limiters.Allow(from) {
		f.countDrop(DropRate)
		return
	}
	f.mu.Lock()
	isNew := f.seen.add(m.GUID, route{upstream: from, hitsLeft: maxRoutedHits}, now)
	f.mu.Unlock()
	if !isNew {
		f.countDrop(DropDuplicate)
		return
	}
	f.stats.queriesHandled.Add(1)

	if recs := MatchAll(f.matcher, m.readings(), MaxHitRecords); len(recs) > 0 {
		for _, data := range f.packHits(m.GUID, m.Hops+1, recs) {
			f.goSend(from, TypeHit, data)
		}
	}
	if m.TTL <= 1 {
		return
	}
	fwd := &Message{Type: TypeQuery, GUID: m.GUID, TTL: m.TTL - 1, Hops: m.Hops + 1, Kind: m.Kind, Value: m.Value, Also: m.Also}
	data, err := fwd.Marshal()
	if err != nil { // cannot happen for a message that decoded
		f.log.Warn("Cannot forward query", "err", err)
		return
	}
	for _, p := range f.neighbours(from) {
		f.goSend(p, TypeQuery, data)
	}
}

// readings are the identifiers a query asks for.
func (m *Message) readings() []ident.ID {
	return append([]ident.ID{{Kind: m.Kind, Value: m.Value}}, m.Also...)
}

// MatchAll asks m for each of ids and returns the records, each terminal
// once, in the order of ids, at most limit (<= 0: all).
func MatchAll(m Matcher, ids []ident.ID, limit int) []*record.Record {
	if len(ids) == 1 {
		return m.Match(ids[0], limit)
	}
	var out []*record.Record
	seen := map[string]bool{}
	for _, id := range ids {
		for _, r := range m.Match(id, limit) {
			if seen[string(r.Body)] {
				continue
			}
			seen[string(r.Body)] = true
			out = append(out, r)
			if limit > 0 && len(out) >= limit {
				return out
			}
		}
	}
	return out
}

func (f *Flooder) handleHit(from peer.ID, m *Message) {
	now := time.Now()
	f.mu.Lock()
	pq := f.pending[m.GUID]
	var upstream peer.ID
	reason := DropUnknownGUID
	if pq != nil {
		if reason = admitHit(pq.asked, from); reason == "" {
			f.answers.note(m.Hops, now.Sub(pq.sent), now)
		} else {
			pq = nil
		}
	} else if e, ok := f.seen.get(m.GUID, now); ok {
		switch {
		case e.route.upstream == "" && !e.route.sent.IsZero():
			if reason = admitHit(e.route.asked, from); reason == "" {
				// Our own query, ended: too late for it, not for the next.
				f.answers.note(m.Hops, now.Sub(e.route.sent), now)
				reason = DropLate
			}
		case e.route.upstream != "" && e.route.upstream != from && e.route.hitsLeft > 0:
			e.route.hitsLeft--
			upstream = e.route.upstream
		case e.route.upstream != "" && e.route.upstream != from:
			reason = DropRate
		}
	}
	f.mu.Unlock()

	switch {
	case pq != nil:
		h := Hit{From: from, Origin: m.Origin, Hops: m.Hops, TTL: pq.ttl, Records: m.Records, elapsed: now.Sub(pq.sent)}
		select {
		case pq.in <- h:
			f.stats.hitsDelivered.Add(1)
		case <-pq.done:
		default:
			f.countDrop(DropQueryFull)
			f.log.Debug("Dropped hit for a slow query", "guid", m.GUID)
		}
	case upstream != "":
		data, err := m.Marshal()
		if err != nil { // cannot happen for a message that decoded
			f.log.Warn("Cannot route hit", "err", err)
			return
		}
		f.goSend(upstream, TypeHit, data)
	default:
		f.countDrop(reason)
		f.log.Debug("Dropped hit", "peer", from, "guid", m.GUID, "reason", reason)
	}
}

// admitHit counts a hit from a peer for one round of our own queries,
// whose neighbours asked are, and returns why it is to be dropped, or ""
// to take it. Hits come back along the reverse path, so only the
// neighbours the round went to send any, each at most
// maxHitsPerNeighbour. The caller holds f.mu.
func admitHit(asked map[peer.ID]int, from peer.ID) DropReason {
	n, ok := asked[from]
	switch {
	case !ok:
		return DropUnasked
	case n >= maxHitsPerNeighbour:
		return DropRate
	}
	asked[from] = n + 1
	return ""
}

// packHits encodes records as few hit messages as the limits allow,
// skipping records that do not name this node.
func (f *Flooder) packHits(g GUID, hops int, recs []*record.Record) [][]byte {
	self := f.host.ID()
	env, err := json.Marshal(&Message{Type: TypeHit, GUID: g, Hops: hops, Origin: self})
	if err != nil {
		return nil
	}
	base := len(env) + len(`,"records":[]`)
	var out [][]byte
	var batch []*record.Record
	size := base
	flush := func() {
		if len(batch) == 0 {
			return
		}
		data, err := (&Message{Type: TypeHit, GUID: g, Hops: hops, Origin: self, Records: batch}).Marshal()
		if err != nil {
			f.log.Warn("Cannot send hit", "guid", g, "err", err)
		} else {
			out = append(out, data)
		}
		batch, size = nil, base
	}
	for _, shared := range recs {
		if shared == nil {
			continue
		}
		// A copy: checking caches the decoded body in the record, and the
		// Matcher's records are shared between concurrent handlers.
		r := new(record.Record)
		*r = *shared
		if err := checkRecord(r, self.String()); err != nil {
			f.log.Warn("Matcher returned a bad record", "err", err)
			continue
		}
		rj, err := json.Marshal(r)
		if err != nil {
			continue
		}
		n := len(rj) + 1
		if len(batch) == MaxHitRecords || size+n > MaxHitSize {
			flush()
		}
		batch = append(batch, r)
		size += n
	}
	flush()
	return out
}

// neighbours returns the flood neighbours except one peer. The neighbours
// are the connected peers that support ProtocolID, ranked by
// SHA-256(own ID || peer ID), the first MaxNeighbours of them.
func (f *Flooder) neighbours(except peer.ID) []peer.ID {
	self := f.host.ID()
	type ranked struct {
		id   peer.ID
		rank [sha256.Size]byte
	}
	var cands []ranked
	for _, p := range f.host.Network().Peers() {
		if p == self {
			continue
		}
		if ps, err := f.host.Peerstore().SupportsProtocols(p, ProtocolID); err != nil || len(ps) == 0 {
			continue
		}
		cands = append(cands, ranked{id: p, rank: sha256.Sum256([]byte(string(self) + string(p)))})
	}
	slices.SortFunc(cands, func(a, b ranked) int { return bytes.Compare(a.rank[:], b.rank[:]) })
	if len(cands) > f.opts.MaxNeighbours {
		cands = cands[:f.opts.MaxNeighbours]
	}
	out := make([]peer.ID, 0, len(cands))
	for _, c := range cands {
		if c.id != except {
			out = append(out, c.id)
		}
	}
	return out
}

// goSend sends data to p in a new goroutine. The caller must itself be
// counted in f.wg.
func (f *Flooder) goSend(p peer.ID, t Type, data []byte) {
	select {
	case f.sendSem <- struct{}{}:
	case <-f.done:
		f.stats.sendErrors.Add(1)
		return
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() { <-f.sendSem }()
		f.send(p, t, data)
	}()
}

// send writes one message on a new stream to p and closes it.
func (f *Flooder) send(p peer.ID, t Type, data []byte) {
	ctx, cancel := f.opContext(sendTimeout)
	defer cancel()
	// Flooding works over relayed connections to nodes behind NATs.
	s, err := f.host.NewStream(network.WithAllowLimitedConn(ctx, string(ProtocolID)), p, ProtocolID)
	if err != nil {
		f.stats.sendErrors.Add(1)
		f.log.Debug("Cannot open stream", "peer", p, "err", err)
		return
	}
	_ = s.Scope().SetService(ServiceName)
	_ = s.SetWriteDeadline(time.Now().Add(sendTimeout))
	if _, err := s.Write(data); err != nil {
		_ = s.Reset()
		f.stats.sendErrors.Add(1)
		f.log.Debug("Cannot send message", "peer", p, "type", t, "err", err)
		return
	}
	if err := s.Close(); err != nil {
		_ = s.Reset()
		f.stats.sendErrors.Add(1)
		f.log.Debug("Cannot close stream", "peer", p, "type", t, "err", err)
		return
	}
	f.countOut(t)
}
