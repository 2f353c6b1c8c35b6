package media

import (
	"crypto/ed25519"

	"github.com/irmv/irmv/call/signal"
)

// describe builds the signed description of a local SDP (the relay's
// related address blanked, see blankRelayRelated).
func describe(typ, sdp string, key ed25519.PrivateKey) (signal.Description, error) {
	return signal.NewDescription(typ, blankRelayRelated(sdp), key)
}
