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
// A Peer negotiates Opus, PCMU and PCMA (G.711, RFC 3551), or the codecs
// of [Options.Codecs]; the answer names one of them, the first of the
// offer's that the answerer takes, and both sides send that one. Nothing
// is transcoded: [Peer.Play] sends the Opus packets of an Ogg/Opus stream
// (RFC 7845) in real time on an Opus call, and a WAV file (8 kHz, 16-bit
// PCM) encoded to μ-law or A-law on a G.711 call; [Peer.Record] writes the
// received Opus packets into an Ogg/Opus stream unchanged, 48 kHz stereo as
// Opus is negotiated in WebRTC (RFC 7587), and G.711 decoded into a WAV
// file. [Peer.Stats] reports loss, jitter and round-trip time from the RTCP
// reports and the selected ICE candidate pair, and whether the media runs
// directly or through a TURN relay.
//
// # DTMF
//
// Key presses (RFC 4733 events: 0-9, *, #, A-D) travel as control
// messages on the chat channel, {"type":"dtmf","digit":"5","duration_ms":
// 120} ([Peer.SendDTMF], [ParseDTMF]), not as telephone-event packets on
// the audio track: pion's receiver switches a remote track's codec with
// each change of payload type while its statistics read that codec
// without a lock (a data race in pion/webrtc v4.2.26), and every call
// samples its statistics. The node's SIP bridge turns a phone's RFC 4733
// packets into these messages and back.
package media
