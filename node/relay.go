package node

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/call/turn/grant"
)

// A node's TURN relay serves terminals in other homes only at an address
// they can reach. A node whose relay has a public address (or the one
// given with --turn-relay-ip) lends it to the terminals of other nodes
// (call/turn/grant); a node whose relay has a private one borrows a
// public node's for its own terminals and for the other side of their
// calls. Both terminals of a call then meet on one public relay, the
// only place a borrowed credential may relay to, and get
// server-reflexive candidates from its STUN server, so that ICE can
// punch through their NATs where they allow it.

// relayIsPublic says whether ip, the address the node's relayed
// candidates carry, is reachable from other homes: a public address, or
// any address the operator named with --turn-relay-ip.
func (n *Node) relayIsPublic(ip net.IP) bool {
	return n.opts.TURNRelayIP != nil || isPublicIP(ip)
}

func isPublicIP(ip net.IP) bool {
	a, err := manet.FromIP(ip)
	return err == nil && manet.IsPublicAddr(a)
}

// lender serves grants of the node's relay while it has a public address.
type lender struct {
	mu  sync.Mutex
	srv *grant.Server // nil: not lending
}

// lendRelay serves grants of the node's relay to other nodes, from the
// first call on.
func (n *Node) lendRelay() {
	n.lend.mu.Lock()
	defer n.lend.mu.Unlock()
	if n.lend.srv != nil {
		return
	}
	n.lend.srv = grant.Serve(n.host, func(user string) []signal.ICEServer {
		return n.turn.ICEServers(user, grantTTL)
	}, turn.ForeignPrefix, n.log)
}

// stopLending stops serving grants (the relay lost its public address).
// Identify tells the connected nodes that the protocol is gone, and those
// that borrowed from us borrow elsewhere (borrowedRelay).
func (n *Node) stopLending() {
	n.lend.mu.Lock()
	defer n.lend.mu.Unlock()
	if n.lend.srv != nil {
		n.lend.srv.Close()
		n.lend.srv = nil
		n.log.Info("TURN relay no longer lent to other nodes")
	}
}

// grantTTL is how long lent credentials last: the borrower hands them on
// for borrowFresh and its terminals get new ones every iceRefresh, and a
// call set up in time outlives them (call/turn refreshes allocations past
// the expiry). The relay's quota counts allocations, not grants.
const grantTTL = 30 * time.Minute

// borrowed is a public node's relay lent to this node.
type borrowed struct {
	mu      sync.Mutex
	from    peer.ID
	servers []signal.ICEServer
	at      time.Time
	waited  bool      // for the bootstrap nodes' identify, once
	failed  time.Time // when every lender asked last failed
}

// borrowFresh is how long a borrowed credential is handed on for new
// calls: well within its TTL (grantTTL), so that a terminal that got it
// just before its next refresh (iceRefresh) can still set up a call.
const borrowFresh = 10 * time.Minute

// borrowWait bounds how long a welcome or invite waits for a grant.
const borrowWait = 2 * time.Second

// borrowRetry is how long after every lender failed the node asks again:
// until then welcomes, invites and accepts go without waiting (else each
// waited borrowWait for a lender that does not answer, one after the
// other).
const borrowRetry = 10 * time.Second

// borrowedRelay is a public node's STUN/TURN for this node's terminals and
// their peers, nil if the node's own relay is public or no connected
// node lends one.
func (n *Node) borrowedRelay() []signal.ICEServer {
	b := n.borrow.Load()
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	connected := b.from != "" && len(n.host.Network().ConnsToPeer(b.from)) > 0
	if b.servers != nil && connected && n.lends(b.from) && time.Since(b.at) < borrowFresh {
		return b.servers
	}
	if time.Since(b.failed) < borrowRetry {
		return b.servers
	}
	ctx, cancel := context.WithTimeout(n.ctx, borrowWait)
	defer cancel()
	lenders := n.lenders()
	// Just started (once): the bootstrap nodes may not have told yet
	// (identify) whether they lend.
	for !b.waited && len(lenders) == 0 && n.bootUnidentified() && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		lenders = n.lenders()
	}
	b.waited = true
	for _, p := range lenders {
		servers, err := grant.Fetch(ctx, n.host, p)
		if err != nil {
			n.log.Debug("Borrowing a TURN relay failed", "peer", p, "err", err)
			continue
		}
		if p != b.from {
			n.log.Info("Terminals relay through another node", "peer", p)
		}
		b.from, b.servers, b.at, b.failed = p, servers, time.Now(), time.Time{}
		return servers
	}
	if len(lenders) > 0 {
		b.failed = time.Now()
	}
	// Keep what we had: credentials stay valid while the lender runs.
	return b.servers
}

// lenders are the connected nodes that lend their relay, the bootstrap
// nodes first.
func (n *Node) lenders() []peer.ID {
	var first, rest []peer.ID
	boot := map[peer.ID]bool{}
	for _, ai := range n.boot {
		boot[ai.ID] = true
	}
	for _, p := range n.host.Network().Peers() {
		if !n.lends(p) {
			continue
		}
		if boot[p] {
			first = append(first, p)
		} else {
			rest = append(rest, p)
		}
	}
	return append(first, rest...)
}

// bootUnidentified says whether a bootstrap node has not told its
// protocols yet.
func (n *Node) bootUnidentified() bool {
	for _, ai := range n.boot {
		if ps, _ := n.host.Peerstore().GetProtocols(ai.ID); len(ps) == 0 {
			return true
		}
	}
	return false
}

// lends tells whether peer p says (identify) that it lends its relay; a
// node whose relay lost its public address stops saying so.
func (n *Node) lends(p peer.ID) bool {
	ok, _ := n.host.Peerstore().SupportsProtocols(p, grant.Protocol)
	return len(ok) > 0
}
