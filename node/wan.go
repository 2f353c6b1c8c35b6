package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// A node behind a NAT that forwards to it (a port forward, a 1:1 NAT, a
// DMZ host) is reachable at the NAT's public address, which none of its
// interfaces has. Peers tell the address they see it at (identify's
// observed address); watchWAN asks AutoNAT v2 to have a peer dial that IP
// at the node's TCP listen port, and a confirmed address is announced to
// other nodes and becomes, unless --turn-relay-ip is set, the address of
// the node's TURN relay, which the node then lends to other nodes'
// terminals. It assumes the NAT forwards the TURN ports as it forwards the
// libp2p port (as a 1:1 NAT does); --turn-relay-ip overrides.
//
// The forward can go away (the rule removed, the router replaced, a new
// WAN address). A confirmed address is checked again every
// Options.WANCheck, when the reachability AutoNAT v1 reports changes and
// when a peer sees the node at another public address. Two dial-backs
// that fail in a row (from two peers: AutoNAT v2 asks each peer at most
// every 2 minutes) withdraw it: no longer announced, the relay carries
// its own address again and stops lending, the node borrows a public
// node's relay and keeps relay slots (AutoNAT v1 may still call it
// public for a while). A checker that cannot be asked or refuses
// proves nothing and changes nothing. IPv4 only: an IPv6 node's global
// address is on its interface, announced already, and needs no NAT to be
// discovered.

// DefaultWANCheck is how often a confirmed public address is checked
// again (Options.WANCheck's default).
const DefaultWANCheck = 5 * time.Minute

// MinWANCheck is the shortest Options.WANCheck: a check that finds no peer
// to ask (AutoNAT v2 asks each at most every 2 minutes) is over at once,
// and a shorter interval would spin.
const MinWANCheck = time.Second

// wanRetry is how long an observed IP that could not be confirmed (or
// was withdrawn) waits before it is tried again, at most Options.WANCheck.
const wanRetry = 2 * time.Minute

// wanProbeTimeout bounds one AutoNAT v2 check.
const wanProbeTimeout = 30 * time.Second

// wanMisses is how many failed dial-backs in a row withdraw the address;
// wanMissRetry how soon the next check follows a failed one.
const (
	wanMisses    = 2
	wanMissRetry = 5 * time.Second
)

// WANAddr is the public address at which AutoNAT v2 confirmed that a NAT
// forwards to this node, nil if none.
func (n *Node) WANAddr() ma.Multiaddr {
	if a := n.wan.Load(); a != nil {
		return *a
	}
	return nil
}

// wanState is watchWAN's own: what it confirmed and what it saw.
type wanState struct {
	last   ma.Multiaddr         // the latest candidate peers saw; nil: none
	tried  map[string]time.Time // when each candidate was last tried
	misses int                  // failed dial-backs of the confirmed address in a row
}

// wanTried bounds wanState.tried: peers may tell any address.
const wanTried = 64

// note records that cand is tried now, forgetting the tries older than
// retry when there are too many, and the oldest when all are recent (a
// peer telling a new address on every connection).
func (st *wanState) note(cand ma.Multiaddr, retry time.Duration) {
	if len(st.tried) >= wanTried {
		oldest, at := "", time.Time{}
		for k, t := range st.tried {
			if time.Since(t) >= retry {
				delete(st.tried, k)
			} else if oldest == "" || t.Before(at) {
				oldest, at = k, t
			}
		}
		if len(st.tried) >= wanTried {
			delete(st.tried, oldest)
		}
	}
	st.tried[cand.String()] = time.Now()
}

// wanPending bounds the candidates waiting for watchWAN's loop: peers may
// tell any address, and each one kept costs a check.
const wanPending = 8

// wanInbox is what watchWAN's events ask of its loop, taken from the event
// bus at once: libp2p's emitters wait for a subscriber whose buffer is
// full (identify, for every peer), and one check can take
// wanProbeTimeout (a peer that never answers it).
type wanInbox struct {
	mu    sync.Mutex
	cands []ma.Multiaddr // distinct candidates seen, oldest first
	reach bool           // the reachability changed
	wake  chan struct{}  // one token: something to take
}

func newWANInbox() *wanInbox { return &wanInbox{wake: make(chan struct{}, 1)} }

// candidate keeps cand for the loop; beyond wanPending the oldest goes
// (peers tell their observed address again on every connection).
func (in *wanInbox) candidate(cand ma.Multiaddr) {
	in.mu.Lock()
	in.cands = slices.DeleteFunc(in.cands, cand.Equal)
	if len(in.cands) >= wanPending {
		in.cands = slices.Delete(in.cands, 0, len(in.cands)-wanPending+1)
	}
	in.cands = append(in.cands, cand)
	in.mu.Unlock()
	in.poke()
}

func (in *wanInbox) reachabilityChanged() {
	in.mu.Lock()
	in.reach = true
	in.mu.Unlock()
	in.poke()
}

func (in *wanInbox) poke() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// take returns and forgets what is waiting.
func (in *wanInbox) take() ([]ma.Multiaddr, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	cands, reach := in.cands, in.reach
	in.cands, in.reach = nil, false
	return cands, reach
}

// watchWAN follows identify's observed addresses and confirms a public one
// (see above), once servicesUp is closed (the TURN relay exists), and
// checks it again. It does nothing for a node without AutoNAT v2
// (Reachability private).
func (n *Node) watchWAN(ctx context.Context, servicesUp <-chan struct{}) error {
	if n.an2 == nil {
		return nil
	}
	sub, err := n.host.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtLocalReachabilityChanged)},
		eventbus.Name("irmv wan"), eventbus.BufSize(128))
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	in := newWANInbox()
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				switch ev := e.(type) {
				case event.EvtPeerIdentificationCompleted:
					if cand := n.wanCandidate(ev.ObservedAddr); cand != nil {
						in.candidate(cand)
					}
				case event.EvtLocalReachabilityChanged:
					in.reachabilityChanged()
				}
			}
		}
	}()
	go func() {
		defer n.wg.Done()
		select {
		case <-servicesUp: // the inbox keeps what came meanwhile
		case <-ctx.Done():
			return
		}
		st := &wanState{tried: map[string]time.Time{}}
		check := time.NewTimer(n.opts.WANCheck)
		defer check.Stop()
		for {
			recheck := false
			select {
			case <-ctx.Done():
				return
			case <-check.C:
				recheck = true
			case <-in.wake:
				cands, reach := in.take()
				recheck = reach && n.WANAddr() != nil
				for _, cand := range cands {
					if ctx.Err() != nil {
						return
					}
					st.last = cand
					cur := n.WANAddr()
					if cur != nil && cur.Equal(cand) || time.Since(st.tried[cand.String()]) < n.wanRetry() {
						continue
					}
					st.note(cand, n.wanRetry())
					if n.probeWAN(ctx, cand) == network.ReachabilityPublic {
						n.confirmWAN(cand)
						st.misses = 0
						continue
					}
					// Seen elsewhere, and not reachable there: is the
					// confirmed address still?
					recheck = recheck || cur != nil
				}
			}
			if !recheck {
				continue
			}
			if !check.Stop() {
				select {
				case <-check.C:
				default:
				}
			}
			check.Reset(n.recheckWAN(ctx, st))
		}
	}()
	return nil
}

// recheckWAN checks the confirmed address again, or without one tries the
// latest candidate anew (the forward may be back); it returns when to
// check next.
func (n *Node) recheckWAN(ctx context.Context, st *wanState) time.Duration {
	cur := n.WANAddr()
	if cur == nil {
		if st.last != nil && time.Since(st.tried[st.last.String()]) >= n.wanRetry() {
			st.tried[st.last.String()] = time.Now()
			if n.probeWAN(ctx, st.last) == network.ReachabilityPublic {
				n.confirmWAN(st.last)
				st.misses = 0
			}
		}
		return n.opts.WANCheck
	}
	switch n.probeWAN(ctx, cur) {
	case network.ReachabilityPublic:
		st.misses = 0
	case network.ReachabilityPrivate:
		if st.misses++; st.misses >= wanMisses {
			st.misses = 0
			st.tried[cur.String()] = time.Now()
			n.withdrawWAN(cur)
			return n.opts.WANCheck
		}
		return min(wanMissRetry, n.opts.WANCheck)
	}
	return n.opts.WANCheck
}

func (n *Node) wanRetry() time.Duration { return min(wanRetry, n.opts.WANCheck) }

// probeWAN asks AutoNAT v2 whether a peer can dial a: public (it did),
// private (it could not) or unknown (no peer to ask, or it refused).
func (n *Node) probeWAN(ctx context.Context, a ma.Multiaddr) network.Reachability {
	pctx, cancel := context.WithTimeout(ctx, wanProbeTimeout)
	defer cancel()
	res, err := n.an2.GetReachability(pctx, []autonatv2.Request{{Addr: a, SendDialData: true}})
	switch {
	case err != nil:
		lvl := "Public address not checked"
		if errors.Is(err, autonatv2.ErrNoPeers) {
			lvl = "Public address not checked: no peer to ask now"
		}
		n.log.Debug(lvl, "addr", a, "err", err)
		return network.ReachabilityUnknown
	case res.AllAddrsRefused:
		n.log.Debug("Public address not checked: the peer refused", "addr", a)
		return network.ReachabilityUnknown
	}
	n.log.Debug("Public address checked", "addr", a, "reachability", reachabilityOf(res.Reachability))
	return res.Reachability
}

// wanCandidate is the address to check for an observed one: its IP, if
// public IPv4 and no interface of this machine has a public IPv4
// address, at the node's TCP listen port; nil otherwise. A global IPv6
// address on an interface (dual stack) does not stop it.
func (n *Node) wanCandidate(observed ma.Multiaddr) ma.Multiaddr {
	if observed == nil || !manet.IsPublicAddr(observed) {
		return nil
	}
	ip, err := manet.ToIP(observed)
	if err != nil || ip.To4() == nil || n.policy.hasPublicIPv4() {
		return nil
	}
	for _, l := range n.host.Network().ListenAddresses() {
		port, err := l.ValueForProtocol(ma.P_TCP)
		if err != nil || manet.IsIPLoopback(l) {
			continue
		}
		if _, err := l.ValueForProtocol(ma.P_IP4); err != nil {
			continue
		}
		a, err := ma.NewMultiaddr("/ip4/" + ip.String() + "/tcp/" + port)
		if err == nil {
			return a
		}
	}
	return nil
}

// confirmWAN takes a as the node's public address: announced, and the
// address of its TURN relay (lent to other nodes from then on) unless the
// operator named one. It replaces an address confirmed before.
func (n *Node) confirmWAN(a ma.Multiaddr) {
	old := n.wan.Swap(&a)
	n.policy.lost.Store(nil)
	n.policy.wan.Store(&a)
	if old != nil {
		n.log.Info("Public address changed (NAT forwarding to this node)", "addr", a, "was", *old)
	} else {
		n.log.Info("Public address confirmed (NAT forwarding to this node)", "addr", a)
	}
	n.wanLost.Store(false)
	n.relays.follow(n.wantRelaySlots)
	ip, _ := manet.ToIP(a)
	if n.turn == nil || n.opts.TURNRelayIP != nil || ip == nil {
		return
	}
	n.turn.SetPublicIP(ip)
	n.lendRelay()
	n.borrow.Store(nil) // our own relay is public now
	n.calls.RefreshICE()
}

// withdrawWAN gives up a, which peers could no longer dial: no longer
// announced, the TURN relay back on its own address and no longer lent,
// a public node's relay borrowed again, relay slots kept.
func (n *Node) withdrawWAN(a ma.Multiaddr) {
	n.wan.Store(nil)
	n.policy.wan.Store(nil)
	n.policy.lost.Store(&a)
	n.log.Info("Public address withdrawn (NAT no longer forwards to this node)", "addr", a)
	n.wanLost.Store(true)
	n.relays.follow(n.wantRelaySlots)
	if n.turn == nil || n.opts.TURNRelayIP != nil {
		return
	}
	n.turn.SetPublicIP(nil)
	if !n.relayIsPublic(n.turn.PublicIP()) {
		n.stopLending()
		n.borrow.Store(&borrowed{})
		// Their welcome said our relay is public: a callee behind our
		// NAT would not take the caller's node's relay (call/phone).
		n.calls.RefreshICE()
	}
}

// turnRelayIP is the address the node's relayed candidates carry, "" with
// no relay.
func (n *Node) turnRelayIP() string {
	if n.turn == nil {
		return ""
	}
	return net.IP.String(n.turn.PublicIP())
}
