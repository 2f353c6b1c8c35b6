// Package media is the terminal side of an irmv call: one WebRTC peer
// connection (pion) carrying Opus audio and a "chat" data channel for text.
//
// A call has two Peers. The caller calls [Peer.Offer], the callee
// [Peer.Answer], and the caller [Peer.Accept]s the answer; candidates trickle
// through [Options.OnCandidate] and [Peer.AddCandidate]. How the
// descriptions and candidates travel (the signalling path through the nodes)
// is not this package's business.
//
// # Fingerprint signatures
//
// The signalling path runs through nodes that a terminal does not control. So
// that a node cannot put itself into the media path unseen, each
// [signal.Description] carries the DTLS certificate fingerprint of its SDP
// ("sha-256 AB:CD:…", the value of the a=fingerprint attribute, RFC 8122
// section 5) and an Ed25519 signature by the terminal's key over
//
//	"irmv-dtls-fingerprint:" + Fingerprint
//
// A receiver that knows the sender's key checks the signature and that every
// a=fingerprint attribute of the SDP equals the signed value; DTLS then
// checks that the certificate presented matches the fingerprint.
//
// # Audio
//
// [Peer.Play] sends the Opus packets of an Ogg/Opus stream (RFC 7845) in
// real time; [Peer.Record] writes the received packets into an Ogg/Opus
// stream unchanged, 48 kHz stereo as Opus is negotiated in WebRTC (RFC 7587).
// [Peer.Stats] reports loss, jitter and round-trip time from the RTCP reports
// and the selected ICE candidate pair, and whether the media runs directly or
// through a TURN relay.
package media
