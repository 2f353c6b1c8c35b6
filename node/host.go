package node

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	sectransport "github.com/libp2p/go-libp2p/core/sec"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// newHost builds the libp2p host from its parts, as libp2p.New would with
// TCP and QUIC only, Noise, yamux, no relay, no AutoNAT and no hole
// punching (nodes run the DHT in server mode on addresses they are told).
// Neither libp2p.New nor config.Config: the root package links the default
// transports irmv never configures (webrtc-direct, webtransport,
// websocket: ~5 MB), and config assembles the host with fx/dig, AutoNAT
// and AutoRelay (1 MB more on arm). The order of construction and of
// Close mirrors config.NewNode.
func newHost(key crypto.PrivKey, o *Options, reg prometheus.Registerer) (h host.Host, err error) {
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
	muxers := []upgrader.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}
	sec, err := noise.New(noise.ID, key, muxers)
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	upg, err := upgrader.New([]sectransport.SecureTransport{sec}, muxers, nil, rm, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrader: %w", err)
	}
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
	bh, err := basichost.NewHost(sw, &basichost.HostOpts{
		EventBus:             bus,
		ConnManager:          cm,
		EnablePing:           true,
		EnableMetrics:        true,
		PrometheusRegisterer: reg,
		ObservedAddrsManager: obs,
	})
	if err != nil {
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	// From here on the host closes the swarm, peerstore, connection and
	// resource managers.
	closers = []func() error{quicClose, obs.Close, bh.Close}
	if err := sw.Listen(listen...); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	obs.Start(sw)
	bh.Start()
	return &nodeHost{BasicHost: bh, obs: obs, quicClose: quicClose}, nil
}

// nodeHost closes what the basic host does not own, in config.NewNode's
// order: the host (and with it the swarm), then observed addresses and
// QUIC's connection manager.
type nodeHost struct {
	*basichost.BasicHost
	obs       *observedaddrs.Manager
	quicClose func() error
}

func (h *nodeHost) Close() error {
	err := h.BasicHost.Close()
	return errors.Join(err, h.obs.Close(), h.quicClose())
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
