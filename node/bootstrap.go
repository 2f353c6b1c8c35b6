package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/irmv/irmv/client"
)

// Bootstrap redial backoff: the first retry comes quickly (a node that
// restarts is back within seconds), later ones slow down to bootMaxWait,
// which keeps a node findable within 30 s of a bootstrap node's return.
const (
	bootMinWait = time.Second
	bootMaxWait = 30 * time.Second
	bootTimeout = 10 * time.Second
	bootTag     = "irmv-bootstrap"
	// bootStable is how long a connection must last to reset the
	// backoff: one that a bootstrap node drops at once (overloaded,
	// refusing the peer after the handshake) counts as a failed dial,
	// else the node would redial it in a tight loop.
	bootStable = 10 * time.Second
)

type bootPeer struct {
	ai        peer.AddrInfo
	addr      string
	connected bool
	tried     bool
	failures  int
	err       string
	wait      time.Duration
	next      time.Time
	since     time.Time // when the connection came up
}

// bootstrapper keeps the node connected to every bootstrap node: it dials
// them at start, says at warn level which fail and why, redials with
// backoff, and redials one as soon as its connection drops (not only when
// the routing table runs empty). Connections to them are protected from
// the connection manager: for a node behind a NAT they are the public
// nodes that keep it findable.
type bootstrapper struct {
	n  *Node
	mu sync.Mutex
	ps []*bootPeer
}

func newBootstrapper(n *Node, addrs []string, boot []peer.AddrInfo) *bootstrapper {
	b := &bootstrapper{n: n}
	for i, ai := range boot {
		b.ps = append(b.ps, &bootPeer{ai: ai, addr: addrs[i]})
	}
	return b
}

// Info reports the bootstrap state.
func (b *bootstrapper) Info() client.BootstrapInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	info := client.BootstrapInfo{State: client.BootNone, Peers: []client.BootstrapPeer{}}
	if len(b.ps) == 0 {
		return info
	}
	info.State = client.BootFailing
	tried := false
	for _, p := range b.ps {
		bp := client.BootstrapPeer{Addr: p.addr, Connected: p.connected, Failures: p.failures, Error: p.err}
		if p.connected && time.Since(p.since) >= bootStable {
			bp.Failures, bp.Error = 0, "" // the connection has proved itself
		}
		if !p.connected && !p.next.IsZero() {
			bp.NextDial = p.next.UTC().Format(time.RFC3339)
		}
		info.Peers = append(info.Peers, bp)
		if p.connected {
			info.State = client.BootConnected
		}
		tried = tried || p.tried
	}
	if info.State == client.BootFailing && !tried {
		info.State = client.BootConnecting
	}
	return info
}

// Serve runs until ctx ends.
func (b *bootstrapper) Serve(ctx context.Context) {
	if len(b.ps) == 0 {
		return
	}
	sub, err := b.n.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.Name("irmv bootstrap"))
	if err != nil {
		b.n.log.Error("Bootstrap stopped", "err", err)
		return
	}
	wake, done := watchConnectedness(ctx, sub, func(ev event.EvtPeerConnectednessChanged) bool {
		return b.changed(ev.Peer, ev.Connectedness == network.Connected)
	})
	defer func() { sub.Close(); <-done }()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-wake:
		}
		b.dialDue(ctx)
		timer.Reset(b.nextWake())
	}
}

// watchConnectedness takes each connectedness event off sub as it comes,
// until ctx ends or sub closes (then done closes), and wakes the caller
// when handle says so. The bootstrapper and the relay keeper spend
// seconds dialling between events; a subscriber that stops reading stalls
// libp2p's emitter, and behind it every new connection of the node (the
// swarm queues 32 events, the subscription 16).
func watchConnectedness(ctx context.Context, sub event.Subscription, handle func(event.EvtPeerConnectednessChanged) bool) (wake, done <-chan struct{}) {
	w, d := make(chan struct{}, 1), make(chan struct{})
	go func() {
		defer close(d)
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				if handle(e.(event.EvtPeerConnectednessChanged)) {
					select {
					case w <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return w, d
}

// changed records a bootstrap peer's connection state; it tells whether
// the peer was one that needs a dial now.
func (b *bootstrapper) changed(p peer.ID, up bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, bp := range b.ps {
		if bp.ai.ID != p || bp.connected == up {
			continue
		}
		if up {
			b.upLocked(bp)
			return false
		}
		bp.connected = false
		if time.Since(bp.since) >= bootStable {
			b.n.log.Info("Bootstrap node disconnected; redialling", "addr", bp.addr)
			bp.wait, bp.next = 0, time.Now()
			bp.failures, bp.err = 0, ""
			return true
		}
		// Dropped at once: redial with backoff.
		b.failedLocked(bp, errors.New("connection dropped at once"))
		return true
	}
	return false
}

func (b *bootstrapper) nextWake() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	wake := bootMaxWait
	for _, bp := range b.ps {
		if !bp.connected {
			wake = min(wake, max(time.Until(bp.next), 0))
		}
	}
	return wake
}

// dialDue dials, in parallel, the bootstrap peers not connected whose
// time has come.
func (b *bootstrapper) dialDue(ctx context.Context) {
	now := time.Now()
	var due []*bootPeer
	b.mu.Lock()
	for _, bp := range b.ps {
		if b.n.host.Network().Connectedness(bp.ai.ID) == network.Connected {
			b.upLocked(bp)
			continue
		}
		bp.connected = false
		if !bp.next.After(now) {
			due = append(due, bp)
		}
	}
	b.mu.Unlock()
	if len(due) == 0 {
		return
	}
	var wg sync.WaitGroup
	joined := false
	var jmu sync.Mutex
	for _, bp := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The bootstrapper paces its own retries: the swarm's
			// backoff from an earlier failed dial (by the DHT, say)
			// would answer "dial backoff" and hide the reason.
			if sw, ok := b.n.host.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(bp.ai.ID)
			}
			cctx, cancel := context.WithTimeout(ctx, bootTimeout)
			err := b.n.host.Connect(cctx, bp.ai)
			cancel()
			if ctx.Err() != nil {
				return
			}
			b.dialed(bp, err)
			if err == nil {
				jmu.Lock()
				joined = true
				jmu.Unlock()
			}
		}()
	}
	wg.Wait()
	if joined {
		b.n.joined(ctx)
	}
}

// dialed records a dial's outcome and logs it: every failure at warn
// for the first few, then every tenth (the backoff keeps it rare).
func (b *bootstrapper) dialed(bp *bootPeer, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bp.tried = true
	if err == nil {
		b.upLocked(bp)
		return
	}
	b.failedLocked(bp, err)
}

// upLocked records that bp is connected, by this node's dial or by
// another part's (the DHT and the relay keeper dial bootstrap nodes too),
// protects the connection and says so, once per connection; b.mu is held.
func (b *bootstrapper) upLocked(bp *bootPeer) {
	bp.tried = true
	if bp.connected {
		return
	}
	bp.connected = true
	bp.up(time.Now())
	b.n.host.ConnManager().Protect(bp.ai.ID, bootTag)
	b.n.log.Info("Connected to bootstrap node", "addr", bp.addr)
}

// up records a connection that came up at now. The backoff, the failure
// count and the last error stay until the connection has lasted
// bootStable (changed, Info): a node that drops each connection at once
// shows why, however often other parts of the node dial it.
func (bp *bootPeer) up(now time.Time) {
	bp.next, bp.since = time.Time{}, now
}

// failedLocked records a failed dial (or a connection dropped at once)
// and when to dial again; b.mu is held.
func (b *bootstrapper) failedLocked(bp *bootPeer, err error) {
	bp.failures++
	bp.err = err.Error()
	bp.wait = min(max(2*bp.wait, bootMinWait), bootMaxWait)
	bp.next = time.Now().Add(bp.wait)
	if bp.failures <= 3 || bp.failures%10 == 0 {
		b.n.log.Warn("Cannot reach bootstrap node", "addr", bp.addr, "err", err, "failures", bp.failures, "retry_in", bp.wait)
	}
}

// joined runs after the node (re)connected to a bootstrap node: it fills
// the routing table beyond the bootstrap nodes and announces the hosted
// terminals again, so that they are findable at once, not at the next
// republish.
func (n *Node) joined(ctx context.Context) {
	if n.dht.RoutingTable().Size() == 0 {
		return
	}
	n.pub.Republish()
	// Close must not wait for the refresh's queries.
	select {
	case <-n.dht.RefreshRoutingTable():
	case <-ctx.Done():
	}
}
