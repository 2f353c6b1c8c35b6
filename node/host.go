package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p/config"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
)

// newHost builds the libp2p host from config.Config rather than libp2p.New:
// TCP and QUIC only, Noise, yamux, no relay. Importing the root go-libp2p
// package would link its default transports (webrtc-direct, webtransport,
// websocket: ~5 MB) even though irmv never configures them. Everything
// libp2p.New would fill in by default is set here explicitly.
func newHost(key crypto.PrivKey, o *Options, reg prometheus.Registerer) (host.Host, error) {
	listen := make([]ma.Multiaddr, 0, len(o.Listen))
	for _, s := range o.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %v", ErrBadOptions, s, err)
		}
		listen = append(listen, a)
	}
	limits, conns := resourceLimits(o.Profile)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(conns/2, conns)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		rm.Close()
		cm.Close()
		return nil, fmt.Errorf("peerstore: %w", err)
	}
	cfg := config.Config{
		PeerKey:     key,
		ListenAddrs: listen,
		Transports: []fx.Option{
			hostTransport(tcp.NewTCPTransport),
			hostTransport(quic.NewTransport),
		},
		Muxers:               []upgrader.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}},
		SecurityTransports:   []config.Security{{ID: noise.ID, Constructor: noise.New}},
		RelayCustom:          true, // relay off
		Peerstore:            ps,
		ResourceManager:      rm,
		ConnManager:          cm,
		PrometheusRegisterer: reg,
		// libp2p.New's black hole detectors: stop dialling UDP or IPv6
		// when nearly every such dial fails.
		UDPBlackHoleSuccessCounter:  &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "UDP"},
		IPv6BlackHoleSuccessCounter: &swarm.BlackHoleSuccessCounter{N: 100, MinSuccesses: 5, Name: "IPv6"},
	}
	h, err := cfg.NewNode()
	if err != nil {
		// NewNode closes them only when validation fails; both Close
		// methods may run twice.
		rm.Close()
		cm.Close()
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	return h, nil
}

// hostTransport is what libp2p.Transport does for a constructor without
// options: hand it to fx as one of the swarm's transports.
func hostTransport(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(
		constructor,
		fx.As(new(transport.Transport)),
		fx.ResultTags(`group:"transport"`),
	))
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
