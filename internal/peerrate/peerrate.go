// Package peerrate keeps one token bucket per remote node, for the
// node-to-node protocols that answer other nodes' requests (record
// lookups, flooded queries, move notices, relay grants).
package peerrate

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// maxPeers bounds the buckets kept; past it they are all forgotten, which
// only forgives.
const maxPeers = 10000

// Limiters is a set of per-peer token buckets. The zero value is not
// usable; use New.
type Limiters struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	m     map[peer.ID]*rate.Limiter
	now   func() time.Time // time.Now; a test's clock
}

// New returns buckets that each allow r requests a second, burst at once:
// r 0 allows burst requests and no more, rate.Inf allows every request.
func New(r rate.Limit, burst int) *Limiters {
	return &Limiters{r: r, burst: burst, m: map[peer.ID]*rate.Limiter{}, now: time.Now}
}

// Allow takes a token from p's bucket.
func (l *Limiters) Allow(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.r == rate.Inf {
		return true
	}
	b := l.m[p]
	if b == nil {
		if len(l.m) >= maxPeers {
			clear(l.m)
		}
		b = rate.NewLimiter(l.r, l.burst)
		l.m[p] = b
	}
	return b.AllowN(l.now(), 1)
}

// Set changes the rate and burst, starting every bucket afresh.
func (l *Limiters) Set(r rate.Limit, burst int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.r, l.burst = r, burst
	clear(l.m)
}
