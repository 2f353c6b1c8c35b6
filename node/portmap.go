//go:build !irmv_no_portmap

package node

import (
	"github.com/libp2p/go-libp2p/core/network"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
)

// HasPortMap tells whether this build can ask the router in front of the
// node to forward its listen ports (UPnP IGD or NAT-PMP). Firmware builds
// leave it out (tag irmv_no_portmap: −1.7 MB on arm).
const HasPortMap = true

// natManager is go-libp2p's NAT manager: it finds the gateway, maps each
// listen port and announces the mapped address, which AutoNAT then checks.
func natManager() func(network.Network) basichost.NATManager {
	return basichost.NewNATManager
}
