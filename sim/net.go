package sim

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
)

// linker creates mocknet links on first dial and fails dials to dead nodes.
type linker struct {
	mn       mocknet.Mocknet
	deadDial time.Duration

	// private nodes are reached through a relay: a link that one of them
	// did not dial itself has twice the latency (via the relay).
	private map[peer.ID]bool

	mu    sync.Mutex
	links map[[2]peer.ID]time.Duration // latency of each link
	dead  map[peer.ID]bool
}

func newLinker(mn mocknet.Mocknet, deadDial time.Duration) *linker {
	return &linker{mn: mn, deadDial: deadDial, links: map[[2]peer.ID]time.Duration{}, dead: map[peer.ID]bool{}, private: map[peer.ID]bool{}}
}

// ensure links a and b unless they are linked; it fails (after the dead
// dial delay) when b is dead.
func (l *linker) ensure(ctx context.Context, a, b peer.ID) error {
	lat := l.mn.LinkDefaults().Latency
	if l.private[b] {
		lat *= 2 // a dial to a private node goes through its relay
	}
	if a > b {
		a, b = b, a
	}
	l.mu.Lock()
	if l.dead[a] || l.dead[b] {
		l.mu.Unlock()
		t := time.NewTimer(l.deadDial)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		return fmt.Errorf("sim: dial %s: node is down", b)
	}
	if _, ok := l.links[[2]peer.ID{a, b}]; ok {
		l.mu.Unlock()
		return nil
	}
	l.links[[2]peer.ID{a, b}] = lat
	l.mu.Unlock()
	lk, err := l.mn.LinkPeers(a, b)
	if err == nil {
		lk.SetOptions(mocknet.LinkOptions{Latency: lat})
	}
	return err
}

// latency is the one-way latency of the link between a and b.
func (l *linker) latency(a, b peer.ID) time.Duration {
	if a > b {
		a, b = b, a
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if d, ok := l.links[[2]peer.ID{a, b}]; ok {
		return d
	}
	return l.mn.LinkDefaults().Latency
}

func (l *linker) kill(p peer.ID) {
	l.mu.Lock()
	l.dead[p] = true
	l.mu.Unlock()
}

func (l *linker) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.links)
}

// linkedHost is a mocknet host that links on demand. Everything of a node
// (DHT, flooding, search) dials through it.
type linkedHost struct {
	host.Host
	l *linker
	// streams counts the streams this node opened: one per message of
	// the DHT (with p2pstream's sender), of lookups and of flooding.
	streams atomic.Uint64
	// waitIdentify makes streams opened on Network() wait, as basichost's
	// NewStream does, until identify on their connection has finished
	// (Config.WaitIdentify).
	waitIdentify bool
	ids          identify.IDService
}

// Network is the host's network, with links made on demand and streams
// wrapped as NewStream's are: p2pstream.Open opens its streams there.
func (h *linkedHost) Network() network.Network {
	return linkedNet{Network: h.Host.Network(), h: h}
}

type linkedNet struct {
	network.Network
	h *linkedHost
}

func (n linkedNet) DialPeer(ctx context.Context, p peer.ID) (network.Conn, error) {
	if n.Connectedness(p) != network.Connected {
		if err := n.h.l.ensure(ctx, n.h.ID(), p); err != nil {
			return nil, err
		}
	}
	c, err := n.Network.DialPeer(ctx, p)
	if err != nil {
		return nil, err
	}
	return c, n.identified(ctx, c)
}

func (n linkedNet) NewStream(ctx context.Context, p peer.ID) (network.Stream, error) {
	if n.Connectedness(p) != network.Connected {
		if err := n.h.l.ensure(ctx, n.h.ID(), p); err != nil {
			return nil, err
		}
	}
	s, err := n.Network.NewStream(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := n.identified(ctx, s.Conn()); err != nil {
		s.Reset()
		return nil, err
	}
	n.h.streams.Add(1)
	return n.h.wrap(s), nil
}

// identified waits for identify on c when the host waits for it.
func (n linkedNet) identified(ctx context.Context, c network.Conn) error {
	if !n.h.waitIdentify {
		return nil
	}
	select {
	case <-n.h.ids.IdentifyWait(c):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("identify failed to complete: %w", ctx.Err())
	}
}

func (h *linkedHost) Connect(ctx context.Context, pi peer.AddrInfo) error {
	if h.Network().Connectedness(pi.ID) != network.Connected {
		if err := h.l.ensure(ctx, h.ID(), pi.ID); err != nil {
			return err
		}
	}
	return h.Host.Connect(ctx, pi)
}

func (h *linkedHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if h.Network().Connectedness(p) != network.Connected {
		if err := h.l.ensure(ctx, h.ID(), p); err != nil {
			return nil, err
		}
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return nil, err
	}
	h.streams.Add(1)
	return h.wrap(s), nil
}

// SetStreamHandler wraps incoming streams like outgoing ones.
func (h *linkedHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h *linkedHost) SetStreamHandlerMatch(pid protocol.ID, m func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, m, func(s network.Stream) { handler(h.wrap(s)) })
}

func (h *linkedHost) wrap(s network.Stream) network.Stream {
	return &latentStream{Stream: s, lat: h.l.latency(h.ID(), s.Conn().RemotePeer())}
}

// latentStream delays closing until the last write has arrived. Mocknet
// delays a write of under 256 bytes only until the stream closes, so a
// short message followed by Close (a lookup request, a flood message)
// would otherwise cross a link in no time.
type latentStream struct {
	network.Stream
	lat time.Duration

	mu   sync.Mutex
	last time.Time
}

func (s *latentStream) Write(p []byte) (int, error) {
	n, err := s.Stream.Write(p)
	s.mu.Lock()
	s.last = time.Now()
	s.mu.Unlock()
	return n, err
}

// later runs f once the last write has had time to arrive.
func (s *latentStream) later(f func() error) error {
	s.mu.Lock()
	d := time.Until(s.last.Add(s.lat))
	s.mu.Unlock()
	if d <= 0 {
		return f()
	}
	time.AfterFunc(d, func() { f() })
	return nil
}

func (s *latentStream) CloseWrite() error { return s.later(s.Stream.CloseWrite) }
func (s *latentStream) Close() error      { return s.later(s.Stream.Close) }
