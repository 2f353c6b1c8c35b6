package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reachability: Options.Reachability takes auto, public or private;
// NodeInfo.Reachability says public, private or unknown.
const (
	ReachAuto    = "auto"
	ReachPublic  = "public"
	ReachPrivate = "private"
	ReachUnknown = "unknown"
)

// Relay limits for relayed node connections. A call's signalling stream
// lives as long as the call and shares the relayed connection with
// lookups and flooding between the same two nodes, so libp2p's defaults (2
// minutes, 128 KiB) would end calls; media never takes this path (it goes
// direct or through TURN), so a day and 32 MiB each way bound what a relay
// carries for one connection without ending any call of a normal length.
const (
	DefaultRelayDuration = 24 * time.Hour
	DefaultRelayData     = 32 << 20
)

// relayResources sizes the circuit relay v2 service: libp2p's limits per
// peer, IP and ASN, irmv's per-connection limits, fewer slots on an
// access point.
func relayResources(o *Options) relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = &relayv2.RelayLimit{Duration: o.RelayDuration, Data: o.RelayData}
	if o.Profile == "ap" {
		r.MaxReservations = 32
		r.MaxCircuits = 8
	}
	return r
}

// reachabilityOf maps libp2p's reachability to the API's words.
func reachabilityOf(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return ReachPublic
	case network.ReachabilityPrivate:
		return ReachPrivate
	default:
		return ReachUnknown
	}
}

// startAutoNAT starts AutoNAT v1 on the host: it asks peers to dial the
// node back and emits the reachability event that the DHT (client when
// private, server otherwise), the relay service (public only) and the
// relay reservations (private only) follow. With Reachability public or
// private it only announces that. A node that may be public also answers
// other nodes' dial-back requests, from dialBack, a swarm of its own with
// a throwaway key (TCP only: enough to tell a NAT); nil: it does not.
func startAutoNAT(bh *basichost.BasicHost, o *Options, dialBack *swarm.Swarm) error {
	opts := []autonat.Option{
		// Only public addresses can prove anything; the basic host's
		// own default would probe loopback and LAN addresses too.
		autonat.UsingAddresses(func() []ma.Multiaddr {
			return slices.DeleteFunc(bh.AllAddrs(), func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
		}),
		// Probe as soon as a peer that can answer is identified, not
		// after libp2p's 15 s start-up delay.
		autonat.WithoutStartupDelay(),
		autonat.WithSchedule(30*time.Second, 15*time.Minute),
	}
	switch o.Reachability {
	case ReachPublic:
		opts = append(opts, autonat.WithReachability(network.ReachabilityPublic))
	case ReachPrivate:
		opts = append(opts, autonat.WithReachability(network.ReachabilityPrivate))
	}
	if dialBack != nil {
		opts = append(opts, autonat.EnableService(dialBack))
	}
	an, err := autonat.New(bh, opts...)
	if err != nil {
		return fmt.Errorf("autonat: %w", err)
	}
	bh.SetAutoNat(an) // the host closes it
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// newDialBackSwarm makes the swarm AutoNAT's service dials back from: its
// own identity and peerstore, so the dial-back cannot reuse a connection.
func newDialBackSwarm(rm network.ResourceManager) (*swarm.Swarm, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	pid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, err
	}
	if err := ps.AddPrivKey(pid, key); err != nil {
		ps.Close()
		return nil, err
	}
	if err := ps.AddPubKey(pid, key.GetPublic()); err != nil {
		ps.Close()
		return nil, err
	}
	sw, err := swarm.NewSwarm(pid, ps, eventbus.NewBus(), swarm.WithResourceManager(rm),
		// Failed dial-backs say nothing about this network (libp2p's
		// setup does the same).
		swarm.WithUDPBlackHoleSuccessCounter(nil), swarm.WithIPv6BlackHoleSuccessCounter(nil))
	if err != nil {
		ps.Close()
		return nil, err
	}
	upg, err := newUpgrader(key, rm)
	if err != nil {
		sw.Close()
		ps.Close()
		return nil, err
	}
	// No port reuse: the dial-back must come from a port the NAT has not
	// seen.
	t, err := tcp.NewTCPTransport(upg, rm, nil, tcp.DisableReuseport())
	if err != nil {
		sw.Close()
		ps.Close()
		return nil, err
	}
	if err := sw.AddTransport(t); err != nil {
		sw.Close()
		ps.Close()
		return nil, err
	}
	return sw, nil
}

// watchReachability logs reachability changes at info, keeps the value
// for the API, starts or stops the relay reservations, and announces the
// hosted terminals again when the addresses others can dial change
// (provider records carry the addresses of the moment: a new relay
// circuit must reach the DHT).
//
// Until AutoNAT has an answer (its dial-back takes up to 15 s to fail
// behind a NAT) the node goes by its interfaces: with a public IPv4
// address (hasPublicIPv4) it takes itself for public (DHT server, relay service at once, e.g. after
// a restart), without one it reserves relay slots already, so that a
// node that just started behind a NAT is reachable within a second; it
// stays a DHT server until AutoNAT says private, since nodes on a LAN of
// their own (or on loopback) have no one else to serve the DHT.
func (n *Node) watchReachability(ctx context.Context) error {
	sub, err := n.host.EventBus().Subscribe([]any{new(event.EvtLocalReachabilityChanged), new(event.EvtLocalAddressesUpdated)}, eventbus.Name("irmv reachability"))
	if err != nil {
		return fmt.Errorf("reachability: %w", err)
	}
	guess, err := n.host.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
	if err != nil {
		sub.Close()
		return fmt.Errorf("reachability: %w", err)
	}
	if n.opts.Reachability == ReachAuto {
		if n.policy.hasPublicIPv4() {
			n.log.Info("Public IPv4 address on an interface: taken for public until AutoNAT tells")
			guess.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic})
		} else {
			n.relays.setActive(true)
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer sub.Close()
		defer guess.Close()
		var public []ma.Multiaddr
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-sub.Out():
				if !ok {
					return
				}
				switch e := e.(type) {
				case event.EvtLocalReachabilityChanged:
					r := reachabilityOf(e.Reachability)
					old, _ := n.reach.Swap(r).(string)
					if old != r {
						n.log.Info("Reachability changed", "reachability", r, "forced", n.opts.Reachability != ReachAuto)
					}
					n.relays.follow(n.wantRelaySlots)
				case event.EvtLocalAddressesUpdated:
					now := dialable(n.host.Addrs())
					slices.SortFunc(now, ma.Multiaddr.Compare)
					if !slices.EqualFunc(now, public, ma.Multiaddr.Equal) {
						public = now
						n.log.Info("Addresses others can dial", "addrs", now)
						n.pub.Republish()
					}
				}
			}
		}
	}()
	return nil
}

// wantRelaySlots tells whether the node should hold relay slots: when
// private, when not known yet and no interface has a public address, and
// when its public address behind a NAT was withdrawn (wan.go), whatever
// AutoNAT v1 still says (it checks a node it found public again only
// every 15 minutes or more).
func (n *Node) wantRelaySlots() bool {
	r := n.Reachability()
	return r == ReachPrivate || (r == ReachUnknown && !n.policy.hasPublicIPv4()) ||
		(n.wanLost.Load() && n.opts.Reachability == ReachAuto)
}

// Reachability is what the node knows of its reachability: public,
// private or unknown.
func (n *Node) Reachability() string {
	if r, ok := n.reach.Load().(string); ok {
		return r
	}
	return ReachUnknown
}
