// Package signal defines irmv's call signalling messages and how they
// travel: terminal ↔ its node over the terminal WebSocket (GET /v1/ws),
// node ↔ node over the libp2p stream protocol Protocol.
//
// # Messages
//
// Every message is one JSON object, Msg, of at most MaxSize bytes. Type
// says what it is:
//
//	hello      terminal → node, first message on the WebSocket: terminal
//	           handle and token (Register's ack). The node answers welcome
//	           or error and closes.
//	welcome    node → terminal: ICE servers (the node's STUN and TURN with
//	           short-lived credentials) and the node's peer ID.
//	ping/pong  keepalive both ways; a ping from the terminal also refreshes
//	           its registration (heartbeat).
//	invite     caller → callee: Call (a fresh 128-bit ID, hex), From (the
//	           caller), To (callee's node and terminal), Desc (SDP offer with
//	           the signed DTLS fingerprint); Conference (an ID like Call's)
//	           when the call is a leg of a conference: the callee joins it
//	           and calls the other parties the conference names.
//	ringing    callee → caller: the callee is alerting its user.
//	accept     callee → caller: Desc (SDP answer, signed fingerprint);
//	           From (the callee), set by the callee's node.
//	reject     callee → caller: the user declined.
//	busy       callee or callee's node → caller.
//	unavailable callee's node → caller: the terminal is offline, unknown
//	           or has no WebSocket.
//	candidate  either way: one trickled ICE candidate of media leg Leg.
//	update     either way, in an accepted call: Desc renegotiates the
//	           media; the caller sends the offer, the callee answers with
//	           an update carrying the answer (Reason may say why). An
//	           offer with a Leg above the current one brings up a second
//	           WebRTC connection for the same call (make-before-break), for
//	           the route Route ("relayed": both sides relay-only;
//	           "direct"); once it is up each side moves its media to it
//	           and closes the old one. An offer for the current leg
//	           renegotiates that connection (an ICE restart).
//	hangup     either way: the call ends (Reason says why: "hangup",
//	           "no answer", "no media", "node", …).
//	rejoin     terminal → its node → the other party's node → the other
//	           terminal, in an accepted call: the terminal's signalling path
//	           broke (it moved to another node, or reconnected) and now
//	           runs through the node it sends this to; To names the other
//	           party (node and terminal), From is set by the node. The
//	           other party's node replaces the call's old path with the new
//	           one once the rejoin proves it comes from the terminal that
//	           was in the call: a terminal of its own rejoining on a new
//	           WebSocket is proven by its token (hello); a terminal that
//	           moved is proven by its key, the one the call was set up with
//	           (invite's and accept's From.Key): between nodes the rejoin
//	           carries Record, the terminal's record at the node that sends
//	           it, signed by that key and naming that node; a terminal that
//	           moved to the other party's node has registered there with
//	           that key. A terminal without a key can rejoin only at its
//	           own node. The terminal that placed the call then moves the
//	           media to a new leg (update, Reason "moved"). A node keeps an
//	           accepted call whose path broke for RejoinGrace (package
//	           call) before it ends it.
//	resume     node → node only, the first message of a new stream: the
//	           accepted call Call carries on over it, its old stream
//	           having broken (a relayed connection reached its limit, a
//	           relay restarted). The caller's node opens it, within
//	           ResumeWindow; the callee's node swaps the streams or, for
//	           a call it does not have, answers hangup.
//	error      node → terminal: a message was refused (Reason).
//	moved      node → terminal: a newer registration of this terminal at
//	           node Node replaced this one (the terminal registered there);
//	           the node has removed it and closes the WebSocket.
//
// # Paths and rules
//
// A terminal sends invite with To naming the callee's hosting node (peer
// ID, from a search result) and terminal handle. Its node relays it: to a
// terminal of its own over that terminal's WebSocket, or to the callee's
// node on a new libp2p stream (one stream per call, Frames as in
// internal/wire: uvarint length + JSON, both directions). The callee's
// node fills From.Node with the caller's node's authenticated peer ID and
// delivers the invite to the callee's WebSocket, or answers busy (the
// terminal's status is busy) or unavailable. Every later message of the
// call goes the same way back and forth. reject, busy, unavailable and
// hangup end the call at each hop. A call that is not accepted within
// RingTimeout is ended by the nodes with hangup "no answer"; a terminal
// whose WebSocket closes hangs up all the calls made or offered on it (not
// those of a newer WebSocket that replaced it). Only the callee accepts.
//
// # The other node's relay
//
// A node that relays an invite or an accept of its own terminal to another
// node adds PeerICEServers: its own STUN/TURN servers, with short-lived
// credentials issued for the terminal on the other side, so that each
// terminal of a call can also relay through the other's node. Nodes drop
// PeerICEServers that come from a terminal (a terminal must not steer the
// other one to servers of its choosing) and pass those of the other node
// on unchanged, after checking them against MaxPeerICEServers,
// MaxICEURLs and MaxICEField. Calls between two terminals of one node
// carry none.
package signal

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/irmv/irmv/record"
)

// Legs: a call's first WebRTC connection is leg 0 and each route change
// brings up the next; candidate and update messages name their leg (0 when
// left out). Nodes relay Leg and Route unchanged.

// Protocol is the node-to-node call signalling protocol.
const Protocol = "/irmv/call/1.0.0"

// Limits.
const (
	MaxSize = 64 << 10 // one message, either path
	MaxLeg  = 1000     // highest leg number: route changes in one call
	// MaxPeerICEServers bounds PeerICEServers, MaxICEURLs the URLs of
	// one of them and MaxICEField the length of a URL, username or
	// credential.
	MaxPeerICEServers = 4
	MaxICEURLs        = 4
	MaxICEField       = 256
)

// Routes of a call's media, in update messages (Route) and the terminals'
// events. RouteDirect and RouteRelayed are also what call/media measures:
// no relay, or a TURN relay on at least one end; RouteRelayedPeer is a
// relayed leg through the callee's node's relay only (see the package
// doc): the name is the caller's view, the one that moves calls, and both
// terminals use it.
const (
	RouteDirect      = "direct"
	RouteRelayed     = "relayed"
	RouteRelayedPeer = "relayed-peer"
)

// Message types.
const (
	TypeHello       = "hello"
	TypeWelcome     = "welcome"
	TypePing        = "ping"
	TypePong        = "pong"
	TypeInvite      = "invite"
	TypeRinging     = "ringing"
	TypeAccept      = "accept"
	TypeReject      = "reject"
	TypeBusy        = "busy"
	TypeUnavailable = "unavailable"
	TypeCandidate   = "candidate"
	TypeUpdate      = "update"
	TypeHangup      = "hangup"
	TypeError       = "error"
	TypeMoved       = "moved"
	TypeRejoin      = "rejoin"
	TypeResume      = "resume"
)

// CloseReplaced is the reason of the close (status 1001, going away) a
// node sends a terminal's WebSocket when a newer one of the same terminal
// took its place. A terminal that did not open that newer one itself
// shares its key with another phone at this node and stops, as it does
// when superseded at another node (moved).
const CloseReplaced = "replaced by a newer connection"

// ResumeWindow is how long an accepted call whose node-to-node stream
// broke waits for a new one (resume) before the nodes end it.
const ResumeWindow = 15 * time.Second

// Ends reports whether a message of type t ends a call.
func Ends(t string) bool {
	switch t {
	case TypeReject, TypeBusy, TypeUnavailable, TypeHangup:
		return true
	}
	return false
}

// Party names a terminal in a call.
type Party struct {
	Node        string             `json:"node"`     // hosting node's peer ID
	Terminal    string             `json:"terminal"` // handle on that node
	Identifiers record.Identifiers `json:"identifiers,omitzero"`
	Key         []byte             `json:"key,omitempty"` // Ed25519 public key
	// Private asks for relay-only media (the party hides its address).
	Private bool `json:"private,omitempty"`
}

// Msg is one signalling message.
type Msg struct {
	Type      string        `json:"type"`
	Call      string        `json:"call,omitempty"`
	From      *Party        `json:"from,omitempty"`
	To        *Party        `json:"to,omitempty"`
	Desc      *Description  `json:"desc,omitempty"`
	Candidate *ICECandidate `json:"candidate,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	// Conference, in an invite: the conference the call is a leg of.
	Conference string `json:"conference,omitempty"`
	// Leg is the media leg (WebRTC connection) of a candidate or update.
	Leg int `json:"leg,omitempty"`
	// Bridged, in invite and accept: the party is a SIP phone behind its
	// node's bridge (package sip): that node is in the media path and no
	// terminal signs its side. Nodes set it for their own terminals.
	Bridged bool `json:"bridged,omitempty"`
	// Route, in an update offering a new leg: the route it is for
	// (RouteDirect, RouteRelayed or RouteRelayedPeer).
	Route string `json:"route,omitempty"`
	// Record, in a rejoin from one node to another only: the rejoining
	// terminal's record at the sending node, signed by its key.
	Record *record.Record `json:"record,omitempty"`
	// PeerICEServers, in invite and accept as a node delivers them: the
	// STUN/TURN servers of the other terminal's node, with credentials
	// for this terminal (see the package doc). At most
	// MaxPeerICEServers.
	PeerICEServers []ICEServer `json:"peer_ice_servers,omitempty"`

	// hello
	Terminal string `json:"terminal,omitempty"`
	Token    string `json:"token,omitempty"`
	// welcome
	Node       string      `json:"node,omitempty"`
	ICEServers []ICEServer `json:"ice_servers,omitempty"`
}

// CheckICEServers bounds ICE servers that one node passes to the
// terminals of another: at most MaxPeerICEServers, each with 1 to
// MaxICEURLs stun:, turn: or turns: URLs and password credentials, every
// field at most MaxICEField bytes.
func CheckICEServers(servers []ICEServer) error {
	if len(servers) > MaxPeerICEServers {
		return fmt.Errorf("%d peer ICE servers: want at most %d", len(servers), MaxPeerICEServers)
	}
	for _, ic := range servers {
		if len(ic.URLs) == 0 || len(ic.URLs) > MaxICEURLs {
			return fmt.Errorf("peer ICE server with %d URLs: want 1 to %d", len(ic.URLs), MaxICEURLs)
		}
		for _, u := range ic.URLs {
			if len(u) > MaxICEField || !(strings.HasPrefix(u, "stun:") || strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:")) {
				return errors.New("peer ICE server URL: want stun:, turn: or turns:, at most 256 bytes")
			}
		}
		if ic.CredentialType != "" && ic.CredentialType != "password" ||
			len(ic.Username) > MaxICEField || len(ic.Credential) > MaxICEField {
			return errors.New("peer ICE server credentials: want a username and password of at most 256 bytes")
		}
	}
	return nil
}
