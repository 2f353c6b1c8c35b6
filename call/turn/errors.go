package turn

import "errors"

var (
	// ErrNoRelayIP is returned by [New] when Options.RelayIP is nil.
	ErrNoRelayIP = errors.New("turn: Options.RelayIP must be set")
	// ErrNoListenAddr is returned by [New] when Options.ListenAddr is empty.
	ErrNoListenAddr = errors.New("turn: Options.ListenAddr must be set")
)
