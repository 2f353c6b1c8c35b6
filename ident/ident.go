package ident

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxInputLen is the longest input, in bytes, any function accepts. It
// bounds work done on untrusted queries from the network.
const MaxInputLen = 256

// MaxUIDLen is the longest unique ID, in characters.
const MaxUIDLen = 128

// clean applies the limits shared by every identifier and returns s trimmed.
func clean(s string) (string, error) {
	if len(s) > MaxInputLen {
		return "", fmt.Errorf("%w: %d bytes (max %d): %q", ErrTooLong, len(s), MaxInputLen, s)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: %q", ErrInvalidUTF8, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%w: %q", ErrControl, s)
		}
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return "", fmt.Errorf("%w: %q", ErrEmpty, s)
	}
	return t, nil
}

// UID normalises a unique ID: trimmed, 1..MaxUIDLen characters, printable,
// no whitespace. Case and form are preserved: a UID is matched as given.
func UID(s string) (string, error) {
	t, err := clean(s)
	if err != nil {
		return "", err
	}
	if utf8.RuneCountInString(t) > MaxUIDLen {
		return "", fmt.Errorf("%w: longer than %d characters: %q", ErrInvalidUID, MaxUIDLen, s)
	}
	for _, r := range t {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "", fmt.Errorf("%w: whitespace or unprintable character: %q", ErrInvalidUID, s)
		}
	}
	return t, nil
}

// IP normalises an IP address to canonical text: IPv4-mapped IPv6 becomes
// IPv4, IPv6 is lower-case and compressed. Zones are rejected because they
// are only meaningful on the host that wrote them.
func IP(s string) (string, error) {
	t, err := clean(s)
	if err != nil {
		return "", err
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return "", fmt.Errorf("%w: %q", ErrInvalidIP, s)
	}
	if a.Zone() != "" {
		return "", fmt.Errorf("%w: zone not allowed: %q", ErrInvalidIP, s)
	}
	return a.Unmap().String(), nil
}
