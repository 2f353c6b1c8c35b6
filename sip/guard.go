package sip

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits of password guessing. Each wrong digest answer (wrong password,
// user, realm or a nonce not ours) takes a token from its source
// address's bucket and, for a known user, from that user's bucket. While a
// bucket is empty, credentials are refused with 403 without being checked,
// so that guesses tell nothing. The user's bucket does not hold back the
// address the user's phone is registered from: guesses from elsewhere do
// not lock the real phone out.
const (
	guessBurstSource = 10
	guessRateSource  = rate.Limit(1.0 / 6) // a guess every 6 s: 10 a minute
	guessBurstUser   = 20
	guessRateUser    = rate.Limit(1.0 / 3) // 20 a minute, from all sources
	maxGuessEntries  = 4096
)

// guessGuard holds the buckets of wrong digest answers.
type guessGuard struct {
	mu     sync.Mutex
	source map[netip.Addr]*rate.Limiter
	user   map[string]*rate.Limiter
}

// sourceKey is what a source counts as: its address, an IPv6 one's /64.
func sourceKey(ip netip.Addr) netip.Addr {
	if ip.Is6() && !ip.Is4In6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip.Unmap()
}

// bucket returns m's limiter for k, making it when there is none; a full
// table (max) forgets the buckets that are full (they are as good as new).
func bucket[K comparable](m map[K]*rate.Limiter, k K, max int, r rate.Limit, burst int, now time.Time) *rate.Limiter {
	if l := m[k]; l != nil {
		return l
	}
	if len(m) >= max {
		for k, l := range m {
			if l.TokensAt(now) >= float64(l.Burst()) {
				delete(m, k)
			}
		}
		if len(m) > max*3/4 { // few were full: scan again only after max/4 new ones
			clear(m) // forgetting only forgives
		}
	}
	l := rate.NewLimiter(r, burst)
	m[k] = l
	return l
}

// blocked reports whether credentials from src for user are refused
// unchecked: src has no guesses left, or user has none and src is not
// where its phone is registered (home).
func (g *guessGuard) blocked(src netip.Addr, user string, home netip.Addr, now time.Time) (bySource, byUser bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if l := g.source[sourceKey(src)]; l != nil && l.TokensAt(now) < 1 {
		return true, false
	}
	if l := g.user[user]; l != nil && l.TokensAt(now) < 1 && (!home.IsValid() || home != src) {
		return false, true
	}
	return false, false
}

// failed takes a guess from src's bucket and, when known, from user's.
// It reports which of them it emptied (to log once, not per guess).
func (g *guessGuard) failed(src netip.Addr, user string, known bool, now time.Time) (sourceEmptied, userEmptied bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.source == nil {
		g.source, g.user = map[netip.Addr]*rate.Limiter{}, map[string]*rate.Limiter{}
	}
	take := func(l *rate.Limiter) bool { // the guess that emptied it
		return l.AllowN(now, 1) && l.TokensAt(now) < 1
	}
	sourceEmptied = take(bucket(g.source, sourceKey(src), maxGuessEntries, guessRateSource, guessBurstSource, now))
	if known {
		userEmptied = take(bucket(g.user, user, maxGuessEntries, guessRateUser, guessBurstUser, now))
	}
	return sourceEmptied, userEmptied
}
