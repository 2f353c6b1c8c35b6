package phone

import (
	"encoding/json"
	"time"

	"github.com/irmv/irmv/call/signal"
)

// Event types.
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
	// EventMoved: Move registered the terminal at another node (Self).
	EventMoved = "moved"
	// EventSuperseded: a newer registration of this terminal's key at
	// another node replaced this one (Reason); the Phone stopped.
	EventSuperseded = "superseded"
)

// Event is something that happened to a Phone or one of its calls. It is
// the one JSON shape of call events: the lines of `irmv call --json` and
// `irmv phone --json`, and what tests look at.
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
	Reason   string  `json:"reason,omitempty"`
	Text     string  `json:"text,omitempty"`
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
