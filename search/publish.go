package search

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/irmv/irmv/ident"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
)

// Router is the part of the Kademlia DHT that search uses.
type Router interface {
	Provide(ctx context.Context, c cid.Cid, announce bool) error
	FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo
}

// Publisher announces the identifiers of hosted terminals into the DHT as
// provider records ("this node hosts a terminal with it"), announces them
// again every interval so they outlive the records' validity on other
// nodes, and retries announcements that failed (an empty routing table).
// Unpublish stops announcing; the records then lapse on their own.
type Publisher struct {
	r        Router
	interval time.Duration
	log      *slog.Logger
	provides *prometheus.CounterVec

	mu      sync.Mutex
	ready   func() bool
	timeout time.Duration
	ids     map[string]ident.ID // by Key
	pending map[string]ident.ID
	wake    chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// DefaultRepublishInterval is the interval NewPublisher uses for a
// non-positive one.
const DefaultRepublishInterval = 10 * time.Minute

// NewPublisher starts a publisher that announces again every interval
// (non-positive: DefaultRepublishInterval); reg (may be nil) receives its
// metrics. Close stops it.
func NewPublisher(r Router, interval time.Duration, reg prometheus.Registerer, log *slog.Logger) *Publisher {
	if interval <= 0 {
		interval = DefaultRepublishInterval // time.NewTicker panics on it
	}
	if log == nil {
		log = slog.Default()
	}
	provides := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "irmv_dht_provides_total", Help: "DHT provider announcements by outcome.",
	}, []string{"outcome"})
	if reg != nil {
		reg.MustRegister(provides)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		r: r, interval: interval, log: log, provides: provides,
		ids: map[string]ident.ID{}, pending: map[string]ident.ID{},
		wake: make(chan struct{}, 1), cancel: cancel, timeout: DefaultProvideTimeout,
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.loop(ctx)
	}()
	return p
}

// SetReady makes the publisher hold announcements while ready reports
// false (an empty routing table: a Provide would only fail, at a cost).
func (p *Publisher) SetReady(ready func() bool) {
	p.mu.Lock()
	p.ready = ready
	p.mu.Unlock()
}

// DefaultProvideTimeout bounds one announcement (Router.Provide).
const DefaultProvideTimeout = 30 * time.Second

// SetProvideTimeout bounds each later announcement by d (positive; the
// simulator starves announcements with it).
func (p *Publisher) SetProvideTimeout(d time.Duration) {
	if d <= 0 {
		return
	}
	p.mu.Lock()
	p.timeout = d
	p.mu.Unlock()
}

// Publish starts announcing ids.
func (p *Publisher) Publish(ids []ident.ID) {
	p.mu.Lock()
	for _, id := range ids {
		k := id.Key()
		if _, ok := p.ids[k]; !ok {
			p.ids[k] = id
			p.pending[k] = id
		}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Republish announces every identifier again now, e.g. after the node's
// addresses changed or it rejoined the network.
func (p *Publisher) Republish() {
	p.mu.Lock()
	for k, id := range p.ids {
		p.pending[k] = id
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Unpublish stops announcing ids.
func (p *Publisher) Unpublish(ids []ident.ID) {
	p.mu.Lock()
	for _, id := range ids {
		delete(p.ids, id.Key())
		delete(p.pending, id.Key())
	}
	p.mu.Unlock()
}

// Published is the number of identifiers being announced.
func (p *Publisher) Published() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ids)
}

// Pending is the number of identifiers not yet announced successfully.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pending)
}

// Close stops the publisher and waits for it. Only the first call acts.
func (p *Publisher) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.wg.Wait()
	})
	return nil
}

func (p *Publisher) loop(ctx context.Context) {
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	backoff := 250 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-retry.C:
		case <-tick.C:
			p.mu.Lock()
			for k, id := range p.ids {
				p.pending[k] = id
			}
			p.mu.Unlock()
		}
		switch failed, held := p.providePending(ctx); {
		case held:
			// Not ready: checking is cheap, and the first peer should
			// see our identifiers soon after it arrives.
			retry.Reset(250 * time.Millisecond)
		case failed > 0:
			retry.Reset(backoff)
			backoff = min(backoff*2, 30*time.Second)
		default:
			backoff = 250 * time.Millisecond
		}
	}
}

// providePending announces every pending identifier, a few at a time, and
// returns how many failed, or held when it is not ready to announce.
func (p *Publisher) providePending(ctx context.Context) (failed int, held bool) {
	p.mu.Lock()
	if p.ready != nil && !p.ready() {
		n := len(p.pending)
		p.mu.Unlock()
		return 0, n > 0
	}
	timeout := p.timeout
	batch := make([]ident.ID, 0, len(p.pending))
	for _, id := range p.pending {
		batch = append(batch, id)
	}
	p.mu.Unlock()
	var (
		wg  sync.WaitGroup
		sem = make(chan struct{}, 8)
		mu  sync.Mutex
	)
	for _, id := range batch {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			err := p.r.Provide(cctx, id.CID(), true)
			cancel()
			if err != nil {
				p.provides.WithLabelValues("error").Inc()
				p.log.Debug("DHT announce failed", "id", id, "err", err)
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			p.provides.WithLabelValues("ok").Inc()
			p.mu.Lock()
			if cur, ok := p.pending[id.Key()]; ok && cur == id {
				delete(p.pending, id.Key())
			}
			p.mu.Unlock()
		}()
	}
	wg.Wait()
	return failed, false
}
