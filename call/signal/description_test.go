package signal

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// descriptionCase is one case of testdata/description-cases.json, which
// the page's fingerprint.js runs too (node TestBrowserDescriptionCases).
type descriptionCase struct {
	Name string      `json:"name"`
	Key  []byte      `json:"key"`
	Desc Description `json:"desc"`
	// Want is "" (verifies), "sig" (ErrBadFingerprintSig) or "mismatch"
	// (ErrFingerprintMismatch).
	Want string `json:"want"`
}

func TestDescriptionCases(t *testing.T) {
	data, err := os.ReadFile("testdata/description-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []descriptionCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	wants := map[string]error{"": nil, "sig": ErrBadFingerprintSig, "mismatch": ErrFingerprintMismatch}
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			want, ok := wants[tc.Want]
			if !ok {
				t.Fatalf("unknown want %q", tc.Want)
			}
			seen[tc.Want] = true
			var key ed25519.PublicKey
			if tc.Key != nil {
				key = tc.Key
			}
			err := tc.Desc.Verify(key)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Errorf("Verify: %v, want %v", err, want)
			}
		})
	}
	if len(seen) != len(wants) {
		t.Errorf("the cases cover %v, want each of \"\", sig and mismatch", seen)
	}
}

// TestNewDescription: what NewDescription signs verifies against its key
// and no other; an SDP without a fingerprint cannot be described.
func TestNewDescription(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sdp := "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AB:CD:EF\r\n"
	d, err := NewDescription("offer", sdp, priv)
	if err != nil {
		t.Fatal(err)
	}
	if d.Fingerprint != "sha-256 AB:CD:EF" || len(d.Sig) != ed25519.SignatureSize {
		t.Errorf("description %+v: want the SDP's fingerprint, signed", d)
	}
	if err := d.Verify(pub); err != nil {
		t.Errorf("Verify with the signing key: %v", err)
	}
	if err := d.Verify(other); !errors.Is(err, ErrBadFingerprintSig) {
		t.Errorf("Verify with another key: %v, want %v", err, ErrBadFingerprintSig)
	}
	unsigned, err := NewDescription("answer", sdp, nil)
	if err != nil || unsigned.Sig != nil {
		t.Errorf("NewDescription without a key: %+v, %v; want it unsigned", unsigned, err)
	}
	if _, err := NewDescription("offer", "v=0\r\ns=-\r\n", priv); !errors.Is(err, ErrFingerprintMismatch) {
		t.Errorf("NewDescription of an SDP without a fingerprint: %v, want %v", err, ErrFingerprintMismatch)
	}
}
