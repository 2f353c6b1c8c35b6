package turn

import "errors"

var (
	// ErrNoRelayIP is returned by [New] when Options.RelayIP is nil.
	ErrNoRelayIP = errors.New("turn: Options.RelayIP must be set")
	// ErrNoListenAddr is returned by [New] when Options.ListenAddr is empty.
	ErrNoListenAddr = errors.New("turn: Options.ListenAddr must be set")
	// ErrBadPorts is returned, wrapped, by [New] when Options.MinPort and
	// MaxPort are not both 0 or a range 1 ≤ MinPort ≤ MaxPort.
	ErrBadPorts = errors.New("turn: bad relay port range")
)

// Errors of allocations, which pion reports to the client as error
// responses.
var (
	errNoFamily = errors.New("turn: no relay address of this family")
	errNoTCP    = errors.New("turn: no TCP relays")
)
