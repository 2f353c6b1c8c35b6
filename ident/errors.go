package ident

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions wrap them with the offending value, so test
// with errors.Is. Their texts reach users as they are (API errors, CLI
// messages), so they name no Go package.
var (
	// ErrEmpty means the input was empty or only whitespace.
	ErrEmpty = errors.New("empty identifier")
	// ErrTooLong means the input exceeded MaxInputLen bytes.
	ErrTooLong = errors.New("identifier too long")
	// ErrControl means the input contained a control character.
	ErrControl = errors.New("control character in identifier")
	// ErrInvalidUTF8 means the input was not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8 in identifier")
	// ErrInvalidPhone means the input is not a valid phone number
	// (or needs a default region that was not set).
	ErrInvalidPhone = errors.New("invalid phone number")
	// ErrNeedRegion means a national phone number was given to a
	// Normalizer without a region. It wraps ErrInvalidPhone.
	ErrNeedRegion = fmt.Errorf("%w: a national number needs the node's --region", ErrInvalidPhone)
	// ErrInvalidIP means the input is not an IP address, or carries a zone.
	ErrInvalidIP = errors.New("invalid IP address")
	// ErrInvalidUID means the input is not an acceptable unique ID.
	ErrInvalidUID = errors.New("invalid unique ID")
	// ErrUnknownKind means the identifier kind is not known.
	ErrUnknownKind = errors.New("unknown identifier kind")
	// ErrUnknownRegion means the region is not one phonenumbers supports.
	ErrUnknownRegion = errors.New("unknown region")
)
