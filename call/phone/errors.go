package phone

import "errors"

// Errors of [Phone.Call]. They come back wrapped, with the reason the other
// side or the node gave where there is one; test them with errors.Is.
var (
	// ErrBusy: the callee is in a call (its phone or its node said busy).
	ErrBusy = errors.New("busy")
	// ErrRejected: the callee declined the call.
	ErrRejected = errors.New("rejected")
	// ErrUnavailable: the callee's node says the terminal is offline,
	// unknown, or not connected.
	ErrUnavailable = errors.New("unavailable")
	// ErrNoAnswer: the callee rang but did not answer in time.
	ErrNoAnswer = errors.New("no answer")
	// ErrFailed: the call was accepted but the media path failed (ICE or
	// DTLS) or did not come up within MediaTimeout, or signalling failed.
	ErrFailed = errors.New("call failed")
	// ErrIdentity: the callee's answer is not signed by the key of the
	// search result, or its SDP fingerprint differs from the signed one.
	ErrIdentity = errors.New("callee identity does not verify")
	// ErrClosed: the Phone was closed.
	ErrClosed = errors.New("phone closed")
	// ErrNotConnected: the Phone has no WebSocket to its node right now
	// (it is reconnecting).
	ErrNotConnected = errors.New("not connected to the node")
)
