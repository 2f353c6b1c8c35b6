package record

import "errors"

var (
	// ErrTooLarge is returned for a body over MaxBodySize.
	ErrTooLarge = errors.New("record too large")
	// ErrMalformed is returned, wrapped, for a body or record that does not decode.
	ErrMalformed = errors.New("malformed record")
	// ErrBadSignature is returned when a signature does not verify.
	ErrBadSignature = errors.New("bad record signature")
	// ErrWrongNode is returned, wrapped, when a record names another hosting node.
	ErrWrongNode = errors.New("record names another hosting node")
	// ErrStale is returned, wrapped, for a record signed too long ago or in the future.
	ErrStale = errors.New("stale record")
	// ErrKeyMismatch is returned when the signing key is not the body's key.
	ErrKeyMismatch = errors.New("signing key does not match the record's key")
	// ErrBadStatus is returned, wrapped, for an unknown status name.
	ErrBadStatus = errors.New("unknown status")
)
