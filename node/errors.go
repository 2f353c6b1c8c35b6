package node

import "errors"

var (
	// ErrBadIdentity is returned, wrapped, when the identity key exists but
	// cannot be read or parsed.
	ErrBadIdentity = errors.New("unreadable node identity")
	// ErrBadOptions is returned, wrapped, for invalid Options.
	ErrBadOptions = errors.New("invalid node options")
)
