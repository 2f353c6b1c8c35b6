package node

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

// wantRelays is how many relays a private node keeps a slot on.
const wantRelays = 2

// relayTag protects the connections to a node's relays from the
// connection manager.
const relayTag = "irmv-relay"

// relayKeeper keeps a node behind a NAT reachable (a private node, or one
// without a public address whose reachability is not known yet): it holds
// reservations on wantRelays public nodes (its bootstrap nodes first,
// then any connected node that offers the relay service), renews them
// before they expire, replaces a relay as soon as its connection drops,
// and announces the circuit addresses through the relays (the host's
// address factory adds them, addrPolicy.Announce; the event libp2p's
// AutoRelay emits makes the host recompute its addresses).
//
// libp2p's AutoRelay does the same job but announces a relay only by its
// public addresses, so it ignores a relay on the LAN (and on loopback,
// where the tests run), and it waits for several candidates before it
// reserves; irmv's network is small and its bootstrap nodes are the
// relays it trusts first.
type relayKeeper struct {
	h      host.Host
	boot   []peer.AddrInfo
	policy *addrPolicy
	log    *slog.Logger
	emit   event.Emitter
	wake   chan struct{}

	mu      sync.Mutex
	active  bool
	rsvps   map[peer.ID]*circuit.Reservation
	backoff map[peer.ID]relayBackoff
	addrs   []ma.Multiaddr // last announced
}

type relayBackoff struct {
	until time.Time
	wait  time.Duration
}

// relayBackoffMax is the longest wait before a failed relay is asked
// again; relayBackoffKept how many failed relays are remembered (one per
// peer offering the relay service that ever failed, else unbounded).
const (
	relayBackoffMax  = 5 * time.Minute
	relayBackoffKept = 256
)

// pruneBackoffLocked forgets relays whose wait ended long ago (the next
// failure starts their backoff afresh, as after a success) and, when
// still too many are kept, the ones whose wait ends first.
func (k *relayKeeper) pruneBackoffLocked(now time.Time) {
	for p, b := range k.backoff {
		if now.Sub(b.until) > 2*relayBackoffMax {
			delete(k.backoff, p)
		}
	}
	for len(k.backoff) >= relayBackoffKept {
		var first peer.ID
		var at time.Time
		for p, b := range k.backoff {
			if first == "" || b.until.Before(at) {
				first, at = p, b.until
			}
		}
		delete(k.backoff, first)
	}
}

func newRelayKeeper(h host.Host, boot []peer.AddrInfo, policy *addrPolicy, log *slog.Logger) (*relayKeeper, error) {
	em, err := h.EventBus().Emitter(new(event.EvtAutoRelayAddrsUpdated), eventbus.Stateful)
	if err != nil {
		return nil, err
	}
	return &relayKeeper{
		h: h, boot: boot, policy: policy, log: log, emit: em,
		wake:    make(chan struct{}, 1),
		rsvps:   map[peer.ID]*circuit.Reservation{},
		backoff: map[peer.ID]relayBackoff{},
	}, nil
}

// setActive starts (a node behind a NAT) or stops keeping reservations.
func (k *relayKeeper) setActive(on bool) {
	k.follow(func() bool { return on })
}

// follow sets whether to keep reservations to want(), asked under the
// keeper's lock: of two callers that change what want reads, the later
// one decides.
func (k *relayKeeper) follow(want func() bool) {
	k.mu.Lock()
	k.active = want()
	k.mu.Unlock()
	k.poke()
}

func (k *relayKeeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Circuits are the circuit addresses through the relays held.
func (k *relayKeeper) Circuits() []ma.Multiaddr {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.addrs)
}

// Relays lists the relays the node holds a reservation on.
func (k *relayKeeper) Relays() []peer.ID {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]peer.ID, 0, len(k.rsvps))
	for p := range k.rsvps {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// relayCheck is how often the keeper looks at its reservations when
// nothing happens.
const relayCheck = 15 * time.Second

// Serve keeps the reservations until ctx ends.
func (k *relayKeeper) Serve(ctx context.Context) {
	defer k.emit.Close()
	sub, err := k.h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.Name("irmv relays"))
	if err != nil {
		k.log.Error("Relay reservations stopped", "err", err)
		return
	}
	// Act when a relay drops, or when a bootstrap node comes back while
	// slots are missing.
	events, done := watchConnectedness(ctx, sub, func(ev event.EvtPeerConnectednessChanged) bool {
		up := ev.Connectedness == network.Connected
		k.mu.Lock()
		defer k.mu.Unlock()
		_, ours := k.rsvps[ev.Peer]
		short := k.active && len(k.rsvps) < wantRelays
		isBoot := slices.ContainsFunc(k.boot, func(ai peer.AddrInfo) bool { return ai.ID == ev.Peer })
		if up && short && isBoot {
			delete(k.backoff, ev.Peer)
		}
		return (ours && !up) || (up && short && isBoot)
	})
	defer func() { sub.Close(); <-done }()
	tick := time.NewTicker(relayCheck)
	defer tick.Stop()
	for {
		k.step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-k.wake:
		case <-tick.C:
		case <-events:
		}
	}
}

// step drops reservations whose relay went away, renews those close to
// expiry, reserves on new relays until there are wantRelays, and
// announces the circuit addresses if they changed.
func (k *relayKeeper) step(ctx context.Context) {
	k.mu.Lock()
	active := k.active
	for p := range k.rsvps {
		if !active || k.h.Network().Connectedness(p) != network.Connected {
			if active {
				k.log.Info("Relay lost", "relay", p)
			}
			delete(k.rsvps, p)
			k.h.ConnManager().Unprotect(p, relayTag)
		}
	}
	var renew []peer.ID
	for p, r := range k.rsvps {
		if time.Until(r.Expiration) < renewBefore {
			renew = append(renew, p)
		}
	}
	k.mu.Unlock()
	if active {
		for _, p := range renew {
			k.reserve(ctx, peer.AddrInfo{ID: p})
		}
		for _, ai := range k.candidates() {
			k.mu.Lock()
			enough := len(k.rsvps) >= wantRelays
			k.mu.Unlock()
			if enough || ctx.Err() != nil {
				break
			}
			k.reserve(ctx, ai)
		}
	}
	k.announce()
}

// renewBefore renews a reservation this long before it expires (libp2p
// relays grant an hour).
const renewBefore = 10 * time.Minute

// candidates are the relays to try, best first: bootstrap nodes, then
// connected nodes that offer the relay service; none already held or
// backing off.
func (k *relayKeeper) candidates() []peer.AddrInfo {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	skip := func(p peer.ID) bool {
		_, held := k.rsvps[p]
		return held || now.Before(k.backoff[p].until) || p == k.h.ID()
	}
	var out []peer.AddrInfo
	seen := map[peer.ID]bool{}
	for _, ai := range k.boot {
		if !skip(ai.ID) && !seen[ai.ID] {
			out = append(out, ai)
			seen[ai.ID] = true
		}
	}
	for _, p := range k.h.Network().Peers() {
		if skip(p) || seen[p] {
			continue
		}
		if ok, _ := k.h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); len(ok) > 0 {
			out = append(out, peer.AddrInfo{ID: p})
			seen[p] = true
		}
	}
	return out
}

func (k *relayKeeper) reserve(ctx context.Context, ai peer.AddrInfo) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	bh := &boundHost{Host: k.h}
	r, err := circuit.Reserve(cctx, bh, ai)
	bh.release()
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.pruneBackoffLocked(time.Now())
		b := k.backoff[ai.ID]
		b.wait = min(max(2*b.wait, 5*time.Second), relayBackoffMax)
		b.until = time.Now().Add(b.wait)
		k.backoff[ai.ID] = b
		if _, held := k.rsvps[ai.ID]; held {
			delete(k.rsvps, ai.ID)
			k.h.ConnManager().Unprotect(ai.ID, relayTag)
		}
		k.log.Debug("Relay reservation failed", "relay", ai.ID, "err", err)
		return
	}
	delete(k.backoff, ai.ID)
	if _, held := k.rsvps[ai.ID]; !held {
		k.log.Info("Reserved a relay slot", "relay", ai.ID, "expires", r.Expiration.Format(time.RFC3339))
	}
	k.rsvps[ai.ID] = r
	k.h.ConnManager().Protect(ai.ID, relayTag)
}

// announce emits the circuit addresses through the relays held, those
// this node's peers could use to reach the relay.
func (k *relayKeeper) announce() {
	k.mu.Lock()
	var addrs []ma.Multiaddr
	for _, r := range k.rsvps {
		for _, a := range r.Addrs {
			if k.policy.Usable(a) {
				addrs = append(addrs, a.Encapsulate(ma.StringCast("/p2p-circuit")))
			}
		}
	}
	slices.SortFunc(addrs, ma.Multiaddr.Compare)
	changed := !slices.EqualFunc(addrs, k.addrs, ma.Multiaddr.Equal)
	k.addrs = addrs
	k.mu.Unlock()
	if changed {
		k.emit.Emit(event.EvtAutoRelayAddrsUpdated{RelayAddrs: slices.Clone(addrs)})
	}
}

// boundHost bounds the streams it opens by the context they are opened
// with: circuit.Reserve bounds its request only by its own ReserveTimeout
// (a minute), so a relay that takes the request and never answers held
// the keeper, and Close, that long.
type boundHost struct {
	host.Host
	stops []func() bool // Reserve opens its one stream synchronously
}

func (h *boundHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := h.Host.NewStream(ctx, p, pids...)
	if err == nil {
		h.stops = append(h.stops, context.AfterFunc(ctx, func() { s.Reset() }))
	}
	return s, err
}

// release forgets the streams: they are done with.
func (h *boundHost) release() {
	for _, stop := range h.stops {
		stop()
	}
}
