package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/call/turn/portcheck"
)

// A node behind a NAT that forwards to it (a port forward, a 1:1 NAT, a
// DMZ host) is reachable at the NAT's public address, which none of its
// interfaces has. Peers tell the address they see it at (identify's
// observed address); once peers in two distinct networks tell the same
// one (wanSightings), watchWAN asks AutoNAT v2 to have a peer dial that IP
// at the node's TCP listen port, and a confirmed address is announced to
// other nodes. It becomes the address of the node's TURN relay, which
// the node then lends to other nodes' terminals, only once another node
// got an answer from the relay's listening port there and a datagram
// from it reached a relayed port there (call/turn/portcheck: the node
// allocates on its own relay, so the port is one of --turn-ports, which a
// NAT that forwards only the listening port does not forward; up to
// turnCheckPeers nodes with a direct connection are asked, those that see
// this node at a public address first, and only one that saw it at the
// confirmed address counts); until then, and at each later check of the
// address again, the relay keeps its own address (logged at info once).
// Lent, the relay's ports are checked again at every check of the
// address (below) and whenever the address changes; the relay goes back
// to its own address and stops lending when checkers in wanMisses
// distinct networks saw the node at the address and failed to reach a
// port, with no success in between (as for the address itself).
// --turn-relay-ip overrides it all.
//
// The forward can go away (the rule removed, the router replaced, a new
// WAN address). A confirmed address is checked again every
// Options.WANCheck (±20 %, so that nodes started together do not check
// together), when the reachability AutoNAT v1 reports changes and
// when a peer sees the node at another public address. It is withdrawn
// only when checkers in wanMisses distinct networks failed to dial it
// back with no successful dial-back in between (wanVotes): a network is
// the /16 of the checker's IPv4 address or the /32 of its IPv6 address,
// as this node's connection to the checker shows it (for a relayed
// connection, the relay's address). One broken or lying checker, or any
// number of them in one network, cannot withdraw it, and one successful
// dial-back from any checker keeps it. While a withdrawal is pending the
// next check follows within wanMissRetry, and it skips the checkers in a
// network that failed already (AutoNAT v2 picks the checker at random
// and asks each at most every 2 minutes: without the skip, a second
// network's checker could come up only minutes later); if it finds no
// other checker, the next asks any, so that one of a failed network can
// still keep the address. A checker that
// cannot be asked or refuses proves nothing and changes nothing.
// Withdrawn, the address is no longer announced, the relay carries its
// own address again and stops lending, the node borrows a public node's
// relay and keeps relay slots, and, where AutoNAT v1 still says public
// (it checks a public node again only every 15 minutes or more) or has
// not said yet (--reachability auto), the node takes itself for private
// at once, next to AutoNAT v1's event: the DHT runs as a client and
// the relay service stops, until the address is confirmed again. IPv4
// only: an IPv6 node's global address is on its interface, announced
// already, and needs no NAT to be discovered.

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

// wanMisses is how many distinct networks' checkers must fail to dial
// the address back, with no success in between, to withdraw it;
// wanMissRetry how soon the next check follows while a withdrawal is
// pending.
const (
	wanMisses    = 2
	wanMissRetry = time.Second
)

// wanSkips bounds the checkers one check skips (the network failed
// already) before it gives up until the next.
const wanSkips = 16

// jitter is d ±20 %.
func jitter(d time.Duration) time.Duration {
	return d*8/10 + rand.N(d*4/10+1)
}

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
	votes  wanVotes             // the dial-backs of the confirmed address
	askAny bool                 // the next check asks checkers of failed networks too
	force  event.Emitter        // of the reachability the withdrawal implies
	forced bool                 // it said private (withdrawn), and not public since
	// The public address at which the TURN ports answered (nil: none yet),
	// whether the ports' failure was logged at info, and the checks of
	// the ports that failed since the last success there.
	turnAt    net.IP
	turnTold  bool
	turnVotes wanVotes
}

// wanVotes is what the dial-backs of the confirmed address said since
// the last successful one: the networks (checkerNet) of the checkers
// that could not dial it, at most wanMisses.
type wanVotes struct {
	failed []string
}

// add takes one dial-back's result, from a checker in network from ("":
// not known), and tells whether the address is to be withdrawn now.
func (v *wanVotes) add(r network.Reachability, from string) bool {
	switch r {
	case network.ReachabilityPublic:
		v.failed = nil
	case network.ReachabilityPrivate:
		if from == "" || slices.Contains(v.failed, from) {
			return false
		}
		v.failed = append(v.failed, from)
		if len(v.failed) >= wanMisses {
			return true
		}
	}
	return false
}

// pending tells whether a checker failed since the last success.
func (v *wanVotes) pending() bool { return len(v.failed) > 0 }

// checkerNet is the network a checker dials from, for the withdrawal
// rule: "v4:" and the /16 of an IPv4 address, "v6:" and the /32 of an
// IPv6 address, of the first component of remote, the address this
// node's connection to it comes from (for a relayed connection, the
// relay's); "" for anything else.
func checkerNet(remote ma.Multiaddr) string {
	if len(remote) == 0 {
		return ""
	}
	c := remote[0]
	ip := net.IP(c.RawValue())
	if (c.Code() != ma.P_IP4 || len(ip) != net.IPv4len) && (c.Code() != ma.P_IP6 || len(ip) != net.IPv6len) {
		return ""
	}
	if v4 := ip.To4(); v4 != nil { // IPv4, or IPv4-mapped IPv6
		return "v4:" + v4.Mask(net.CIDRMask(16, 32)).String() + "/16"
	}
	return "v6:" + ip.Mask(net.CIDRMask(32, 128)).String() + "/32"
}

// checkerHost is the host AutoNAT v2 asks its checkers through: a
// check's context may carry a *wanChecker, which learns whom it asked.
type checkerHost struct{ host.Host }

type checkerKey struct{}

// wanChecker is the peer an AutoNAT v2 check went to.
type wanChecker struct {
	peer peer.ID
	addr ma.Multiaddr // the remote address of the connection asked over
	skip []string     // networks (checkerNet) not to ask in
}

// errSkipped is a check not sent: the checker's network failed already.
var errSkipped = errors.New("checker's network failed already")

func (h checkerHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if c, ok := ctx.Value(checkerKey{}).(*wanChecker); ok && len(c.skip) > 0 {
		for _, conn := range h.Network().ConnsToPeer(p) {
			// The check goes over a direct connection (none: it fails).
			if !conn.Stat().Limited && slices.Contains(c.skip, checkerNet(conn.RemoteMultiaddr())) {
				return nil, errSkipped
			}
		}
	}
	s, err := h.Host.NewStream(ctx, p, pids...)
	if c, ok := ctx.Value(checkerKey{}).(*wanChecker); ok && err == nil {
		c.peer, c.addr = p, s.Conn().RemoteMultiaddr()
	}
	return s, err
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

// wanSightings decides which observed addresses become candidates: one
// that peers in wanMisses distinct networks (checkerNet) report as their
// latest sighting. A peer's observed address is its word alone, and
// AutoNAT v2's dial-back proves only that something answered in the
// protocol's shape, so a peer (or any number of them in one network)
// could otherwise have the node check, confirm and announce an address
// of its choosing, and lend its TURN relay there. Each network has one
// say: its latest sighting; wanNets networks are remembered, and a full
// table forgets one at random.
type wanSightings struct {
	latest map[string]string // network → latest candidate seen by a peer in it
}

// wanNets bounds wanSightings: an attacker needs an address in each
// network it fills the table with.
const wanNets = 256

func newWANSightings() *wanSightings { return &wanSightings{latest: map[string]string{}} }

// add notes that a peer in network net saw cand, and reports whether
// peers in wanMisses distinct networks now see it there.
func (s *wanSightings) add(net string, cand ma.Multiaddr) bool {
	if net == "" {
		return false
	}
	key := cand.String()
	if _, ok := s.latest[net]; !ok && len(s.latest) >= wanNets {
		for k := range s.latest { // map order: a random one
			delete(s.latest, k)
			break
		}
	}
	s.latest[net] = key
	agree := 0
	for _, c := range s.latest {
		if c == key {
			agree++
		}
	}
	return agree >= wanMisses
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
	// Of the reachability a withdrawal implies (the node's own say, next
	// to AutoNAT v1's).
	force, err := n.host.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
	if err != nil {
		sub.Close()
		return fmt.Errorf("wan: %w", err)
	}
	in := newWANInbox()
	seen := newWANSightings()
	n.wanAssume = make(chan ma.Multiaddr, 1)
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
					if ev.Conn == nil || ev.Conn.Stat().Limited {
						continue // a relayed connection: its observer sees the circuit
					}
					if cand := n.wanCandidate(ev.ObservedAddr); cand != nil && seen.add(checkerNet(ev.Conn.RemoteMultiaddr()), cand) {
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
		defer force.Close()
		select {
		case <-servicesUp: // the inbox keeps what came meanwhile
		case <-ctx.Done():
			return
		}
		st := &wanState{tried: map[string]time.Time{}, force: force}
		check := time.NewTimer(jitter(n.opts.WANCheck))
		defer check.Stop()
		for {
			recheck := false
			select {
			case <-ctx.Done():
				return
			case <-check.C:
				recheck = true
			case a := <-n.wanAssume: // tests only
				n.confirmWAN(ctx, st, a)
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
					if r, _ := n.probeWAN(ctx, cand, nil); r == network.ReachabilityPublic {
						n.confirmWAN(ctx, st, cand)
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
			check.Reset(jitter(n.recheckWAN(ctx, st)))
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
			if r, _ := n.probeWAN(ctx, st.last, nil); r == network.ReachabilityPublic {
				n.confirmWAN(ctx, st, st.last)
			}
		}
		return n.opts.WANCheck
	}
	anyNet := st.askAny
	skip := st.votes.failed
	if anyNet {
		skip = nil
	}
	r, from := n.probeWAN(ctx, cur, skip)
	st.askAny = false
	if st.votes.add(r, from) {
		st.tried[cur.String()] = time.Now()
		n.withdrawWAN(st, cur)
		return n.opts.WANCheck
	}
	if st.votes.pending() && (r != network.ReachabilityUnknown || !anyNet) {
		// Another check soon, skipping the failed networks; or, if this
		// one found no checker elsewhere, asking any (one in a failed
		// network may succeed and keep the address). Found none at all:
		// on at the usual pace.
		st.askAny = r == network.ReachabilityUnknown
		return min(wanMissRetry, n.opts.WANCheck)
	}
	n.turnAtWAN(ctx, st)
	return n.opts.WANCheck
}

func (n *Node) wanRetry() time.Duration { return min(wanRetry, n.opts.WANCheck) }

// probeWAN asks AutoNAT v2 whether a peer can dial a: public (it did),
// private (it could not) or unknown (no peer to ask, or it refused); and
// the network the peer asked is in (checkerNet).
func (n *Node) probeWAN(ctx context.Context, a ma.Multiaddr, skip []string) (network.Reachability, string) {
	who := wanChecker{skip: skip}
	pctx, cancel := context.WithTimeout(context.WithValue(ctx, checkerKey{}, &who), wanProbeTimeout)
	defer cancel()
	var res autonatv2.Result
	var err error
	for range wanSkips {
		// Each peer picked is not picked again for 2 minutes: a skip
		// moves on to another.
		if res, err = n.an2.GetReachability(pctx, []autonatv2.Request{{Addr: a, SendDialData: true}}); !errors.Is(err, errSkipped) {
			break
		}
	}
	switch {
	case err != nil:
		lvl := "Public address not checked"
		if errors.Is(err, autonatv2.ErrNoPeers) {
			lvl = "Public address not checked: no peer to ask now"
		}
		n.log.Debug(lvl, "addr", a, "err", err)
		return network.ReachabilityUnknown, ""
	case res.AllAddrsRefused:
		n.log.Debug("Public address not checked: the peer refused", "addr", a, "peer", who.peer)
		return network.ReachabilityUnknown, ""
	}
	from := checkerNet(who.addr)
	n.log.Debug("Public address checked", "addr", a, "reachability", reachabilityOf(res.Reachability),
		"peer", who.peer, "net", from)
	return res.Reachability, from
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
func (n *Node) confirmWAN(ctx context.Context, st *wanState, a ma.Multiaddr) {
	st.votes = wanVotes{}
	if st.forced {
		st.forced = false
		n.log.Info("Reachability taken for public again: public address confirmed")
		st.force.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic})
	}
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
	st.turnTold = false
	st.turnVotes = wanVotes{}
	n.turnAtWAN(ctx, st)
}

// turnAtWAN makes the confirmed public address the TURN relay's, and
// lends the relay, once another node reached the relay's ports there
// (checkTURNPort); until then the relay keeps its own address, and each
// check of the public address tries again. Lent, it checks the ports
// again, and takes the relay back to its own address when checkers in
// wanMisses networks failed since the last success. Nothing to do
// without a relay or with --turn-relay-ip.
func (n *Node) turnAtWAN(ctx context.Context, st *wanState) {
	a := n.WANAddr()
	ip, _ := manet.ToIP(a)
	if n.turn == nil || n.opts.TURNRelayIP != nil || ip == nil {
		return
	}
	lent := ip.Equal(st.turnAt)
	ok := n.checkTURNPort(ctx, ip, st, lent)
	switch {
	case ok:
		st.turnVotes = wanVotes{}
		if lent {
			return
		}
		st.turnAt = ip
		n.turn.SetPublicIP(ip)
		n.lendRelay()
		n.borrow.Store(nil) // our own relay is public now
		n.calls.RefreshICE()
	case !lent:
		n.relayOwnAddr(st)
	case len(st.turnVotes.failed) >= wanMisses:
		n.log.Info("TURN relay withdrawn from the public address (its ports no longer answer there)", "ip", ip,
			"failed_from", st.turnVotes.failed)
		st.turnVotes = wanVotes{}
		st.turnTold = true
		n.relayOwnAddr(st)
	}
}

// turnCheckPeers bounds the nodes asked to check the TURN ports at a
// time; turnCheckTimeout bounds each.
const (
	turnCheckPeers   = 3
	turnCheckTimeout = portcheck.Wait + portcheck.RelayWait + 5*time.Second
)

// checkTURNPort asks other nodes (portcheck) whether the relay's
// listening port answers at wan, the public address, and a relayed port
// of an allocation on the relay is reached there. Only a node that saw
// this one at wan counts; the first that reached both confirms them. A
// node that reached neither or only the listening port is a failure,
// counted in st.turnVotes by its network; a node that cannot be asked,
// refuses or does not send to the relayed port proves nothing. With the
// relay lent, nodes in networks that failed already are not asked, and
// the asking stops once wanMisses networks failed. The first failure to
// lend after a confirmation is logged at info, later ones at debug.
func (n *Node) checkTURNPort(ctx context.Context, wan net.IP, st *wanState, lent bool) bool {
	ua, _ := n.turn.Addr().(*net.UDPAddr)
	if ua == nil || ua.IP.To4() == nil {
		return false // the public address is IPv4
	}
	type checker struct {
		id  peer.ID
		net string
	}
	var peers, later []checker
	for _, p := range n.host.Network().Peers() {
		if ok, _ := n.host.Peerstore().SupportsProtocols(p, portcheck.Protocol); len(ok) == 0 {
			continue
		}
		// Nodes that see this one at a public address first: those on
		// its LAN see it at its private one.
		for _, c := range n.host.Network().ConnsToPeer(p) {
			if c.Stat().Limited || isRelayed(c.RemoteMultiaddr()) {
				continue
			}
			ch := checker{p, checkerNet(c.RemoteMultiaddr())}
			if manet.IsPublicAddr(c.RemoteMultiaddr()) {
				peers = append(peers, ch)
			} else {
				later = append(later, ch)
			}
			break
		}
	}
	// Spread over the checkers: each limits the checks per node.
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	peers = append(peers, later...)
	var alloc *turn.SelfAllocation
	if len(peers) > 0 {
		actx, cancel := context.WithTimeout(ctx, turnCheckTimeout)
		var err error
		alloc, err = n.turn.AllocateSelf(actx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("TURN ports not checked: no allocation on the node's own relay", "err", err)
			}
			return false
		}
		defer alloc.Close()
	}
	asked, saw, noAnswer, noRelay := 0, 0, 0, 0
	for _, p := range peers {
		if asked >= turnCheckPeers || ctx.Err() != nil || lent && len(st.turnVotes.failed) >= wanMisses {
			break
		}
		if lent && slices.Contains(st.turnVotes.failed, p.net) {
			continue
		}
		asked++
		cctx, cancel := context.WithTimeout(ctx, turnCheckTimeout)
		r, err := portcheck.Check(cctx, n.host, p.id, ua.Port, alloc)
		cancel()
		switch {
		case err != nil:
			n.log.Debug("TURN port not checked", "peer", p.id, "err", err)
			continue
		case !r.IP.Equal(wan):
			n.log.Debug("TURN port not checked: the peer sees this node elsewhere", "peer", p.id, "ip", r.IP)
			continue
		case r.Answered && r.Relayed:
			lvl := slog.LevelInfo
			if lent {
				lvl = slog.LevelDebug
			}
			n.log.Log(ctx, lvl, "TURN port answers at the public address", "ip", wan, "port", ua.Port,
				"relay_port", alloc.Port(), "peer", p.id)
			return true
		case r.Answered && !r.Sent:
			n.log.Debug("TURN relayed port not checked: the peer does not send to it", "peer", p.id)
			continue
		case r.Answered:
			noRelay++
		default:
			noAnswer++
		}
		saw++
		st.turnVotes.add(network.ReachabilityPrivate, p.net)
		n.log.Debug("TURN port check failed", "ip", wan, "port", ua.Port, "relay_port", alloc.Port(), "peer", p.id,
			"answered", r.Answered, "net", p.net)
	}
	if lent {
		return false
	}
	why := "no node to ask saw this node at the public address"
	switch {
	case noAnswer > 0:
		why = "no answer from the relay's port there"
	case noRelay > 0:
		why = "the relayed ports (--turn-ports) not reached there"
	}
	lvl := slog.LevelInfo
	if st.turnTold {
		lvl = slog.LevelDebug
	}
	st.turnTold = true
	n.log.Log(ctx, lvl, "TURN relay not lent at the public address (--turn-relay-ip overrides)", "ip", wan, "port", ua.Port,
		"reason", why, "asked", asked, "unanswered", saw)
	return false
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// withdrawWAN gives up a, which peers could no longer dial: no longer
// announced, the TURN relay back on its own address and no longer lent,
// a public node's relay borrowed again, relay slots kept, and the node
// private at once where AutoNAT v1 does not say so yet.
func (n *Node) withdrawWAN(st *wanState, a ma.Multiaddr) {
	nets := st.votes.failed
	st.votes = wanVotes{}
	n.wan.Store(nil)
	n.policy.wan.Store(nil)
	n.policy.lost.Store(&a)
	n.log.Info("Public address withdrawn (NAT no longer forwards to this node)", "addr", a, "failed_from", nets)
	if n.opts.Reachability == ReachAuto && n.Reachability() != ReachPrivate {
		st.forced = true
		n.log.Info("Reachability taken for private: public address withdrawn")
		st.force.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate})
	}
	n.wanLost.Store(true)
	n.relays.follow(n.wantRelaySlots)
	n.relayOwnAddr(st)
}

// relayOwnAddr puts the TURN relay back on its own address, if it was at
// the public one: no longer lent, a public node's relay borrowed again.
func (n *Node) relayOwnAddr(st *wanState) {
	if st.turnAt == nil {
		return
	}
	st.turnAt = nil
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
