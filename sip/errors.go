package sip

import "errors"

var (
	// ErrInvalid is returned, wrapped with the field and the reason, for
	// credentials that fail validation.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound is returned, wrapped with the user, when no SIP user has
	// that name.
	ErrNotFound = errors.New("sip user not found")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("sip server closed")
)
