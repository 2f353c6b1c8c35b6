package node

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Per-client limits of the terminal API: a token bucket per client IP and
// class of endpoint. Clients on loopback are exempt: they are this machine
// (the CLI, hooks, benchmarks), which can stop the node anyway; browsers on
// it are not, as any page may send their requests.
const (
	apiRate        rate.Limit = 200 // most endpoints, requests per second
	apiBurst                  = 400
	apiSearchRate  rate.Limit = 20 // GET /v1/search: each one fans out to the network
	apiSearchBurst            = 40
	apiWSRate      rate.Limit = 10 // GET /v1/ws upgrades
	apiWSBurst                = 20

	// maxClients bounds the buckets kept; idle ones are evicted first.
	maxClients = 4096
	// clientIdle is how long an unused bucket is kept. A bucket idle this
	// long is full again, so forgetting it forgives nothing.
	clientIdle = time.Minute
)

// apiClass is a class of endpoints sharing one bucket per client.
type apiClass int

const (
	classDefault apiClass = iota
	classSearch
	classWS
	numClasses
)

var classLimits = [numClasses]struct {
	r     rate.Limit
	burst int
}{
	classDefault: {apiRate, apiBurst},
	classSearch:  {apiSearchRate, apiSearchBurst},
	classWS:      {apiWSRate, apiWSBurst},
}

func classOf(r *http.Request) apiClass {
	switch r.URL.Path {
	case "/v1/search":
		return classSearch
	case "/v1/ws":
		return classWS
	}
	return classDefault
}

type clientBuckets struct {
	lim  [numClasses]*rate.Limiter
	last time.Time
}

// apiLimiter holds the buckets of the API's clients. The map is bounded:
// when full, idle buckets are swept; if none is idle, the oldest goes.
type apiLimiter struct {
	mu      sync.Mutex
	clients map[netip.Addr]*clientBuckets
	now     func() time.Time
}

func newAPILimiter() *apiLimiter {
	return &apiLimiter{clients: make(map[netip.Addr]*clientBuckets), now: time.Now}
}

// reserve takes a token for ip in class c. It returns 0 when the request
// may go on, else how long until a token is there.
func (l *apiLimiter) reserve(ip netip.Addr, c apiClass) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	cb, ok := l.clients[ip]
	if !ok {
		if len(l.clients) >= maxClients {
			l.evictLocked(now)
		}
		cb = &clientBuckets{}
		l.clients[ip] = cb
	}
	cb.last = now
	if cb.lim[c] == nil {
		cb.lim[c] = rate.NewLimiter(classLimits[c].r, classLimits[c].burst)
	}
	if cb.lim[c].AllowN(now, 1) {
		return 0
	}
	// Time until one token: the bucket is empty or nearly so.
	tokens := cb.lim[c].TokensAt(now)
	wait := time.Duration((1 - tokens) / float64(classLimits[c].r) * float64(time.Second))
	return max(wait, time.Millisecond)
}

// evictLocked drops idle buckets and, if that frees too little, random
// others down to three quarters of maxClients, so that eviction is cheap
// on average even when an attacker cycles through addresses. Forgetting a
// bucket only forgives.
func (l *apiLimiter) evictLocked(now time.Time) {
	for ip, cb := range l.clients {
		if now.Sub(cb.last) > clientIdle {
			delete(l.clients, ip)
		}
	}
	for ip := range l.clients { // random order
		if len(l.clients) <= maxClients*3/4 {
			break
		}
		delete(l.clients, ip)
	}
}

// size is the number of clients with buckets.
func (l *apiLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// wrap answers 429 with Retry-After to a non-loopback client over its
// rate, and passes everything else to next.
func (l *apiLimiter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, err := netip.ParseAddr(remoteIP(r))
		if err == nil {
			ip = ip.Unmap().WithZone("")
		}
		if err != nil || (ip.IsLoopback() && !fromBrowser(r)) {
			next.ServeHTTP(w, r) // this machine (or not TCP): no limit
			return
		}
		if ip.Is6() {
			// One client holds a whole /64: limit the prefix, not each
			// of its addresses.
			ip = netip.PrefixFrom(ip, 64).Masked().Addr()
		}
		if wait := l.reserve(ip, classOf(r)); wait > 0 {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			// Close the connection too: a client over its rate holds no
			// keep-alive connection while it waits.
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusTooManyRequests,
				fmt.Sprintf("too many requests from %s: retry in %v", ip, wait.Round(time.Millisecond)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// New terminals per client address beyond loopback (IPv6: its /64), and
// per browser: a burst of newTermBurst, then one every newTermEvery.
// Updates of a client's terminals are not counted, nor the admin's. With
// only the register's bound (share.Options.MaxTerminals), one client
// filled it, and with a week's TTL kept new terminals out for a week.
const (
	newTermBurst = 16
	newTermEvery = time.Minute
)

// errTooManyNew is why a new terminal is refused (429).
var errTooManyNew = fmt.Errorf("too many new terminals from this address: %d, then one a minute; try again later", newTermBurst)

// newTerminals holds a bucket per client; bounded: past maxClients they
// are all forgotten, which only forgives.
type newTerminals struct {
	mu sync.Mutex
	m  map[netip.Addr]*rate.Limiter
}

func (l *newTerminals) allow(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil || len(l.m) >= maxClients {
		l.m = map[netip.Addr]*rate.Limiter{}
	}
	b := l.m[ip]
	if b == nil {
		b = rate.NewLimiter(rate.Every(newTermEvery), newTermBurst)
		l.m[ip] = b
	}
	return b.Allow()
}

// mayCreate is the check of a new terminal registered by request r.
func (n *Node) mayCreate(r *http.Request) func() error {
	ip, err := netip.ParseAddr(remoteIP(r))
	if err != nil || n.isAdmin(bearer(r)) {
		return nil
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsLoopback() && !fromBrowser(r) {
		return nil // this machine: hooks, the CLI
	}
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return func() error {
		if !n.newTerms.allow(ip) {
			return errTooManyNew
		}
		return nil
	}
}
