// Package phone is the terminal engine of irmv: what `irmv phone`, `irmv
// call`, the demo and the tests run to register a terminal with its node,
// stay reachable, and place and take calls.
//
// # Life of a Phone
//
// [Start] registers the terminal with its node, signed by the terminal's
// own Ed25519 key (POST /v1/terminals/prepare, sign
// record.SigningBytes(body), POST /v1/terminals; Keepalive is always on),
// opens the node's WebSocket (the node URL with http→ws and path /v1/ws),
// sends hello with the handle and token of the acknowledgement and waits
// for welcome, which names the node and its ICE servers (STUN, and TURN
// with short-lived credentials). From then on it
//
//   - sends a ping every [PingInterval]; the node treats it as the
//     terminal's heartbeat, so the registration stays alive as long as the
//     WebSocket does. A connection that has been silent for three intervals
//     is dropped;
//   - reconnects with exponential backoff (250 ms up to 10 s) when the
//     WebSocket drops, re-registering first if the node refuses the hello.
//     Calls not yet up end (reason "node"); live calls go on (their media
//     does not need the node) and are rejoined through the new WebSocket
//     (see Roaming); the node keeps them for call.RejoinGrace;
//   - registers again every [ReregisterInterval], well before the signed
//     record's record.MaxAge runs out;
//   - takes incoming calls (below).
//
// [Phone.Close] hangs up every call, closes the WebSocket and removes the
// registration.
//
// # Roaming
//
// [Phone.Move] re-registers the terminal at another node (naming the node
// it leaves and its record's sequence number, so the new record outranks
// the old one and the old node withdraws it), connects there and only then
// closes the old WebSocket. With Options.WatchAddresses the Phone also
// re-registers when the machine's addresses change. Either way it sends
// "rejoin" for each live call through its node; the other party's node
// switches the call to the new path, and the caller moves the media to a
// new leg make-before-break (route event with reason "moved"), so that the
// side that moved gathers its new addresses. A Phone whose key registers
// at another node (a newer registration elsewhere) gets "moved" from its
// node and stops: Done is closed and Err is ErrSuperseded.
//
// # Calls
//
// The signalling is call/signal's, over the WebSocket; the media is
// call/media's WebRTC peer. Everything is trickled: a description is sent as
// soon as it exists, each ICE candidate as soon as it is gathered (after the
// description that introduces it), and remote candidates that arrive before
// the peer exists are queued.
//
// A caller ([Phone.Call]) creates its peer, sends invite (a fresh 128-bit
// call ID, its own party and key, the callee's node and handle from the
// search result, the signed offer), emits "ringing" when the callee rings
// and on accept checks the answer's fingerprint signature against the key
// of the search result ([ErrIdentity] if it does not verify). It then waits
// for the media path (ICE and DTLS up, or the first audio packet).
// busy, reject, unavailable, the ring timeout (default [RingTimeout]) and a
// failed or missing connection ([MediaTimeout]) end the call with
// [ErrBusy], [ErrRejected], [ErrUnavailable], [ErrNoAnswer] and
// [ErrFailed].
//
// A callee answers an invite with busy while it is in a call. Otherwise it
// emits "incoming", sends ringing and decides by Options.Answer: "auto"
// accepts at once, "reject" rejects, "ask" calls Options.Ask (whose context
// ends when the caller gives up). On accept it creates its peer (relay-only
// when the Phone or the caller is private), answers the offer (checking the
// fingerprint signature against the caller's key when the invite carries
// one), sends accept and sets its status busy through the API (online again
// when the last call ends). A call whose media path is not up within
// [MediaTimeout] of the accept ends with hangup "no media"; a peer that
// connects but sends no audio (a silent phone) is a working call.
//
// In a connected call each side plays its Play file (re-opened per call),
// records what it receives (Options.RecordDir or CallOptions.Record), emits
// "connected" with setup_ms when the first audio packet arrives (or, if the
// other side sends nothing, one second after the media path came up,
// measured to that moment), "quality" every second and "route" when the
// route changes (see below), and "ended" when either side hangs up or the
// connection is lost.
//
// # Quality and routes
//
// Both sides sample their call every second from the WebRTC statistics
// (media.Meter: loss over the last interval from inbound-rtp and the
// remote-inbound-rtp of the RTCP receiver reports, jitter of both
// directions, RTT of the selected candidate pair; how long no audio has
// arrived, and whether ICE is disconnected) and emit "quality". The
// caller of a call (the ICE-controlling side, which sends the offers) is
// the one that acts, so that the two sides never restart at once: when
// loss, jitter or RTT stay over the thresholds (Options / CallOptions
// MaxLoss, MaxJitter, MaxRTT; defaults [DefaultMaxLoss], [DefaultMaxJitter],
// [DefaultMaxRTT]) for [BadSamples] samples in a row, it moves the call
// to another route. There are three (the names of the "quality" and
// "route" events, and of signal's Route):
//
//   - "direct": the terminals' own addresses (host or server-reflexive
//     candidates), unless either side is relay-only;
//   - "relayed": both sides relay-only, each through its own node's TURN
//     relay (the one of welcome); within one node that is one relay, across
//     two the media passes both;
//   - "relayed-peer": both sides relay-only through the callee's node's
//     relay alone: the caller with the credentials that node sent it in
//     accept (signal's PeerICEServers), the callee with its own. Calls
//     within one node have no such route, and a private phone
//     (Options.RelayOnly) never takes it: that node would learn its
//     address. The name is the caller's view; both sides use it.
//
// From a bad route the call moves to the next of direct → relayed →
// relayed-peer → direct … that it can take (a TURN server for it, direct
// not ruled out) and has not left within the hold-down (Options
// RouteHoldDown, default [RouteHoldDown]); with none it stays. It moves
// make-before-break: it brings up a second WebRTC peer for the same call (a
// leg; relay-only for the relays, since pion applies its ICE transport
// policy only when a peer is made) and offers it in an "update" message
// that names the leg and the route; the callee answers with an "update" of
// its own and makes its side of the leg the same way. Once a side's new
// leg is connected and its chat channel open, that side moves play,
// recording (the same Ogg file) and chat to it, emits "route" (from, to,
// reason) and closes the old leg. A leg that is not up within
// [RerouteTimeout] is abandoned (a "warning") and the call stays where it
// was. Both sides also emit "route" (reason "ice") when the ICE agent of
// the running leg picks a pair of the other kind by itself.
//
// # Conferences
//
// [Phone.Conference] calls several parties at once; [Conference.Add] adds
// one to a running conference. A conference is a mesh: every pair of
// parties has its own Call (its own WebRTC peer), so every party hears
// every other and each other party is recorded into a file of its own
// (Options.RecordDir, or CallOptions.Record with "-<party>" before the
// extension). It is meant for up to [MaxParties] (6) parties: each sends
// its audio once per other party.
//
// Every invite of a conference carries its ID in the invite's Conference
// field (checked and relayed by the nodes); the 128-bit ID is shared by
// all legs.
// A phone that accepted a leg of a conference accepts further legs of it
// at once (whatever Options.Answer says), refuses legs of a conference it
// has left, and answers busy to anything else while in a call. When a leg's
// data channel opens, each side sends every leg a roster (a binary "chat"
// message, JSON {"type":"roster","conference":ID,"parties":[…]}) naming
// the parties it is connected to; a party that learns of one it has no leg
// with calls it if its own node/terminal key sorts first, and otherwise
// waits to be called, retrying busy and unavailable for a while (the other
// may not know the conference yet). A phone in a conference is busy, as in
// any call: its node still passes it the invites of a conference (the
// phone answers busy to those of others). Parties leave by hanging up
// their legs ([Conference.Hangup]); the others go on, except when the
// party leaving is the one that invited them (the caller): a phone whose
// leg to that party ends hangs up all its legs of the conference
// (reason "conference over"), so the conference ends with its caller.
//
// # Known keys
//
// With Options.KnownKeysFile set, a caller remembers the key of every phone
// number and uid it called successfully (a JSON object identifier → base64
// key, e.g. "phone:+4930123456") and emits a "warning" event when a callee's
// key differs from the remembered one. Names are not remembered: several
// terminals may share a name.
package phone
