//go:build !irmv_tcp_only

package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/transport"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/prometheus/client_golang/prometheus"
	quicgo "github.com/quic-go/quic-go"
	"golang.org/x/crypto/hkdf"
)

// DefaultListen are the default libp2p listen addresses: TCP and QUIC on
// port 4001, IPv4 and IPv6.
var DefaultListen = []string{
	"/ip4/0.0.0.0/tcp/4001",
	"/ip4/0.0.0.0/udp/4001/quic-v1",
	"/ip6/::/tcp/4001",
	"/ip6/::/udp/4001/quic-v1",
}

// HasQUIC tells whether this build has the QUIC transport (firmware builds
// with the irmv_tcp_only tag leave it out: −0.9 MB on arm).
const HasQUIC = true

// newQUIC makes the QUIC transport with its connection manager, set up as
// libp2p.New does; the returned func closes the connection manager.
func newQUIC(key crypto.PrivKey, rm network.ResourceManager, reg prometheus.Registerer) (transport.Transport, func() error, error) {
	resetKey, tokenKey, err := quicKeys(key)
	if err != nil {
		return nil, nil, err
	}
	qcm, err := quicreuse.NewConnManager(resetKey, tokenKey,
		quicreuse.ConnContext(func(ctx context.Context, ci *quicgo.ClientInfo) (context.Context, error) {
			// Inbound QUIC connections count against the resource
			// manager before their handshake.
			addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quicgo.Version1)
			if err != nil {
				addr = nil
			}
			scope, err := rm.OpenConnection(network.DirInbound, false, addr)
			if err != nil {
				return ctx, err
			}
			ctx = network.WithConnManagementScope(ctx, scope)
			context.AfterFunc(ctx, scope.Done)
			return ctx, nil
		}),
		quicreuse.VerifySourceAddress(rm.VerifySourceAddress),
		quicreuse.EnableMetrics(reg),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("quic: %w", err)
	}
	t, err := quic.NewTransport(key, qcm, nil, nil, rm)
	if err != nil {
		qcm.Close()
		return nil, nil, fmt.Errorf("quic: %w", err)
	}
	return t, qcm.Close, nil
}

// quicKeys derives QUIC's stateless reset and token keys from the node's
// identity, as libp2p.New does, so they survive restarts.
func quicKeys(key crypto.PrivKey) (quicgo.StatelessResetKey, quicgo.TokenGeneratorKey, error) {
	var reset quicgo.StatelessResetKey
	var token quicgo.TokenGeneratorKey
	raw, err := key.Raw()
	if err != nil {
		return reset, token, err
	}
	if _, err := io.ReadFull(hkdf.New(sha256.New, raw, nil, []byte("libp2p quic stateless reset key")), reset[:]); err != nil {
		return reset, token, err
	}
	if _, err := io.ReadFull(hkdf.New(sha256.New, raw, nil, []byte("libp2p quic token generator key")), token[:]); err != nil {
		return reset, token, err
	}
	return reset, token, nil
}
