//go:build irmv_no_mdns

package node

import (
	"context"
	"fmt"
	"io"
)

// HasMDNS tells whether this build has LAN discovery. Firmware builds
// (tag irmv_no_mdns) join through --bootstrap only: multicast on Wi-Fi is
// sent at the lowest rate and wakes sleeping phones, and many APs filter
// it anyway.
const HasMDNS = false

func (n *Node) startMDNS(context.Context) (io.Closer, error) {
	return nil, fmt.Errorf("%w: this build has no mDNS (built with irmv_no_mdns); use --bootstrap", ErrBadOptions)
}
