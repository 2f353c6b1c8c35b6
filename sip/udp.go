package sip

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// sipgo's UDP transport (v1.7.3) keeps, for every source address:port
// a packet came from, an entry in its connection pool (so that answers
// and requests to that address go out of the listening socket) and one
// in a set of its read loop, both until the loop ends: a sender from
// ever new ports would grow the node without bound. The node therefore
// hands sipgo its UDP socket through a wrapper and replaces sipgo's read
// loop now and then by a new one on the same socket (a generation): the
// old loop's ending removes its entries, after the addresses still
// needed were pointed at the new loop's connection through sipgo's pool
// API. Still needed: registered phones' flows and calls' phones (requests
// to them), and sources heard within udpKeep (their transactions, whose
// answers look the source up). Beyond udpKeepMax recent sources, only
// the newest are kept.
const (
	// udpRotateAfter is how many new sources start a new generation.
	udpRotateAfter = 1024
	// udpKeep is how long a source's entry outlives its last packet:
	// longer than a transaction (64*T1, 32 s).
	udpKeep = 64 * time.Second
	// udpKeepMax bounds the recent sources kept across a generation.
	udpKeepMax = 8192
	// udpCheck is how often sources older than udpKeep are looked for.
	udpCheck = 10 * time.Second
)

// udpSources replaces sipgo's UDP read loop by generations (above).
type udpSources struct {
	conn  net.PacketConn // the socket; its owner closes it
	serve func(net.PacketConn)
	pool  *sip.ConnectionPool
	laddr string
	live  func() []string // sources that stay whatever their age
	now   func() time.Time
	// rotateAfter and keepMax: udpRotateAfter and udpKeepMax (tests
	// make them small).
	rotateAfter, keepMax int

	// dl orders the socket's read deadline, which stops a generation's
	// read: set with its stop, cleared only for a generation not stopped.
	dl    sync.Mutex
	mu    sync.Mutex
	seen  map[string]int64 // source → last packet (Unix ns)
	fresh int              // new sources since the last generation
	cur   *udpGen
	kick  chan struct{}
	gens  atomic.Int64 // generations started (tests)
}

func newUDPSources(conn net.PacketConn, pool *sip.ConnectionPool, serve func(net.PacketConn), live func() []string, now func() time.Time) *udpSources {
	return &udpSources{conn: conn, serve: serve, pool: pool, laddr: conn.LocalAddr().String(), live: live, now: now,
		seen: map[string]int64{}, kick: make(chan struct{}, 1), rotateAfter: udpRotateAfter, keepMax: udpKeepMax}
}

// heard records a packet sipgo takes from src (its read filter passed it).
func (u *udpSources) heard(src net.Addr) {
	a := src.String()
	if a == u.laddr {
		return // sipgo's own entry (a forged source): Serve keeps it
	}
	now := u.now().UnixNano()
	u.mu.Lock()
	if _, ok := u.seen[a]; !ok {
		u.fresh++
		if u.fresh == u.rotateAfter {
			select {
			case u.kick <- struct{}{}:
			default:
			}
		}
	}
	u.seen[a] = now
	u.mu.Unlock()
}

// run serves the first generation and starts the next ones until ctx
// ends. wg counts the serving goroutines.
func (u *udpSources) run(ctx context.Context, wg *sync.WaitGroup) {
	g := u.newGen(nil)
	u.mu.Lock()
	u.cur = g
	u.mu.Unlock()
	u.start(g, wg)
	t := time.NewTicker(udpCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.kick:
		case <-t.C:
			if !u.stale() {
				continue
			}
		}
		if !u.rotate(ctx, wg) {
			return
		}
	}
}

func (u *udpSources) newGen(prev *udpGen) *udpGen {
	return &udpGen{PacketConn: u.conn, u: u, prev: prev, started: make(chan struct{}), done: make(chan struct{})}
}

func (u *udpSources) start(g *udpGen, wg *sync.WaitGroup) {
	u.gens.Add(1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer g.retire() // the socket closed before its first read
		u.serve(g)
	}()
}

// stale reports whether a new generation would forget sources: new ones
// came, or some not live are older than udpKeep.
func (u *udpSources) stale() bool {
	live := map[string]bool{}
	for _, a := range u.live() {
		live[a] = true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.fresh >= u.rotateAfter {
		return true
	}
	old := u.now().Add(-udpKeep).UnixNano()
	for a, t := range u.seen {
		if t < old && !live[a] {
			return true
		}
	}
	return false
}

// size is the number of sources tracked.
func (u *udpSources) size() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// rotate starts a generation and retires the current one; false when
// the socket closed meanwhile.
func (u *udpSources) rotate(ctx context.Context, wg *sync.WaitGroup) bool {
	u.mu.Lock()
	old := u.cur
	u.mu.Unlock()
	next := u.newGen(old)
	u.start(next, wg)
	select {
	case <-next.started: // sipgo put next's connection in the pool first
	case <-ctx.Done():
		return false
	}
	c := u.pool.Get(u.laddr)
	if c == nil {
		return false // closed
	}
	c.Ref(-1) // Get took a reference; the listener's are not counted
	old.next = c
	u.dl.Lock()
	old.stop.Store(true)
	u.conn.SetReadDeadline(time.Unix(1, 0)) // wakes old's read
	u.dl.Unlock()
	select {
	case <-old.done:
	case <-ctx.Done():
		return false
	}
	u.mu.Lock()
	u.cur = next
	u.mu.Unlock()
	return true
}

// handOver points the sources still needed at c (the new generation's
// connection) and removes the others from the pool; called by the
// retiring generation's last read, after its last entry was added and
// before its loop removes its entries.
func (u *udpSources) handOver(c sip.Connection) {
	live := u.live()
	now := u.now()
	old := now.Add(-udpKeep).UnixNano()
	u.mu.Lock()
	defer u.mu.Unlock()
	keep := map[string]int64{}
	var recent []int64
	for _, t := range u.seen {
		if t >= old {
			recent = append(recent, t)
		}
	}
	if len(recent) > u.keepMax {
		slices.Sort(recent)
		old = recent[len(recent)-u.keepMax]
	}
	for a, t := range u.seen {
		if t >= old {
			keep[a] = t
		}
	}
	for _, a := range live {
		if _, ok := keep[a]; !ok {
			keep[a] = now.UnixNano()
		}
	}
	var gone []string
	for a := range u.seen {
		if _, ok := keep[a]; !ok {
			gone = append(gone, a)
		}
	}
	u.pool.DeleteMultiple(gone)
	for a := range keep {
		u.pool.Add(a, c)
	}
	u.seen, u.fresh = keep, 0
}

// udpGen is the socket as one generation of sipgo's read loop sees it.
type udpGen struct {
	net.PacketConn
	u       *udpSources
	prev    *udpGen
	started chan struct{} // closed by the first read
	done    chan struct{} // closed by the last
	once    sync.Once
	first   bool
	stop    atomic.Bool
	next    sip.Connection // set before stop
	pending []byte         // a packet the previous generation read last
	from    net.Addr
}

var errRetired = net.ErrClosed

// ReadFrom reads the socket for sipgo's loop until the generation is
// stopped: then its last read hands the sources over and reports the
// socket closed, which ends the loop (it does not close the socket). A
// packet read after the stop goes to the next generation.
func (g *udpGen) ReadFrom(b []byte) (int, net.Addr, error) {
	if !g.first {
		g.first = true
		close(g.started)
		if prev := g.prev; prev != nil {
			<-prev.done
			// Forgotten, or every generation since start would stay
			// reachable from the current one.
			g.prev = nil
			g.clearDeadline()
			if p := prev.pending; p != nil {
				prev.pending = nil
				return copy(b, p), prev.from, nil
			}
		}
	}
	for {
		if g.stop.Load() {
			g.retire()
			return 0, nil, errRetired
		}
		n, from, err := g.u.conn.ReadFrom(b)
		if !g.stop.Load() {
			if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				g.clearDeadline() // never: the previous generation's is cleared
				continue
			}
			if err != nil {
				g.retire()
			}
			return n, from, err
		}
		if err == nil {
			g.pending, g.from = slices.Clone(b[:n]), from
		} else if !errors.Is(err, os.ErrDeadlineExceeded) {
			g.retire()
			return 0, nil, err
		}
	}
}

// clearDeadline clears the socket's read deadline unless g is stopped.
func (g *udpGen) clearDeadline() {
	g.u.dl.Lock()
	defer g.u.dl.Unlock()
	if !g.stop.Load() {
		g.u.conn.SetReadDeadline(time.Time{})
	}
}

// retire hands the sources over (when stopped) and lets the next
// generation read; once.
func (g *udpGen) retire() {
	g.once.Do(func() {
		if g.stop.Load() && g.next != nil {
			g.u.handOver(g.next)
		}
		close(g.done)
	})
}

// Close does nothing: sipgo does not close a listener it was given; the
// server closes the socket.
func (g *udpGen) Close() error { return nil }
