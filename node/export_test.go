package node

import (
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/call/signal"
)

// ICEServersForTest is what a terminal of n gets in its welcome.
func (n *Node) ICEServersForTest(terminal string) []signal.ICEServer { return n.iceServers(terminal) }

// PeerICEServersForTest is what n sends the terminal of node remote in a call.
func (n *Node) PeerICEServersForTest(remote peer.ID) []signal.ICEServer {
	return n.peerICEServers(remote)
}
