package sip

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
)

// sdesSuites are the SDES crypto suites (RFC 4568, 6188, 7714) the
// bridge takes, in order of preference.
var sdesSuites = []struct {
	name    string
	profile srtp.ProtectionProfile
}{
	{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80},
	{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm},
	{"AES_256_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes256CmHmacSha1_80},
	{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm},
	{"AES_CM_128_HMAC_SHA1_32", srtp.ProtectionProfileAes128CmHmacSha1_32},
}

// suiteProfile is the SRTP profile of an SDES suite name.
func suiteProfile(name string) (srtp.ProtectionProfile, bool) {
	for _, s := range sdesSuites {
		if s.name == name {
			return s.profile, true
		}
	}
	return 0, false
}

// sdesCrypto is one a=crypto attribute: a tag, a suite and its master
// key and salt (concatenated, as inline: carries them).
type sdesCrypto struct {
	tag     int
	suite   string
	keySalt []byte
}

var errCrypto = errors.New("unusable a=crypto")

// maxCryptoTag is the largest tag RFC 4568 allows (9 digits).
const maxCryptoTag = 999999999

// parseCrypto reads an a=crypto value: "TAG SUITE inline:KEY[|LIFETIME]".
// Lines this side cannot honour are errors: an unknown suite, a key of
// the wrong length, an MKI, several keys, or any session parameter
// (RFC 4568 section 6.3: one not understood makes the line unusable).
func parseCrypto(v string) (sdesCrypto, error) {
	var c sdesCrypto
	f := strings.Fields(v)
	if len(f) != 3 {
		return c, fmt.Errorf("%w: want tag, suite and one key, no session parameters", errCrypto)
	}
	tag, err := strconv.Atoi(f[0])
	if err != nil || tag < 0 || tag > maxCryptoTag || len(f[0]) > 9 {
		return c, fmt.Errorf("%w: tag %q", errCrypto, f[0])
	}
	profile, ok := suiteProfile(f[1])
	if !ok {
		return c, fmt.Errorf("%w: suite %q", errCrypto, f[1])
	}
	inline, ok := strings.CutPrefix(f[2], "inline:")
	if !ok || strings.Contains(inline, ";") {
		return c, fmt.Errorf("%w: want one inline key", errCrypto)
	}
	parts := strings.Split(inline, "|")
	switch {
	case len(parts) > 2:
		return c, fmt.Errorf("%w: MKI not supported", errCrypto)
	case len(parts) == 2 && strings.Contains(parts[1], ":"):
		return c, fmt.Errorf("%w: MKI not supported", errCrypto)
	case len(parts) == 2 && !validLifetime(parts[1]):
		return c, fmt.Errorf("%w: lifetime %q", errCrypto, parts[1])
	}
	key, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		// Some phones leave the padding out.
		if key, err = base64.RawStdEncoding.DecodeString(parts[0]); err != nil {
			return c, fmt.Errorf("%w: key is not base64", errCrypto)
		}
	}
	if want := keySaltLen(profile); len(key) != want {
		return c, fmt.Errorf("%w: %s key of %d bytes, want %d", errCrypto, f[1], len(key), want)
	}
	return sdesCrypto{tag: tag, suite: f[1], keySalt: key}, nil
}

// validLifetime accepts "2^N" and a decimal count.
func validLifetime(s string) bool {
	if e, ok := strings.CutPrefix(s, "2^"); ok {
		n, err := strconv.Atoi(e)
		return err == nil && n > 0 && n <= 48
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return err == nil && n > 0
}

func keySaltLen(p srtp.ProtectionProfile) int {
	k, _ := p.KeyLen()
	s, _ := p.SaltLen()
	return k + s
}

// String is the attribute's value, with the key inline.
func (c sdesCrypto) String() string {
	return strconv.Itoa(c.tag) + " " + c.suite + " inline:" + base64.StdEncoding.EncodeToString(c.keySalt)
}

// newCrypto makes a fresh key for suite, under tag.
func newCrypto(tag int, suite string) sdesCrypto {
	p, _ := suiteProfile(suite)
	key := make([]byte, keySaltLen(p))
	rand.Read(key)
	return sdesCrypto{tag: tag, suite: suite, keySalt: key}
}

// sdesOffer is what a phone's SDP says about SRTP on its audio stream.
type sdesOffer struct {
	// proto is the stream's: with RTP/SAVP (or SAVPF) SRTP is required;
	// crypto lines on RTP/AVP are best effort (SRTP when answered).
	proto string
	// cryptos are the usable crypto lines, in the SDP's order.
	cryptos []sdesCrypto
}

// savp reports whether the stream requires SRTP.
func (o sdesOffer) savp() bool { return o.proto == "RTP/SAVP" || o.proto == "RTP/SAVPF" }

var errNoCrypto = errors.New("RTP/SAVP without a usable a=crypto")

// parseSDES reads the SRTP part of the first audio stream (the stream
// parseAudio takes) of an SDP offer or answer.
func parseSDES(body []byte) (sdesOffer, error) {
	var o sdesOffer
	if len(body) == 0 || len(body) > maxSDP {
		return o, errNoAudio
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return o, fmt.Errorf("%w: %v", errNoAudio, err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value <= 0 {
			continue
		}
		o.proto = strings.Join(m.MediaName.Protos, "/")
		for _, a := range m.Attributes {
			if a.Key != "crypto" {
				continue
			}
			if c, err := parseCrypto(a.Value); err == nil {
				o.cryptos = append(o.cryptos, c)
			}
		}
		if o.savp() && len(o.cryptos) == 0 {
			return o, errNoCrypto
		}
		return o, nil
	}
	return o, errNoAudio
}

// choose is the phone's crypto line the bridge answers: its suite is the
// most preferred of those offered (the first line of that suite).
func (o sdesOffer) choose() (sdesCrypto, bool) {
	for _, s := range sdesSuites {
		for _, c := range o.cryptos {
			if c.suite == s.name {
				return c, true
			}
		}
	}
	return sdesCrypto{}, false
}

// answered is the phone's crypto line that answers ours (same tag and
// suite), if any.
func (o sdesOffer) answered(ours sdesCrypto) (sdesCrypto, bool) {
	for _, c := range o.cryptos {
		if c.tag == ours.tag && c.suite == ours.suite {
			return c, true
		}
	}
	return sdesCrypto{}, false
}

// withSDES rewrites the bridge's own SDP (from answerSDP): its audio
// stream gets proto ("RTP/SAVP" or "RTP/AVP") and the crypto line c.
func withSDES(body []byte, proto string, c sdesCrypto) []byte {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return body // never: answerSDP's output parses
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "audio" {
			m.MediaName.Protos = strings.Split(proto, "/")
			m.WithValueAttribute("crypto", c.String())
			break
		}
	}
	out, err := sd.Marshal()
	if err != nil {
		return body
	}
	return out
}
