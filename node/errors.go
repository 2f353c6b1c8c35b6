package node

import (
	"errors"
	"syscall"
)

var (
	// ErrBadIdentity is returned, wrapped, when the identity key exists but
	// cannot be read or parsed.
	ErrBadIdentity = errors.New("unreadable node identity")
	// ErrBadOptions is returned, wrapped, for invalid Options.
	ErrBadOptions = errors.New("invalid node options")
	// ErrAddrInUse is returned, wrapped, when another process already
	// listens on a libp2p listen address.
	ErrAddrInUse = errors.New("address already in use")
)

// inUseHint names the flag to change when a listener's address is taken.
func inUseHint(err error, flag string) string {
	if errors.Is(err, syscall.EADDRINUSE) {
		return " (choose another with " + flag + " ADDR)"
	}
	return ""
}
