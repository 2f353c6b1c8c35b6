package node

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	sectransport "github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	blankhost "github.com/libp2p/go-libp2p/p2p/host/blank"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/prometheus/client_golang/prometheus"
)

// newHost builds the libp2p host from its parts, as libp2p.New would with
// TCP and QUIC only, Noise, yamux, AutoNAT (v1: its reachability event
// drives the DHT's mode, the relay service and the relay reservations),
// the circuit relay v2 client and service, and hole punching (DCUtR).
// Neither libp2p.New nor config.Config: the root package links the default
// transports irmv never configures (webrtc-direct, webtransport,
// websocket: ~5 MB), and config assembles the host with fx/dig (1 MB more
// on arm). The order of construction and of Close mirrors config.NewNode.
func newHost(key crypto.PrivKey, o *Options, reg prometheus.Registerer, policy *addrPolicy) (h *nodeHost, err error) {
	listen := make([]ma.Multiaddr, 0, len(o.Listen))
	for _, s := range o.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %v", ErrBadOptions, s, err)
		}
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil && !HasQUIC {
			return nil, fmt.Errorf("%w: listen address %q: this build speaks TCP only (built with irmv_tcp_only)", ErrBadOptions, s)
		}
		listen = append(listen, a)
	}
	pid, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("peer ID: %w", err)
	}

	// Until the basic host owns them, close what was made on failure.
	var closers []func() error
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()
	limits, conns := resourceLimits(o.Profile)
	rcmgr.MustRegisterWith(reg)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	closers = append(closers, rm.Close)
	cm, err := connmgr.NewConnManager(conns/2, conns)
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	closers = append(closers, cm.Close)
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, fmt.Errorf("peerstore: %w", err)
	}
	closers = append(closers, ps.Close)
	if err := ps.AddPrivKey(pid, key); err != nil {
		return nil, fmt.Errorf("peerstore: %w", err)
	}
	if err := ps.AddPubKey(pid, key.GetPublic()); err != nil {
		return nil, fmt.Errorf("peerstore: %w", err)
	}

	bus := eventbus.NewBus(eventbus.WithMetricsTracer(eventbus.NewMetricsTracer(eventbus.WithRegisterer(reg))))
	sw, err := swarm.NewSwarm(pid, ps, bus,
		swarm.WithResourceManager(rm),
		swarm.WithMetricsTracer(swarm.NewMetricsTracer(swarm.WithRegisterer(reg))),
		// libp2p.New's black hole detectors: stop dialling UDP or IPv6
		// when nearly every such dial fails.
		swarm.WithUDPBlackHoleSuccessCounter(&swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "UDP"}),
		swarm.WithIPv6BlackHoleSuccessCounter(&swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "IPv6"}),
	)
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	closers = append(closers, sw.Close)
	policy.listen = sw.ListenAddresses
	upg, err := newUpgrader(key, rm)
	if err != nil {
		return nil, err
	}
	// Port reuse stays on: hole punching dials out from the listen port.
	// checkListen keeps two nodes from sharing a listen port.
	tcpT, err := tcp.NewTCPTransport(upg, rm, nil)
	if err != nil {
		return nil, fmt.Errorf("tcp: %w", err)
	}
	if err := sw.AddTransport(tcpT); err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	// QUIC's connection manager outlives the swarm (libp2p.New's order).
	quicT, quicClose, err := newQUIC(key, rm, reg)
	if err != nil {
		return nil, err
	}
	if quicT != nil {
		closers = append(closers, quicClose)
		if err := sw.AddTransport(quicT); err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
	}
	obs, err := observedaddrs.NewManager(bus, sw)
	if err != nil {
		return nil, fmt.Errorf("observed addresses: %w", err)
	}
	closers = append(closers, obs.Close)
	var nat func(network.Network) basichost.NATManager
	if o.PortMap {
		nat = natManager()
	}
	// AutoNAT's dial-backs (v1 and v2) come from a swarm of its own; v2
	// also confirms a public address seen through a NAT (a port forward,
	// a 1:1 NAT: watchWAN). A node told it is private needs neither.
	var dialBack *swarm.Swarm
	var an2 *autonatv2.AutoNAT
	if o.Reachability != ReachPrivate {
		if dialBack, err = newDialBackSwarm(rm); err != nil {
			return nil, fmt.Errorf("autonat: %w", err)
		}
		closers = append(closers, func() error { return errors.Join(dialBack.Close(), dialBack.Peerstore().Close()) })
		if an2, err = autonatv2.New(blankhost.NewBlankHost(dialBack)); err != nil {
			return nil, fmt.Errorf("autonat v2: %w", err)
		}
	}
	bh, err := basichost.NewHost(sw, &basichost.HostOpts{
		NATManager:           nat,
		EventBus:             bus,
		ConnManager:          cm,
		AddrsFactory:         policy.Announce,
		EnablePing:           true,
		EnableMetrics:        true,
		PrometheusRegisterer: reg,
		ObservedAddrsManager: obs,
		// It relays only while AutoNAT finds the node public.
		EnableRelayService: o.Reachability != ReachPrivate,
		RelayServiceOpts: []relayv2.Option{
			relayv2.WithResources(relayResources(o)),
			// Tell clients every address we announce (libp2p: public
			// ones only); each keeps those it can use, so a relay on
			// the LAN serves the LAN.
			relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }),
		},
		EnableHolePunching: true,
	})
	if err != nil {
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	// From here on the host closes the swarm, peerstore, connection and
	// resource managers.
	nh := &nodeHost{BasicHost: bh, obs: obs, quicClose: quicClose, an2: an2}
	if dialBack != nil {
		nh.dialer = closerFunc(func() error { return errors.Join(dialBack.Close(), dialBack.Peerstore().Close()) })
	}
	closers = []func() error{nh.Close}
	// Dial and accept relayed connections (/p2p-circuit).
	if err := circuit.AddTransport(bh, upg); err != nil {
		return nil, fmt.Errorf("relay client: %w", err)
	}
	if err := listenAll(sw, listen); err != nil {
		return nil, err
	}
	obs.Start(sw)
	bh.Start()
	if err := startAutoNAT(bh, o, dialBack); err != nil {
		return nil, err
	}
	// Started here, not by the basic host (HostOpts.AutoNATv2): its Close
	// would crash on a v2 that a failed start never started. Only
	// watchWAN asks it, through checkerHost, which tells it whom.
	if an2 != nil {
		if err := an2.Start(checkerHost{bh}); err != nil {
			return nil, fmt.Errorf("autonat v2: %w", err)
		}
		nh.an2Started = true
	}
	return nh, nil
}

// newUpgrader secures connections with Noise under key and multiplexes
// them with yamux.
func newUpgrader(key crypto.PrivKey, rm network.ResourceManager) (transport.Upgrader, error) {
	muxers := []upgrader.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}
	sec, err := noise.New(noise.ID, key, muxers)
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	upg, err := upgrader.New([]sectransport.SecureTransport{sec}, muxers, nil, rm, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrader: %w", err)
	}
	return upg, nil
}

// nodeHost closes what the basic host does not own, in config.NewNode's
// order: the host (and with it the swarm and AutoNAT), then AutoNAT's
// dial-back swarm, observed addresses and QUIC's connection manager.
type nodeHost struct {
	*basichost.BasicHost
	obs        *observedaddrs.Manager
	quicClose  func() error
	dialer     io.Closer          // AutoNAT's dial-back swarm; nil: none
	an2        *autonatv2.AutoNAT // nil: none
	an2Started bool

	closeOnce sync.Once
	closeErr  error
}

func (h *nodeHost) Close() error {
	h.closeOnce.Do(func() {
		if h.an2Started {
			h.an2.Close()
		}
		err := h.BasicHost.Close()
		if h.dialer != nil {
			err = errors.Join(err, h.dialer.Close())
		}
		h.closeErr = errors.Join(err, h.obs.Close(), h.quicClose())
	})
	return h.closeErr
}

// listenAll listens on every address. Unlike swarm.Listen, which succeeds
// when any address does, an address that another process (or node)
// already holds is an error: TCP port reuse would otherwise let a second
// node share the port and take half of the first one's connections. Other
// failures (no IPv6 on this machine) only leave that address out.
// listenInUse is the way out of a listen address in use.
const listenInUse = " (another irmv node? give each node on a machine its own --listen port)"

func listenAll(sw *swarm.Swarm, addrs []ma.Multiaddr) error {
	for _, a := range addrs {
		if err := checkListen(a); err != nil {
			return fmt.Errorf("listen on %s: %w%s", a, err, listenInUse)
		}
	}
	var errs []error
	for _, a := range addrs {
		if err := sw.Listen(a); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("listen on %s: %w%s", a, err, listenInUse)
			}
			errs = append(errs, fmt.Errorf("listen on %s: %w", a, err))
		}
	}
	if len(addrs) > 0 && len(errs) == len(addrs) {
		return errors.Join(errs...)
	}
	return nil
}

// checkListen binds a TCP listen address once without SO_REUSEPORT: that
// fails while anyone listens there, with or without the option.
func checkListen(a ma.Multiaddr) error {
	if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
		return nil
	}
	network, hostport, err := manet.DialArgs(a)
	if err != nil || strings.HasSuffix(hostport, ":0") {
		return nil
	}
	ln, err := net.Listen(network, hostport)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("%w: %v", ErrAddrInUse, err)
		}
		return nil // listenAll reports it
	}
	return ln.Close()
}

// resourceLimits returns libp2p resource limits and the connection
// manager's high water mark for a profile. The "ap" profile fits a router
// with 128–256 MB of RAM; libp2p's auto-scaling would allow far more.
func resourceLimits(profile string) (rcmgr.ConcreteLimitConfig, int) {
	if profile == "ap" {
		return rcmgr.DefaultLimits.Scale(32<<20, 256), 64
	}
	return rcmgr.DefaultLimits.AutoScale(), 400
}
