package node

import (
	"context"
	"fmt"
	"net"
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

// wanRetry is how long an observed IP that could not be confirmed waits
// before it is tried again.
const wanRetry = 2 * time.Minute

// wanProbeTimeout bounds one AutoNAT v2 check.
const wanProbeTimeout = 30 * time.Second

// WANAddr is the public address at which AutoNAT v2 confirmed that a NAT
// forwards to this node, nil if none.
func (n *Node) WANAddr() ma.Multiaddr {
	if a := n.wan.Load(); a != nil {
		return *a
	}
	return nil
}

// watchWAN follows identify's observed addresses and confirms a public one
// (see above), once servicesUp is closed (the TURN relay exists). It does
// nothing for a node without AutoNAT v2 (Reachability private).
func (n *Node) watchWAN(ctx context.Context, servicesUp <-chan struct{}) error {
	an2 := n.an2
	if an2 == nil {
		return nil
	}
	sub, err := n.host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted), eventbus.Name("irmv wan"), eventbus.BufSize(128))
	if err != nil {
		return fmt.Errorf("wan: %w", err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer sub.Close()
		select {
		case <-servicesUp: // the subscription keeps what came meanwhile
		case <-ctx.Done():
			return
		}
		tried := map[string]time.Time{}
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				ev := e.(event.EvtPeerIdentificationCompleted)
				cand := n.wanCandidate(ev.ObservedAddr)
				if cand == nil || n.WANAddr() != nil && n.WANAddr().Equal(cand) || time.Since(tried[cand.String()]) < wanRetry {
					continue
				}
				tried[cand.String()] = time.Now()
				pctx, cancel := context.WithTimeout(ctx, wanProbeTimeout)
				res, err := an2.GetReachability(pctx, []autonatv2.Request{{Addr: cand, SendDialData: true}})
				cancel()
				if err != nil || res.Reachability != network.ReachabilityPublic {
					n.log.Debug("Observed address not confirmed", "addr", cand, "reachability", res.Reachability, "err", err)
					continue
				}
				n.confirmWAN(cand)
			}
		}
	}()
	return nil
}

// wanCandidate is the address to check for an observed one: its IP, if
// public and none of this machine's, at the node's TCP listen port; nil
// otherwise.
func (n *Node) wanCandidate(observed ma.Multiaddr) ma.Multiaddr {
	if observed == nil || !manet.IsPublicAddr(observed) {
		return nil
	}
	ip, err := manet.ToIP(observed)
	if err != nil || ip.To4() == nil || n.policy.hasPublicIP() {
		return nil
	}
	for _, l := range n.host.Network().ListenAddresses() {
		port, err := l.ValueForProtocol(ma.P_TCP)
		if err != nil || manet.IsIPLoopback(l) {
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
// operator named one.
func (n *Node) confirmWAN(a ma.Multiaddr) {
	n.wan.Store(&a)
	n.policy.wan.Store(&a)
	n.log.Info("Public address confirmed (NAT forwarding to this node)", "addr", a)
	ip, _ := manet.ToIP(a)
	if n.turn == nil || n.opts.TURNRelayIP != nil || ip == nil {
		return
	}
	n.turn.SetPublicIP(ip)
	n.lendRelay()
	n.borrow.Store(nil) // our own relay is public now
}

// turnRelayIP is the address the node's relayed candidates carry, "" with
// no relay.
func (n *Node) turnRelayIP() string {
	if n.turn == nil {
		return ""
	}
	return net.IP.String(n.turn.PublicIP())
}
