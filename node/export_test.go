package node

import (
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/irmv/irmv/call/signal"
)

// ICEServersForTest is what a terminal of n gets in its welcome.
func (n *Node) ICEServersForTest(terminal string) []signal.ICEServer { return n.iceServers(terminal) }

// PeerICEServersForTest is what n sends the terminal of node remote in a call.
func (n *Node) PeerICEServersForTest(remote peer.ID) []signal.ICEServer {
	return n.peerICEServers(remote)
}

// SetSubnetsForTest makes n take nets for this machine's subnets (which
// decide which peers are on its LAN) from now on.
func (n *Node) SetSubnetsForTest(nets []*net.IPNet) {
	n.policy.mu.Lock()
	defer n.policy.mu.Unlock()
	n.policy.subnets = nets
	n.policy.at = time.Now().Add(24 * time.Hour) // never refreshed
}

// APIBurstForTest is the burst of the API's default bucket.
const APIBurstForTest = apiBurst

// StopAPIClockForTest stops the clock of n's API buckets: they no longer
// refill, so a limit is reached after exactly the burst, however slowly
// the requests come.
func (n *Node) StopAPIClockForTest() {
	n.apiLimit.mu.Lock()
	defer n.apiLimit.mu.Unlock()
	at := n.apiLimit.now()
	n.apiLimit.now = func() time.Time { return at }
}

// AssumeWANForTest makes n take a for its confirmed public address, as if
// a dial-back had succeeded, and check it again from then on (every
// Options.WANCheck).
func (n *Node) AssumeWANForTest(a ma.Multiaddr) { n.wanAssume <- a }
