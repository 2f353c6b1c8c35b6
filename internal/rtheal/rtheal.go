// Package rtheal drops dead peers from a node's kad-dht routing table soon
// after their connection ends, and refreshes the table when many went.
//
// kad-dht drops a routing-table peer only when a query's dial to it fails,
// or when its refresh (every 10 min) pings the peers it has not queried
// successfully for ~43 min. After a share of the network left at once,
// lookups therefore ask dead peers first for most of an hour, and the
// first DHT step reaches a node storing the record less often. A Healer
// dials a routing-table peer whose last connection ended, drops it when
// the dial fails, and once a share of the table was dropped runs kad-dht's
// refresh, which fills the buckets with live peers again.
package rtheal

import (
	"context"
	"log/slog"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Defaults of Options.
const (
	DefaultDelay              = 2 * time.Second
	DefaultDialTimeout        = 10 * time.Second
	DefaultRecheckAfter       = 10 * time.Minute
	DefaultRefreshShare       = 0.1
	DefaultMinRefreshInterval = time.Minute
	maxDials                  = 16
)

// Options tune a Healer; zero fields take the defaults above.
type Options struct {
	// Delay is the wait after a peer's last connection ended before it is
	// dialled (a peer that reconnects by itself is not).
	Delay time.Duration
	// DialTimeout bounds the dial that decides whether a peer is dead.
	DialTimeout time.Duration
	// RecheckAfter: a peer found alive is not dialled again on a
	// disconnect for this long (a connection manager trims connections to
	// live routing-table peers too).
	RecheckAfter time.Duration
	// RefreshShare is the share of the routing table dropped since the
	// last refresh that starts one.
	RefreshShare float64
	// MinRefreshInterval is the least time between two refreshes.
	MinRefreshInterval time.Duration
	Logger             *slog.Logger
}

// Healer watches one node's connections; see the package doc.
type Healer struct {
	h    host.Host
	d    *dht.IpfsDHT
	o    Options
	sub  event.Subscription
	stop context.CancelFunc
	ctx  context.Context
	wg   sync.WaitGroup
	sem  chan struct{}

	mu          sync.Mutex
	pending     map[peer.ID]bool
	alive       map[peer.ID]time.Time // found alive at
	dropped     int                   // since the last refresh
	refreshing  bool
	lastRefresh time.Time
	lastEvent   time.Time // a routing-table peer's last disconnect
	timer       *time.Timer
	stats       Stats
	idle        *sync.Cond
}

// Stats counts what a Healer did.
type Stats struct {
	Checked   int // dials to peers whose connection ended
	Dropped   int // peers dropped from the routing table
	Refreshes int // refreshes started
}

// New starts a Healer for d, the DHT of h.
func New(h host.Host, d *dht.IpfsDHT, o Options) (*Healer, error) {
	def := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&o.Delay, DefaultDelay)
	def(&o.DialTimeout, DefaultDialTimeout)
	def(&o.RecheckAfter, DefaultRecheckAfter)
	def(&o.MinRefreshInterval, DefaultMinRefreshInterval)
	if o.RefreshShare <= 0 {
		o.RefreshShare = DefaultRefreshShare
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Healer{h: h, d: d, o: o, sub: sub, ctx: ctx, stop: stop, sem: make(chan struct{}, maxDials),
		pending: map[peer.ID]bool{}, alive: map[peer.ID]time.Time{}}
	r.idle = sync.NewCond(&r.mu)
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

func (r *Healer) loop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case e, ok := <-r.sub.Out():
			if !ok {
				return
			}
			ev := e.(event.EvtPeerConnectednessChanged)
			if ev.Connectedness != network.NotConnected || r.d.RoutingTable().Find(ev.Peer) == "" {
				continue
			}
			r.mu.Lock()
			r.lastEvent = time.Now()
			if r.pending[ev.Peer] || time.Since(r.alive[ev.Peer]) < r.o.RecheckAfter {
				r.mu.Unlock()
				continue
			}
			r.pending[ev.Peer] = true
			r.mu.Unlock()
			r.wg.Add(1)
			go r.check(ev.Peer)
		}
	}
}

// check dials p after the delay unless it reconnected, and drops it from
// the routing table if the dial fails while the node still has other
// connections (with none, its own network is the likelier fault).
func (r *Healer) check(p peer.ID) {
	defer r.wg.Done()
	drop := false
	defer func() {
		r.mu.Lock()
		delete(r.pending, p)
		if drop {
			r.dropped++
			r.stats.Dropped++
		}
		r.mu.Unlock()
		r.maybeRefresh()
	}()
	t := time.NewTimer(r.o.Delay)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return
	case <-t.C:
	}
	if r.h.Network().Connectedness(p) == network.Connected {
		return
	}
	select {
	case r.sem <- struct{}{}:
	case <-r.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.DialTimeout)
	err := r.h.Connect(ctx, peer.AddrInfo{ID: p})
	cancel()
	<-r.sem
	r.mu.Lock()
	r.stats.Checked++
	r.mu.Unlock()
	if err == nil {
		r.mu.Lock()
		now := time.Now()
		// Only those found within RecheckAfter matter: else the map
		// kept every peer that ever answered, for the node's life.
		for q, at := range r.alive {
			if now.Sub(at) >= r.o.RecheckAfter {
				delete(r.alive, q)
			}
		}
		r.alive[p] = now
		r.mu.Unlock()
		return
	}
	if r.ctx.Err() != nil || len(r.h.Network().Peers()) == 0 {
		return
	}
	drop = true
	r.d.RoutingTable().RemovePeer(p)
	r.o.Logger.Debug("Dead routing-table peer dropped", "peer", p, "err", err)
}

// maybeRefresh starts a refresh once the checks are done, if enough of the
// table was dropped, and not sooner than MinRefreshInterval after the
// last; otherwise it wakes those waiting in Idle.
func (r *Healer) maybeRefresh() {
	r.mu.Lock()
	defer r.mu.Unlock()
	size := r.d.RoutingTable().Size()
	// Closed (a timer may call this late): no goroutine may start once
	// Close waits for them.
	if r.ctx.Err() != nil {
		r.idle.Broadcast()
		return
	}
	if r.refreshing || len(r.pending) > 0 || r.dropped == 0 ||
		float64(r.dropped) < r.o.RefreshShare*float64(size+r.dropped) {
		r.idle.Broadcast()
		return
	}
	if wait := r.o.MinRefreshInterval - time.Since(r.lastRefresh); wait > 0 {
		if r.timer == nil {
			r.timer = time.AfterFunc(wait, func() {
				r.mu.Lock()
				r.timer = nil
				r.mu.Unlock()
				r.maybeRefresh()
			})
		}
		r.idle.Broadcast()
		return
	}
	r.refreshing, r.dropped, r.lastRefresh = true, 0, time.Now()
	r.stats.Refreshes++
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.o.Logger.Info("Routing table refresh after dead peers were dropped", "size", size)
		select {
		case <-r.d.ForceRefresh():
		case <-r.ctx.Done():
		}
		r.mu.Lock()
		r.refreshing = false
		r.mu.Unlock()
		r.maybeRefresh()
	}()
}

// Stats returns what the Healer did so far.
func (r *Healer) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Idle waits until no check and no refresh is under way or due, and no
// routing-table peer disconnected within the last Delay, or ctx ends.
func (r *Healer) Idle(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.idle.Broadcast()
		r.mu.Unlock()
	})
	defer stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ctx.Err() == nil {
		quiet := r.o.Delay - time.Since(r.lastEvent)
		if len(r.pending) == 0 && !r.refreshing && r.timer == nil && quiet <= 0 {
			return nil
		}
		if quiet > 0 {
			t := time.AfterFunc(quiet, func() {
				r.mu.Lock()
				r.idle.Broadcast()
				r.mu.Unlock()
			})
			r.idle.Wait()
			t.Stop()
		} else {
			r.idle.Wait()
		}
	}
	return ctx.Err()
}

// Close stops the Healer and waits for its goroutines.
func (r *Healer) Close() error {
	r.stop()
	err := r.sub.Close()
	r.mu.Lock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.idle.Broadcast()
	r.mu.Unlock()
	r.wg.Wait()
	return err
}
