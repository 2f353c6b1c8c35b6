//go:build irmv_no_portmap

package node

import (
	"github.com/libp2p/go-libp2p/core/network"
	basichost "github.com/libp2p/go-libp2p/p2p/host/basic"
)

// HasPortMap tells whether this build can map ports on the router.
// Firmware builds (tag irmv_no_portmap) cannot: the NAT manager (UPnP,
// NAT-PMP) would put linux/arm over its 20 MB budget, and a node on the
// router itself needs none (its firewall rules open the ports).
const HasPortMap = false

func natManager() func(network.Network) basichost.NATManager { return nil }
