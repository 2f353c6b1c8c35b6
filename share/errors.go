package share

import "errors"

var (
	// ErrNotFound is returned, wrapped with the handle, when no hosted
	// terminal has the handle.
	ErrNotFound = errors.New("terminal not found")
	// ErrForbidden is returned when a token does not match its terminal, and,
	// wrapped, when a registration would take over a uid or handle held by a
	// terminal with another key.
	ErrForbidden = errors.New("forbidden")
	// ErrInvalid is returned, wrapped with the field name and the reason,
	// for input that fails validation, e.g. `invalid: phone: ...`.
	// ErrNoIdentifier, ErrTTL and ErrSignatureRequired errors match it too.
	ErrInvalid = errors.New("invalid")
	// ErrNoIdentifier is returned, wrapped with ErrInvalid, for a
	// registration without any of name, phone and uid.
	ErrNoIdentifier = errors.New("no identifier: give at least one of name, phone or uid")
	// ErrSignatureRequired is returned, wrapped with ErrInvalid, when a
	// registration carries a terminal key but no signed body: call Prepare,
	// sign the body it returns, and register with key, body and sig.
	ErrSignatureRequired = errors.New("signature required: call Prepare, sign the returned body with the terminal key, then register with key, body and sig")
	// ErrTTL is returned, wrapped with ErrInvalid and the value, for a TTL
	// that is neither 0 (the default) nor within MinTTL..MaxTTL.
	ErrTTL = errors.New("ttl out of range")
	// ErrStale is returned, wrapped, by Supersede when the record that
	// would supersede a hosted terminal is not newer than its record here.
	ErrStale = errors.New("older than the registration here")
	// ErrFull is returned, wrapped, when a new terminal would exceed
	// Options.MaxTerminals.
	ErrFull = errors.New("node full")
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("registry closed")
)
