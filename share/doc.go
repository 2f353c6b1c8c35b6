// Package share is the register of the terminals a node hosts:
// registration and acknowledgement, presence, persistence and publishing.
//
// # Registration
//
// A terminal registers with its identifiers (name, phone, uid; an IP address
// identifier is optional), its current address, a status and options. Every
// value is normalised with package ident before anything is stored, and every
// validation error names the field and the reason; such errors wrap
// ErrInvalid.
//
// A terminal without a key is attested by the node: Register builds the
// record body (identifiers, address, this node's peer ID, sequence number,
// time) and signs it with the node's libp2p key.
//
// A terminal with an Ed25519 key signs its own body in two steps:
//
//  1. Prepare(reg) validates the registration and returns the canonical body
//     bytes: Node is this node, Time is now, Key is the terminal's key, and
//     Terminal is the handle (kept when the key or uid is already
//     registered here).
//  2. The terminal signs record.SigningBytes(body) with its key and calls
//     Register(reg) again with the same fields plus Key, Body and Sig.
//     Register checks that the body says exactly what the registration
//     normalises to, that it names this node, that it was signed within
//     SignWindow, that its Seq is above the current one, and that the
//     signature verifies.
//
// A client.Registration with a Key but no Body and Sig fails with
// ErrSignatureRequired.
//
// Register stores the terminal durably (bbolt; concurrent writes share an
// fsync through group commit) before it returns the acknowledgement (client.Ack):
// the handle, a secret token
// (only its SHA-256 is stored; Authorize checks it), the expiry and the
// normalised identifiers. Re-registering the same key or uid updates the
// existing terminal: same handle, a higher Seq, new token. A record's Seq
// is above the current one here and above client.Registration.Seq (the terminal's
// newest record elsewhere), and at least the time in Unix ms, so that the
// newest registration of a terminal that moved between nodes outranks the
// older ones everywhere; Supersede withdraws the older one (package roam
// carries the notice). A uid held by a
// terminal with a key can only be re-registered with that key.
//
// # Presence
//
// A registration lives for its TTL unless refreshed by Heartbeat. A
// keepalive terminal (one that holds a connection to the node and sends
// heartbeats) that is silent for OfflineAfter is shown offline, and comes
// back with its previous status at its next heartbeat. Serve runs the
// presence loop once a second: it marks silent terminals offline, removes
// expired registrations and re-attests node-signed bodies older than
// record.MaxAge/2. Status lives in the record's unsigned envelope, so status
// changes do not re-sign.
//
// # Persistence
//
// Each terminal is one JSON value in the bbolt bucket "terminals", keyed by
// handle. Registrations, status changes and removals are written before the
// call returns. Heartbeats are written only when the stored expiry lags the
// live one by more than half the TTL, so a crash loses at most that much of
// a terminal's lifetime; the registration itself is never lost.
//
// # Publishing
//
// Every identifier of a hosted terminal — the folded name, each name term (ident.Terms),
// the phone number, the uid and the IP identifier — is announced through the
// Publisher (the node implements it with the DHT). Identifiers are
// reference-counted across terminals: Unpublish is called only when no
// hosted terminal has the identifier any more. Open derives the folded
// name and terms of everything it loads again, with this version's folding,
// and publishes them: a database written by an older version is found by
// today's keys.
//
// # Matching
//
// Match answers lookups and flooded queries from an in-memory index: phone,
// uid and IP identifiers match exactly; a name query matches as
// ident.MatchName says (each query word begins a different word of the
// name), best matches first.
package share
