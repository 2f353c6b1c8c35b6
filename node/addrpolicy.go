package node

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// addrPolicy decides which addresses of other nodes this node can use and
// which of its own it announces. The rule is relative to where the node
// itself sits, so that it holds on the Internet, on a LAN and in tests on
// 127.0.0.1 alike:
//
//   - a public address is usable;
//   - a relay circuit is usable when its relay's address is;
//   - a private address (RFC 1918, CGNAT, ULA) is usable only inside a
//     subnet of one of this machine's interfaces: another home's
//     192.168.1.0/24 is not ours, even when the numbers match, but it never
//     reaches us, as every node on the way drops it the same way;
//   - loopback is usable only by a node that itself listens on loopback
//     only (tests, or several nodes on one machine), and only such a node
//     announces it;
//   - documentation, benchmarking and reserved ranges likewise only on
//     a link of our own;
//   - link-local, unspecified and multicast addresses never are.
//
// The DHT applies it to the addresses it stores and queries (so no lookup
// waits seconds on a dial to someone else's private network) and the host
// to what it announces. Peers found by mDNS on the LAN bypass it: their
// addresses come from the LAN itself.
type addrPolicy struct {
	// listen reports the node's own listen addresses.
	listen func() []ma.Multiaddr
	// circuits, once set, reports the relay circuits the node holds:
	// announced also while its reachability is unknown (libp2p's host
	// adds them only once it is private).
	circuits atomic.Pointer[func() []ma.Multiaddr]
	// wan, once set, is a public address at which a NAT forwards to the
	// node, confirmed by AutoNAT v2 (wan.go): announced too.
	wan atomic.Pointer[ma.Multiaddr]
	// lost, once set, is such an address that no longer reaches the
	// node: libp2p's own observed addresses at its IP and port (TCP or
	// QUIC) are not announced either.
	lost atomic.Pointer[ma.Multiaddr]

	mu      sync.Mutex
	subnets []*net.IPNet
	at      time.Time
}

// subnetTTL is how long the interface subnets are cached: a DHT response
// is filtered for every peer in it.
const subnetTTL = 10 * time.Second

func (p *addrPolicy) mySubnets() []*net.IPNet {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.subnets == nil || time.Since(p.at) > subnetTTL {
		p.subnets = interfaceSubnets()
		p.at = time.Now()
	}
	return p.subnets
}

// interfaceSubnets lists the subnets of this machine's interfaces.
func interfaceSubnets() []*net.IPNet {
	out := []*net.IPNet{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			out = append(out, ipn)
		}
	}
	return out
}

// loopbackOnly tells whether no direct listen address is beyond
// loopback. A node that listens nowhere (it only dials out, and is
// reached through relays) counts as on loopback: its scope is that of the
// nodes it dials.
func loopbackOnly(listen []ma.Multiaddr) bool {
	for _, a := range listen {
		if !isCircuit(a) && !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// usable applies the policy to one address of another node, for a node
// that listens on loopback only (onLoopback) and has the given subnets.
func usable(a ma.Multiaddr, onLoopback bool, subnets []*net.IPNet) bool {
	if isCircuit(a) {
		// <relay's address>/p2p/<relay>/p2p-circuit[/p2p/<peer>]
		relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
		return len(relay) > 0 && !isCircuit(relay) && usable(relay, onLoopback, subnets)
	}
	ip, err := manet.ToIP(a)
	if err != nil {
		// No IP (/dns…): only the resolver can tell.
		return true
	}
	switch {
	case ip.IsUnspecified(), ip.IsLinkLocalUnicast(), ip.IsMulticast():
		return false
	case ip.IsLoopback():
		return onLoopback
	case manet.IsPublicAddr(a):
		return true
	default:
		// Private (RFC 1918, CGNAT, ULA) and documentation, benchmarking
		// or reserved ranges: usable only on a link of our own (a lab or
		// a testbed may number its LAN from any range).
		return onLink(ip, subnets)
	}
}

// onLink tells whether ip lies in one of the (non-loopback) subnets.
func onLink(ip net.IP, subnets []*net.IPNet) bool {
	for _, n := range subnets {
		if n.Contains(ip) && !n.IP.IsLoopback() {
			return true
		}
	}
	return false
}

// Usable reports whether this node can use address a of another node.
func (p *addrPolicy) Usable(a ma.Multiaddr) bool {
	return usable(a, loopbackOnly(p.listen()), p.mySubnets())
}

// Filter keeps the addresses this node can use (kad-dht's AddressFilter).
func (p *addrPolicy) Filter(addrs []ma.Multiaddr) []ma.Multiaddr {
	onLoopback, subnets := loopbackOnly(p.listen()), p.mySubnets()
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		if usable(a, onLoopback, subnets) {
			out = append(out, a)
		}
	}
	return out
}

// DHTServer tells whether a peer has a direct address this node can use,
// which a DHT server needs (kad-dht's routing table and query filters):
// kad-dht does not speak over relayed connections, so a node reachable
// only through a relay would cost every query a failed dial.
func (p *addrPolicy) DHTServer(ai peer.AddrInfo) bool {
	return slices.ContainsFunc(ai.Addrs, func(a ma.Multiaddr) bool { return !isCircuit(a) && p.Usable(a) })
}

// Announce filters the node's own addresses before they are announced
// (the host's AddrsFactory): no loopback unless the node is on loopback
// only, no link-local. Private addresses stay: peers on the same LAN use
// them, the others drop them.
func (p *addrPolicy) Announce(addrs []ma.Multiaddr) []ma.Multiaddr {
	out := announce(addrs, loopbackOnly(p.listen()))
	if l := p.lost.Load(); l != nil {
		out = slices.DeleteFunc(out, func(a ma.Multiaddr) bool { return sameIPPort(a, *l) })
	}
	if w := p.wan.Load(); w != nil && !slices.ContainsFunc(out, (*w).Equal) {
		out = append(out, *w)
	}
	if c := p.circuits.Load(); c != nil {
		out = append(out, (*c)()...)
	}
	return out
}

// AnnounceTo picks from the node's own announced addresses those that a
// peer reached at remote (the remote addresses of its connections, else
// the addresses this node would dial) can use: all of them for a peer on
// loopback, all but loopback for a peer on one of this machine's subnets,
// only public and relay-circuit addresses for any other. A node behind a
// NAT so tells nodes beyond its LAN nothing of its private network.
// kad-dht refuses a provider record without addresses, so when none is
// left the answer is a bare /p2p-circuit, which names no relay and which
// every receiver drops.
func (p *addrPolicy) AnnounceTo(own, remote []ma.Multiaddr) []ma.Multiaddr {
	subnets := p.mySubnets()
	lan := false
	for _, a := range remote {
		if manet.IsIPLoopback(a) {
			return own
		}
		if ip, err := manet.ToIP(a); err == nil && !manet.IsPublicAddr(a) && onLink(ip, subnets) {
			lan = true
		}
	}
	var out []ma.Multiaddr
	if lan {
		out = slices.DeleteFunc(slices.Clone(own), manet.IsIPLoopback)
	} else {
		out = dialable(own)
	}
	if len(out) == 0 {
		return []ma.Multiaddr{noAddr}
	}
	return out
}

// noAddr is the placeholder of a provider record whose node has no address
// the receiver can use.
var noAddr = ma.StringCast("/p2p-circuit")

// hasPublicIPv4 tells whether one of this machine's interfaces has a
// public IPv4 address: such a node is probably reachable, one without is
// behind a NAT or on a LAN of its own. A global IPv6 address says less:
// a home router gives one to every host on its LAN and, by default,
// firewalls it against connections from outside, while IPv4 goes through
// its NAT.
func (p *addrPolicy) hasPublicIPv4() bool {
	return slices.ContainsFunc(p.mySubnets(), func(n *net.IPNet) bool { return n.IP.To4() != nil && isPublicIP(n.IP) })
}

// sameIPPort tells whether direct address a has the IP of b and its port
// (over TCP or UDP: a NAT forwarding one may forward the other).
func sameIPPort(a, b ma.Multiaddr) bool {
	if isCircuit(a) {
		return false
	}
	ipa, err1 := manet.ToIP(a)
	ipb, err2 := manet.ToIP(b)
	if err1 != nil || err2 != nil || !ipa.Equal(ipb) {
		return false
	}
	return addrPort(a) != "" && addrPort(a) == addrPort(b)
}

func addrPort(a ma.Multiaddr) string {
	if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
		return p
	}
	p, _ := a.ValueForProtocol(ma.P_UDP)
	return p
}

func announce(addrs []ma.Multiaddr, onLoopback bool) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(addrs))
	for _, a := range addrs {
		if isCircuit(a) {
			out = append(out, a)
			continue
		}
		ip, err := manet.ToIP(a)
		if err == nil && (ip.IsUnspecified() || ip.IsLinkLocalUnicast() || (ip.IsLoopback() && !onLoopback)) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// dialable keeps the addresses that peers beyond this machine's networks
// can dial: public ones and relay circuits.
func dialable(addrs []ma.Multiaddr) []ma.Multiaddr {
	return slices.DeleteFunc(slices.Clone(addrs), func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) && !isCircuit(a) })
}
