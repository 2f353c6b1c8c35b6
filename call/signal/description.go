package signal

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
)

// Errors of [Description.Verify], returned wrapped.
var (
	// ErrBadFingerprintSig: a key is given and the description's
	// fingerprint signature is missing or does not verify.
	ErrBadFingerprintSig = errors.New("bad fingerprint signature")
	// ErrFingerprintMismatch: the SDP has no a=fingerprint attribute or one
	// that differs from the signed Fingerprint.
	ErrFingerprintMismatch = errors.New("SDP fingerprint does not match the signed fingerprint")
)

// fingerprintContext prefixes the signed fingerprint so that the signature
// cannot be replayed as a signature over anything else the terminal key
// signs.
const fingerprintContext = "irmv-dtls-fingerprint:"

// Description is one side's session description as it travels in invite,
// accept and update messages (Desc): the SDP with the DTLS certificate
// fingerprint it names (RFC 8122 section 5), signed by the terminal's
// Ed25519 key over "irmv-dtls-fingerprint:" + Fingerprint, so that a node
// on the signalling path cannot put itself into the media path unseen.
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

// NewDescription describes sdp: its first a=fingerprint, signed with key
// unless key is nil. Errors wrap [ErrFingerprintMismatch] when the SDP has
// no fingerprint.
func NewDescription(typ, sdp string, key ed25519.PrivateKey) (Description, error) {
	fps := sdpFingerprints(sdp)
	if len(fps) == 0 {
		return Description{}, fmt.Errorf("%w: local SDP has no a=fingerprint", ErrFingerprintMismatch)
	}
	d := Description{Type: typ, SDP: sdp, Fingerprint: fps[0]}
	if key != nil {
		d.Sig = ed25519.Sign(key, []byte(fingerprintContext+d.Fingerprint))
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
		if !ed25519.Verify(key, []byte(fingerprintContext+d.Fingerprint), d.Sig) {
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
