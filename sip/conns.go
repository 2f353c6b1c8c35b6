package sip

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Limits of the TCP listener. A phone keeps one connection (its flow:
// calls to it go back over it); a few phones may share an address behind
// a NAT.
const (
	// MaxTCPPerSource caps the open connections of one source address
	// (an IPv6 one: its /64); more are closed at once.
	MaxTCPPerSource = 16
	// MaxTCP caps all open connections.
	MaxTCP = 1024
	// tcpFirstRead is how long a new connection may stay silent: a phone
	// speaks first (its REGISTER).
	tcpFirstRead = 30 * time.Second
)

// tcpLimiter is the SIP TCP listener with its limits: per source and in
// all, a deadline for the first bytes and an idle timeout after them
// (longer than any registration: a registered phone's flow stays open).
type tcpLimiter struct {
	net.Listener
	first   time.Duration // tcpFirstRead
	idle    time.Duration
	refused func(src netip.Addr, first bool)

	mu      sync.Mutex
	all     int
	allFull bool // refusing for all: logged once until one closes
	open    map[netip.Addr]int
	full    map[netip.Addr]bool // refusing for a source: logged once until one of its closes
}

// Accept returns the next connection within the limits; those beyond are
// closed here.
func (l *tcpLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		var src netip.Addr
		if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			ip, _ := netip.AddrFromSlice(ta.IP)
			src = sourceKey(ip)
		}
		l.mu.Lock()
		ok := l.all < MaxTCP && l.open[src] < MaxTCPPerSource
		first := false
		switch {
		case ok:
			l.all++
			l.open[src]++
		case l.all >= MaxTCP: // logged once until one closes
			first, l.allFull = !l.allFull, true
		case !l.full[src]: // the source holds connections: closed clears it
			l.full[src], first = true, true
		}
		l.mu.Unlock()
		if !ok {
			c.Close()
			l.refused(src, first)
			continue
		}
		return &limitedConn{Conn: c, l: l, src: src, first: l.first, idle: l.idle}, nil
	}
}

func (l *tcpLimiter) closed(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all--
	l.allFull = false
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
	delete(l.full, src)
}

// limitedConn is a connection counted against its source; each read has
// a deadline (sipgo sets none).
type limitedConn struct {
	net.Conn
	l     *tcpLimiter
	src   netip.Addr
	first time.Duration
	idle  time.Duration
	heard bool
	once  sync.Once
}

func (c *limitedConn) Read(b []byte) (int, error) {
	wait := c.idle
	if !c.heard {
		wait = c.first
	}
	if err := c.Conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.heard = true
	}
	return n, err
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.closed(c.src) })
	return c.Conn.Close()
}

// tlsListener serves SIP over TLS on the limited TCP listener. The
// handshake runs on the connection's first read (sipgo's reader, not
// the accept loop), within the limits' first-read deadline; one that
// fails (plain SIP sent to the TLS port, a client refusing the
// certificate) closes the connection and is counted.
type tlsListener struct {
	net.Listener
	conf *tls.Config
	m    *metrics
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.conf), m: l.m}, nil
}

type tlsConn struct {
	*tls.Conn
	m    *metrics
	done bool // handshake complete; only sipgo's reader reads
}

func (c *tlsConn) Read(b []byte) (int, error) {
	if !c.done {
		ctx, cancel := context.WithTimeout(context.Background(), tcpFirstRead)
		err := c.Conn.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.m.dropped.WithLabelValues("tls").Inc()
			c.Conn.Close()
			return 0, io.EOF
		}
		c.done = true
	}
	return c.Conn.Read(b)
}
