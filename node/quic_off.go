//go:build irmv_tcp_only

package node

import (
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultListen are the default libp2p listen addresses of a TCP-only
// build: port 4001, IPv4 and IPv6.
var DefaultListen = []string{
	"/ip4/0.0.0.0/tcp/4001",
	"/ip6/::/tcp/4001",
}

// HasQUIC tells whether this build has the QUIC transport: firmware builds
// (tag irmv_tcp_only) speak TCP to other nodes, which all listen on TCP too.
const HasQUIC = false

func newQUIC(crypto.PrivKey, network.ResourceManager, prometheus.Registerer) (transport.Transport, func() error, error) {
	return nil, func() error { return nil }, nil
}
