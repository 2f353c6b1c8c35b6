package media

import (
	"crypto/ed25519"
	"fmt"
	"strings"
)

// sigContext prefixes the signed fingerprint so that the signature cannot be
// replayed as a signature over anything else the terminal key signs.
const sigContext = "irmv-dtls-fingerprint:"

// Description is one side's session description as it travels through
// signalling.
type Description struct {
	// Type is "offer" or "answer" (webrtc.SDPType's string form).
	Type string `json:"type"`
	// SDP is the session description (RFC 8866).
	SDP string `json:"sdp"`
	// Fingerprint is the value of the SDP's a=fingerprint attribute,
	// e.g. "sha-256 AB:CD:…".
	Fingerprint string `json:"fingerprint"`
	// Sig is the Ed25519 signature over "irmv-dtls-fingerprint:" +
	// Fingerprint; empty when the peer has no key.
	Sig []byte `json:"sig,omitempty"`
}

// sdpFingerprints returns the values of all a=fingerprint attributes, session
// and media level, in order.
func sdpFingerprints(sdp string) []string {
	var fps []string
	for line := range strings.Lines(sdp) {
		line = strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(line, "a=fingerprint:"); ok {
			fps = append(fps, strings.TrimSpace(v))
		}
	}
	return fps
}

// sameFingerprint compares two fingerprint values ignoring case and runs of
// spaces between hash function and value (RFC 8122 section 5 allows both).
func sameFingerprint(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
}

// describe builds a signed Description for a local SDP.
func describe(typ, sdp string, key ed25519.PrivateKey) (Description, error) {
	fps := sdpFingerprints(sdp)
	if len(fps) == 0 {
		return Description{}, fmt.Errorf("%w: local SDP has no a=fingerprint", ErrFingerprintMismatch)
	}
	d := Description{Type: typ, SDP: blankRelayRelated(sdp), Fingerprint: fps[0]}
	if key != nil {
		d.Sig = ed25519.Sign(key, []byte(sigContext+d.Fingerprint))
	}
	return d, nil
}

// Verify checks d against the sender's key: the signature over the
// fingerprint and that every a=fingerprint of the SDP is the signed one.
// With a nil key only the SDP check is made. Errors wrap
// [ErrBadFingerprintSig] or [ErrFingerprintMismatch].
func (d Description) Verify(key ed25519.PublicKey) error {
	if key != nil {
		if len(key) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: public key has %d bytes", ErrBadFingerprintSig, len(key))
		}
		if len(d.Sig) == 0 {
			return fmt.Errorf("%w: description is unsigned", ErrBadFingerprintSig)
		}
		if !ed25519.Verify(key, []byte(sigContext+d.Fingerprint), d.Sig) {
			return fmt.Errorf("%w: signature does not verify", ErrBadFingerprintSig)
		}
	}
	fps := sdpFingerprints(d.SDP)
	if len(fps) == 0 {
		return fmt.Errorf("%w: SDP has no a=fingerprint", ErrFingerprintMismatch)
	}
	for _, fp := range fps {
		if !sameFingerprint(fp, d.Fingerprint) {
			return fmt.Errorf("%w: SDP has %q, signed %q", ErrFingerprintMismatch, fp, d.Fingerprint)
		}
	}
	return nil
}
