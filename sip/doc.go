// Package sip is the node's SIP side: a registrar for the SIP phones that
// join an access point (desk phones, DECT bases, softphones), built on
// sipgo (RFC 3261 transactions, rport).
//
// # Registration
//
// A phone sends REGISTER for its address of record sip:USER@node over UDP
// or TCP (one port for both). The registrar answers:
//
//	401  no (or a stale) Authorization: two digest challenges, SHA-256
//	     then MD5 (RFC 8760; qop=auth; stateless nonces valid 5 min)
//	403  unknown user, wrong password, a user registering another AOR,
//	     or an AOR the register of terminals refuses
//	400  malformed: missing To/From/Call-ID/CSeq, a bad Expires, more
//	     than 8 contacts, a bad Authorization header
//	423  Expires below MinExpires (with Min-Expires)
//	200  the binding, with the granted expiry
//
// Credentials are set per user by the operator (AddUser: the API, the
// CLI); only HA1 hashes of the password are stored, one per algorithm.
// Sources in Options.OpenNets register without credentials (off by
// default). There is one binding per AOR, the newest contact wins; it
// keeps the contact, the source address and transport the REGISTER came
// from (RFC 3581 rport: replies and calls go back the same flow) and is
// removed by Expires: 0 or when it expires. The expiry is capped at
// MaxExpires, and over UDP at the shorter MaxExpiresUDP so that the phone
// re-registers before a NAT forgets it; over TCP the phone's CRLF
// keepalives (RFC 5626) are answered.
//
// A registered phone is a hosted terminal (package share): its display
// name (or the name the operator set) is its name, its user part its uid,
// and the user part, when it is a phone number, or the operator's number
// its phone. It is published and searchable like every terminal, online
// while registered, and stored durably; the bindings are stored too.
//
// # Calls
//
// With Options.Switch each bound phone's terminal is attached to the
// node's call switch (call.Line). An INVITE to sip:IDENTIFIER@node is
// authenticated like a REGISTER (auth.go), but with 407 and
// Proxy-Authenticate: the same algorithms and nonces; Proxy-Authorization
// or Authorization is taken; the digest user must be the From user and
// registered here, the digest uri must name this node (and the callee,
// when it has a user part), and each credential places one call (a
// replay gets a new, stale challenge). Wrong credentials, an unknown or
// an unregistered user get 403; all of it is counted in
// irmv_sip_invites_total. From Options.OpenNets an INVITE without
// credentials is taken when the From user registered from the same
// address. It is then resolved with Options.Resolve and bridged
// (bridge.go): 100, then 485 (ambiguous), 404
// (not found), 486 (busy), 488 (neither Opus nor G.711 offered), or an irmv invite
// whose ringing, accept, busy, reject and unavailable map to 180, 200,
// 486, 603 and 480. CANCEL hangs the irmv call up; BYE from either side
// ends both. BYE and re-INVITE must name a bridged call's dialog
// (Call-ID and both tags) and come from its phone's address, CANCEL a
// pending INVITE's transaction; others get 481, counted in
// irmv_sip_outside_dialog_total.
//
// # Media
//
// Nothing is transcoded. The WebRTC leg negotiates the codecs the phone
// has among Opus, PCMU and PCMA (call/media Options.Codecs), Opus first,
// then PCMU, then PCMA; the irmv side's answer takes one (the first it
// has) and the phone is answered with that one. A called phone is
// offered those of the caller's offer, in the same order, and the
// caller's offer is answered with the one the phone took. The phone's RTP
// of that codec passes unchanged into a WebRTC track (call/media
// PassThrough) and back, the payload type rewritten; the bridge latches
// the phone's RTP address to where its packets come from. A re-INVITE
// must keep the call's codec (else 488). While the irmv side sends no
// audio (for 60 ms) the bridge sends the phone silence in the codec
// (G.711's zero level, Opus's 20 ms silence frame) every 20 ms in the
// same stream; the irmv side's next packet follows on (marked).
//
// # RTCP
//
// Each call has an RTP port (even) and the next one. The bridge's answer
// names the RTP port for the phone's RTCP (a=rtcp, RFC 3605; told apart
// from RTP as in RFC 5761), and a=rtcp-mux when the phone offered it;
// RTCP that a phone sends to the next port anyway is taken there too.
// The phone's RTCP is counted in irmv_sip_rtcp_packets_total, not passed
// on (the WebRTC leg has RTCP of its own). The bridge sends the phone
// RTCP (rtcp.go): compound packets of a Sender Report of its stream
// (NTP and RTP time, packet and octet counts; a Receiver Report before
// it sent RTP) with a report block of the phone's stream (fraction lost
// since the last report, cumulative lost, extended highest sequence
// number, jitter, LSR/DLSR of the phone's last Sender Report) and SDES
// CNAME (random per call); the counts and blocks come from
// pion/interceptor's report code. Reports go every 5 s randomised over
// [0.5, 1.5] and divided by e-3/2 (RFC 3550 section 6.3; the first
// after half that), and a BYE (with an empty Receiver Report and the
// SDES) when the call ends; counted in irmv_sip_rtcp_sent_total. They go
// to where the phone's SDP says (its RTP address with a=rtcp-mux, its
// a=rtcp, else its RTP port + 1), and once the phone's RTCP came, to
// where it came from and from the port it came to (latched, like RTP).
// The phone's report blocks on the bridge's stream (loss, jitter, round
// trip from LSR/DLSR) go into the report blocks the WebRTC leg sends of
// the irmv side's stream, which the bridge passes on to the phone
// (call/media Options.OnReport): the worse loss and jitter of the two,
// and DLSR less the phone leg's round trip, for three intervals after
// the phone's report; a block carries no round trip (LSR 0) while the
// phone's is not known or exceeds its DLSR. Sequence numbers and
// timestamps pass, so the phone measures the whole path; the irmv
// side's quality events (loss, jitter) thus cover both legs; their RTT
// is the WebRTC leg's (the ICE pair's), and sip_rtt_ms what the RTCP
// round trip has beyond it: the phone leg's. After a call both ports
// stay open 1.5 s, discarding.
//
// # DTMF
//
// Key presses are RFC 4733 telephone-event packets on the phone leg (the
// phone's payload type and rate; the bridge offers 101 at 8 kHz) and
// call/media control messages on the chat channel of the WebRTC leg (see
// call/media: DTMF). A phone's event is passed on once, when it ends,
// with its duration; a key press from the irmv side is played to the
// phone in the stream of the audio it gets (same SSRC, the next sequence
// numbers, the event's start as timestamp): a packet every 20 ms, the
// first marked, then the end packet three times; at least 100 ms, at
// most 5 s, 50 ms between keys, up to 32 queued.
//
// # SRTP
//
// When a phone's SDP has a=crypto lines (SDES, RFC 4568) the phone leg
// is SRTP (srtp.go, with pion/srtp): on RTP/SAVP required (no usable
// line: 488), on RTP/AVP best effort. The bridge answers the most
// preferred suite it has (AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM,
// AES_256_CM_HMAC_SHA1_80, AEAD_AES_256_GCM, AES_CM_128_HMAC_SHA1_32; no
// MKI, no session parameters) under the phone's tag with a fresh key of
// its own, and offers phones it calls an AES_CM_128_HMAC_SHA1_80 line on
// RTP/AVP (SRTP when the phone answers it; phones without SRTP ignore
// it), then on RTP/SAVP to a phone that refuses that with 488. Packets
// from the phone must authenticate and pass the replay window, else they
// are dropped (and do not move the latched address); a re-INVITE keeps
// the suite and may bring a new key. The phone's RTCP must be SRTCP with
// its key (else dropped as rejected); the bridge's is SRTCP with the
// node's. SRTP covers the
// phone leg only: the node decrypts, and the irmv leg is DTLS-SRTP from
// the node. Counted in irmv_sip_srtp_calls_total and
// irmv_sip_srtp_packets_total.
//
// An irmv invite for a
// phone's terminal becomes an INVITE to its contact, sent to the flow it
// registered from, offering Opus, PCMU and PCMA as above (and
// telephone-event); 180/183 map to
// ringing, 200 to accept (with the bridge's WebRTC answer), 486/600 to
// busy, 603 to reject, anything else to unavailable; a hang-up before the
// answer CANCELs.
//
// # Untrusted input
//
// Each source address (IPv6: its /64) may send Options.Rate requests a
// second (burst twice that); more are dropped before parsing. Unparsable
// and malformed messages, and those over MaxMessage, are dropped or
// refused. Each digest answer is
// taken once (a replayed REGISTER gets a new challenge). Wrong answers
// are limited (guard.go): 10 per source, then one per 6 s; 20 per user,
// then one per 3 s, except from where its phone registered; beyond that
// credentials get 403 unchecked. The TCP listener holds 16 connections
// per source, 1,024 in all (conns.go), and closes those silent for 30 s
// from the start or idle past MaxExpires. On a plain RTP leg only the
// phone's addresses (signalling source, SDP) are heard. A phone places
// at most MaxCallsPerPhone calls at a time, all phones MaxPhoneCalls
// (403). Challenges and refusals are stateless (no transaction kept, no
// retransmission). State per UDP source host:port (sipgo keeps some for
// every one) is bounded: registered phones, calls' phones and at most
// 8,192 sources heard within 64 s (udp.go). All of it is counted in
// irmv_sip_dropped_total by reason.
package sip
