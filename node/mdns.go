//go:build !irmv_no_mdns

package node

import (
	"context"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// mdnsService is the mDNS service name nodes announce on the LAN.
const mdnsService = "_irmv-node"

// HasMDNS tells whether this build has LAN discovery (firmware builds with
// the irmv_no_mdns tag leave it out: −0.6 MB on arm).
const HasMDNS = true

// startMDNS announces the node on the LAN and dials the nodes it finds.
func (n *Node) startMDNS(ctx context.Context) (io.Closer, error) {
	s := mdns.NewMdnsService(n.host, mdnsService, &mdnsNotifee{n: n, ctx: ctx})
	if err := s.Start(); err != nil {
		// No multicast-capable interface is no reason not to run.
		n.log.Warn("mDNS discovery unavailable", "err", err)
	}
	return s, nil
}

type mdnsNotifee struct {
	n   *Node
	ctx context.Context
}

func (m *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.host.ID() {
		return
	}
	m.n.wg.Add(1)
	go func() {
		defer m.n.wg.Done()
		ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
		defer cancel()
		if err := m.n.host.Connect(ctx, ai); err != nil {
			m.n.log.Debug("mDNS peer dial failed", "peer", ai.ID, "err", err)
			return
		}
		m.n.log.Info("Found node on the LAN", "peer", ai.ID)
	}()
}
