package client

import (
	"encoding/json"
	"time"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// Registration is what a terminal registers: the JSON body of POST
// /v1/terminals and POST /v1/terminals/prepare. Empty strings are absent fields.
type Registration struct {
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
	UID   string `json:"uid,omitempty"`
	// IP is an IP address identifier: searchable, unlike Address.
	IP string `json:"ip,omitempty"`
	// Address is the terminal's current IP address. The caller defaults it
	// (the API to the request's source address).
	Address string `json:"address,omitempty"`
	// Status is online (the default), idle, busy or offline.
	Status string `json:"status,omitempty"`
	// Private keeps Address out of the published record.
	Private bool `json:"private,omitempty"`
	// Keepalive says the terminal sends heartbeats and is shown offline
	// when it stops (the node's --offline-after).
	Keepalive bool `json:"keepalive,omitempty"`
	// TTL is the lifetime without refresh in seconds: 0 for the node's
	// default, else MinTTL..MaxTTL.
	TTL int `json:"ttl,omitempty"`
	// Key is the terminal's Ed25519 public key (32 bytes); Body and Sig the
	// body from Prepare and the key's signature over
	// record.SigningBytes(Body). Without Key the node attests the record.
	Key  []byte `json:"key,omitempty"`
	Body []byte `json:"body,omitempty"`
	Sig  []byte `json:"sig,omitempty"`
	// Seq is the sequence number of the terminal's newest record anywhere
	// (at the node it moves from): its record here gets a higher one.
	Seq uint64 `json:"seq,omitempty"`
	// From is the peer ID of the node the terminal was registered at
	// before: this node tells that node that the terminal moved, and it
	// withdraws its registration (see package roam).
	From string `json:"from,omitempty"`
	// FromToken is, for a terminal without a key, its token at From: the
	// proof that it is the same terminal there.
	FromToken string `json:"from_token,omitempty"`
}

// Ack acknowledges a registration (and answers Heartbeat and SetStatus).
type Ack struct {
	// Terminal is the handle for later calls.
	Terminal string `json:"terminal"`
	// Token is the terminal's secret for later requests (Authorization:
	// Bearer); only registering returns one.
	Token       string             `json:"token,omitempty"`
	ExpiresAt   time.Time          `json:"expires_at"`
	Identifiers record.Identifiers `json:"identifiers"`
	NameTokens  []string           `json:"tokens,omitempty"`
	Status      record.Status      `json:"status"`
	Signer      record.Signer      `json:"signer"`
	Record      *record.Record     `json:"record"`
	// Created says that the node made a new terminal (not an update); the
	// node sets it for itself and never sends it.
	Created bool `json:"-"`
}

// Terminal is a hosted terminal as the node's API and CLI show it. Address
// is the terminal's current address as the node knows it, also for private
// terminals (whose published records omit it).
type Terminal struct {
	Terminal    string             `json:"terminal"`
	Identifiers record.Identifiers `json:"identifiers"`
	Address     string             `json:"address,omitempty"`
	Status      record.Status      `json:"status"`
	Private     bool               `json:"private"`
	Keepalive   bool               `json:"keepalive"`
	Signer      record.Signer      `json:"signer"`
	Key         []byte             `json:"key,omitempty"`
	Seq         uint64             `json:"seq"`
	ExpiresAt   time.Time          `json:"expires_at"`
	Seen        time.Time          `json:"seen,omitzero"`
}

// Paths a result can be found by: Result.Via, and Query.Via as a request.
const (
	ViaLocal = "local"
	ViaDHT   = "dht"
	ViaFlood = "flood"
	ViaAuto  = "auto" // only as a request: race them all
)

// Result is one terminal found by a search: one line of GET /v1/search and
// of `irmv search --json`, and what Phone.Call takes as the callee.
type Result struct {
	Terminal    string             `json:"terminal"`
	Identifiers record.Identifiers `json:"identifiers"`
	Address     string             `json:"address"`
	Private     bool               `json:"private,omitempty"`
	Status      record.Status      `json:"status"`
	Node        string             `json:"node"`
	Via         string             `json:"via"`
	// Match is how the terminal answers the query: "exact", "words" or
	// "prefix" (ident.Match); clients rank by it.
	Match     ident.Match   `json:"match"`
	Verified  bool          `json:"verified"`
	Signer    record.Signer `json:"signer"`
	Key       []byte        `json:"key,omitempty"` // terminal's Ed25519 key, if it has one
	Seq       uint64        `json:"seq"`
	Hops      int           `json:"hops,omitempty"`
	ElapsedMS float64       `json:"elapsed_ms"`
	// Record is the signed record, between nodes only: the API answers
	// the verified view above without it.
	Record *record.Record `json:"record,omitempty"`
}

// Query is one search: the parameters q, via, limit and timeout of GET
// /v1/search.
type Query struct {
	Text    string        // any identifier in any written form
	Via     string        // "", ViaAuto, ViaDHT or ViaFlood
	Limit   int           // 0: the node's default (20), at most 200
	Timeout time.Duration // 0: the node's default (5s), at most 60s
}

// Event types (Event.Type).
const (
	EventRegistered = "registered" // Start registered the terminal (Self)
	EventSearching  = "searching"  // (irmv call) looking the callee up
	EventFound      = "found"      // (irmv call) the callee was found (Peer)
	EventRinging    = "ringing"    // the callee is alerting its user
	EventConnected  = "connected"  // media flows (SetupMS, Route)
	EventQuality    = "quality"    // a quality sample, every second
	EventRoute      = "route"      // the route changed (From, To, Reason)
	EventText       = "text"       // a text message on the chat channel
	EventDTMF       = "dtmf"       // the other party pressed a key (Digit, DurationMS)
	EventWarning    = "warning"    // something to tell the user (Reason)
	EventIncoming   = "incoming"   // an invite arrived (Peer)
	EventEnded      = "ended"      // the call ended (Reason, Record)
	// EventMoved: Phone.Move registered the terminal at another node (Self).
	EventMoved = "moved"
	// EventSuperseded: a newer registration of this terminal's key at
	// another node replaced this one (Reason); the phone stopped.
	EventSuperseded = "superseded"
)

// Event is something that happened to a phone (package call/phone) or one
// of its calls. It is the one JSON shape of call events: the lines of
// `irmv call --json` and `irmv phone --json`, and phone.Options.OnEvent's
// argument.
type Event struct {
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Call string    `json:"call,omitempty"`
	// Conference is the conference the call is a leg of.
	Conference string        `json:"conference,omitempty"`
	Peer       *signal.Party `json:"peer,omitempty"`
	// Bridged, in "incoming", "connected" and "ended": the other party is
	// a SIP phone behind its node's bridge, so that node is in the media
	// path and no key of the party signs it (see package sip).
	Bridged bool `json:"bridged,omitempty"`
	// Self is this terminal, in "registered" events.
	Self *signal.Party `json:"self,omitempty"`
	// SetupMS, in "connected": from the invite sent (caller) or received
	// (callee) to the first audio packet received.
	SetupMS float64 `json:"setup_ms,omitempty"`
	Route   string  `json:"route,omitempty"` // direct, relayed or relayed-peer
	// Codec, in "connected": the audio codec both sides send (opus,
	// PCMU, PCMA).
	Codec string `json:"codec,omitempty"`
	// From and To, in "route": the route left and the route taken; Reason
	// says why (the threshold crossed, or "ice").
	From     string  `json:"from,omitempty"`
	To       string  `json:"to,omitempty"`
	Loss     float64 `json:"loss,omitempty"` // fraction 0..1
	JitterMS float64 `json:"jitter_ms,omitempty"`
	RTTMS    float64 `json:"rtt_ms,omitempty"`
	// SIPRTTMS, in "quality" on a bridged call: the round trip between
	// the bridging node and the SIP phone (from the phone's RTCP
	// reports); RTTMS is the WebRTC leg's, the two add up to the call's
	// end to end. Absent until the phone reports one (a phone without
	// RTCP never does).
	SIPRTTMS *float64 `json:"sip_rtt_ms,omitempty"`
	// NoAudioMS, in "quality": how long no audio has arrived from the
	// other party, once that is 2 s or more (absent while audio arrives);
	// loss, jitter_ms and rtt_ms are then the last measured.
	NoAudioMS float64 `json:"no_audio_ms,omitempty"`
	// Disconnected, in "quality": the other party no longer answers the
	// connectivity checks (ICE disconnected); rtt_ms is stale.
	Disconnected bool   `json:"disconnected,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Text         string `json:"text,omitempty"`
	// Digit and DurationMS, in "dtmf": the key (0-9 * # A-D) and how long
	// it was held.
	Digit      string `json:"digit,omitempty"`
	DurationMS int    `json:"duration_ms,omitempty"`
	Record     string `json:"record,omitempty"` // the recording's path, in "ended"
}

// MarshalJSON writes loss, jitter_ms and rtt_ms in every "quality" event:
// a measured zero is a value, not an absent one.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event // without this method
	if e.Type != EventQuality {
		return json.Marshal(plain(e))
	}
	return json.Marshal(struct {
		plain
		Loss     float64 `json:"loss"`
		JitterMS float64 `json:"jitter_ms"`
		RTTMS    float64 `json:"rtt_ms"`
	}{plain(e), e.Loss, e.JitterMS, e.RTTMS})
}

// NodeInfo is the answer of GET /v1/node.
type NodeInfo struct {
	PeerID string `json:"peer_id"`
	// Addrs are the addresses the node announces (full, with /p2p/).
	Addrs []string `json:"addrs"`
	// Reachability is public, private or unknown (AutoNAT's finding, or
	// --reachability).
	Reachability string `json:"reachability"`
	// DialableAddrs are the announced addresses that nodes beyond this
	// machine's own networks can dial: public addresses and relay
	// circuits.
	DialableAddrs []string `json:"dialable_addrs"`
	// WANAddr is the public address at which AutoNAT v2 confirmed that a
	// NAT forwards to this node (a port forward, a 1:1 NAT); "" if none.
	WANAddr string `json:"wan_addr"`
	// TURNRelayIP is the address the node's relayed candidates carry
	// (--turn-relay-ip, the confirmed WAN address, else the relay's own);
	// "" with --turn off.
	TURNRelayIP string `json:"turn_relay_ip"`
	// Relays are the nodes holding a relay slot for this (private) node.
	Relays       []string      `json:"relays"`
	Bootstrap    BootstrapInfo `json:"bootstrap"`
	Peers        []string      `json:"peers"`
	RoutingTable int           `json:"routing_table"`
	// DHTMode is server or client.
	DHTMode   string `json:"dht_mode"`
	Terminals int    `json:"terminals"`
	// HTTPSSHA256 is the SHA-256 fingerprint of the --https listener's
	// certificate (colon-separated hex pairs, as browsers show it), for
	// checking a self-signed one; "" without --https.
	HTTPSSHA256 string `json:"https_sha256,omitempty"`
}

// Bootstrap states (BootstrapInfo.State).
const (
	BootNone       = "none"       // no bootstrap nodes configured
	BootConnecting = "connecting" // first dials under way
	BootConnected  = "connected"  // connected to at least one
	BootFailing    = "failing"    // none reachable; retrying with backoff
)

// BootstrapInfo is the bootstrap state in GET /v1/node.
type BootstrapInfo struct {
	State string          `json:"state"`
	Peers []BootstrapPeer `json:"peers"`
}

// BootstrapPeer is one bootstrap node: its address as configured, whether
// the node is connected to it, and the failed dials since it last was.
type BootstrapPeer struct {
	Addr      string `json:"addr"`
	Connected bool   `json:"connected"`
	Failures  int    `json:"failures"`
	Error     string `json:"error,omitempty"`
	NextDial  string `json:"next_dial,omitempty"` // RFC 3339, while not connected
}

// SIPUser is a SIP phone's credentials: the body of POST /v1/sip/users.
// Name and Phone, if set, are the identifiers the phone is registered
// with (else its display name and, when it is a number, its user part).
type SIPUser struct {
	User     string `json:"user"`
	Password string `json:"password"`
	Name     string `json:"name,omitempty"`
	Phone    string `json:"phone,omitempty"`
}

// SIPUserInfo is a SIP user as the node answers: the realm, no password
// or hash.
type SIPUserInfo struct {
	User  string `json:"user"`
	Realm string `json:"realm"`
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// SIPBinding is a registered SIP phone as GET /v1/sip/bindings lists it:
// its address of record, where it is (Contact, Source, Transport), the
// terminal it is registered as and when the binding expires.
type SIPBinding struct {
	AOR       string    `json:"aor"`
	Contact   string    `json:"contact"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	Terminal  string    `json:"terminal"`
	ExpiresAt time.Time `json:"expires_at"`
}
