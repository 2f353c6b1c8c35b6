package node

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits of the terminal API's listeners (HTTP and HTTPS alike).
const (
	// DefaultAPIMaxConnsPerClient caps the open connections of one client
	// address beyond loopback (an IPv6 client: its /64). A browser opens
	// up to 6 per host, plus a WebSocket per tab.
	DefaultAPIMaxConnsPerClient = 64
	// DefaultAPIReadTimeout bounds reading one request, body included
	// (slow bodies); a live WebSocket is exempt.
	DefaultAPIReadTimeout = 30 * time.Second
	// DefaultAPIIdleTimeout closes keep-alive connections idle this long.
	DefaultAPIIdleTimeout = 60 * time.Second
	// apiWriteTimeout bounds writing an answer (slow readers); a search
	// stream extends it to its own timeout.
	apiWriteTimeout = 30 * time.Second
	// apiHeaderTimeout bounds reading a request's headers.
	apiHeaderTimeout = 10 * time.Second
	// apiMaxHeaderBytes bounds a request's headers (more: 431). net/http's
	// default, 1 MiB, let one LAN client hold 64 MiB with its 64
	// connections; browsers send 1-2 KiB, and the API sets no cookies.
	apiMaxHeaderBytes = 16 << 10
)

// newAPIServer is the HTTP server of the API listeners, with their limits.
func (n *Node) newAPIServer() *http.Server {
	srv := &http.Server{
		Handler:           n.handler(),
		ReadHeaderTimeout: apiHeaderTimeout,
		MaxHeaderBytes:    apiMaxHeaderBytes,
		ReadTimeout:       n.opts.APIReadTimeout,
		WriteTimeout:      apiWriteTimeout,
		IdleTimeout:       n.opts.APIIdleTimeout,
		BaseContext:       n.baseContext,
		ConnState:         n.fresh.track,
	}
	// Run by Shutdown once the listeners are closed.
	srv.RegisterOnShutdown(n.fresh.closeAll)
	return srv
}

// freshConns are the API connections that have not sent a request yet.
// http.Server.Shutdown leaves such a connection open until it is 5 s old,
// so a client that connected just before the node stopped (an HTTP client
// dials ahead, or gave up on its request) held Close for the whole
// shutdown timeout; they carry no work and are closed first.
type freshConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (f *freshConns) track(c net.Conn, st http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st == http.StateNew {
		if f.m == nil {
			f.m = map[net.Conn]struct{}{}
		}
		f.m[c] = struct{}{}
		return
	}
	delete(f.m, c)
}

// closeAll closes the connections that have not sent a request.
func (f *freshConns) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.m {
		c.Close()
	}
	clear(f.m)
}

// connLimiter is a listener that closes a client's new connections while
// it holds its maximum. Loopback clients (this machine) are not limited.
type connLimiter struct {
	net.Listener
	max     int
	refused prometheus.Counter

	mu   sync.Mutex
	open map[netip.Addr]int
}

// limitConns wraps ln in the per-client connection cap; name labels its
// metric (api or https).
func (n *Node) limitConns(ln net.Listener, name string) net.Listener {
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "irmv_api_connections_refused_total",
		Help:        "Connections to the terminal API closed at once because their client address held the maximum.",
		ConstLabels: prometheus.Labels{"listener": name},
	})
	if err := n.reg.Register(refused); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			refused = are.ExistingCollector.(prometheus.Counter)
		}
	}
	return &connLimiter{Listener: ln, max: n.opts.APIMaxConnsPerClient, refused: refused, open: map[netip.Addr]int{}}
}

// clientKey is the address a connection counts against; ok is false for
// loopback (and non-TCP) clients.
func clientKey(a net.Addr) (netip.Addr, bool) {
	ta, isTCP := a.(*net.TCPAddr)
	if !isTCP {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip, true
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, limited := clientKey(c.RemoteAddr())
		if !limited {
			return c, nil
		}
		l.mu.Lock()
		if l.open[key] >= l.max {
			l.mu.Unlock()
			l.refused.Inc()
			c.Close()
			continue
		}
		l.open[key]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *connLimiter) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// limitedConn gives its slot back on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
