package media

import "errors"

// Errors of a Peer; test with errors.Is. The texts of those a user meets
// (a file to play, a recording, DTMF keys, chat, codecs) reach CLI
// messages and call events as they are, so they name no Go package.
var (
	// ErrUnexpectedType is returned (wrapped) when a [signal.Description] has the wrong
	// type for the call: Answer wants an "offer", Accept an "answer".
	ErrUnexpectedType = errors.New("media: unexpected description type")

	// ErrNoRelay is returned by [New] when Options.RelayOnly is set without
	// any ICE server to relay through.
	ErrNoRelay = errors.New("media: RelayOnly needs a TURN server in ICEServers")

	// ErrClosed is returned by methods called on, or interrupted by, a closed
	// Peer.
	ErrClosed = errors.New("media: peer closed")

	// ErrChatNotOpen is returned by [Peer.SendText] before the "chat" data
	// channel is open; wait for [Peer.ChatReady].
	ErrChatNotOpen = errors.New("chat channel not open")

	// ErrRecording is returned by [Peer.Record] while another Record runs.
	ErrRecording = errors.New("already recording")

	// ErrNotOpus is returned (wrapped) by [Peer.Play] when the stream is not
	// Ogg/Opus.
	ErrNotOpus = errors.New("not an Ogg/Opus stream")

	// ErrNoCodec is returned (wrapped) by [Peer.Answer] and [Peer.Accept]
	// when the other side's description has no audio codec in common.
	ErrNoCodec = errors.New("no audio codec in common")

	// ErrPlayFormat is returned (wrapped) by [Peer.Play] when the file does
	// not fit the codec the call negotiated: Ogg/Opus plays on Opus calls,
	// WAV (8 kHz, 16-bit PCM) on G.711 calls; nothing is transcoded.
	ErrPlayFormat = errors.New("file does not fit the call's codec")

	// ErrBadDigit is returned by [Peer.SendDTMF] for a key that is not one
	// of DTMFDigits.
	ErrBadDigit = errors.New("not a DTMF digit")
)
