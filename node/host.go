package node

import (
	"fmt"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/prometheus/client_golang/prometheus"
)

// newHost builds the libp2p host with an explicit transport list: TCP and
// QUIC only, Noise, yamux. libp2p's defaults would also open webrtc-direct
// and webtransport sockets that irmv does not use.
func newHost(key crypto.PrivKey, o *Options, reg prometheus.Registerer) (host.Host, error) {
	limits, conns := resourceLimits(o.Profile)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(conns/2, conns)
	if err != nil {
		return nil, fmt.Errorf("connection manager: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(o.Listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.PrometheusRegisterer(reg),
		libp2p.DisableRelay(),
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("libp2p host: %w", err)
	}
	return h, nil
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
