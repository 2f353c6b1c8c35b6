package ident

import (
	"fmt"
	"strings"
)

// Kind is the kind of an identifier.
type Kind uint8

// Identifier kinds. The numeric values are not stable across versions;
// persist the text form (MarshalText).
const (
	KindUnknown Kind = iota
	KindName
	KindPhone
	KindUID
	KindIP
)

var kindNames = [...]string{
	KindUnknown: "unknown",
	KindName:    "name",
	KindPhone:   "phone",
	KindUID:     "uid",
	KindIP:      "ip",
}

// String returns the lower-case name of k ("unknown" for values out of range).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// MarshalText encodes k as its name. Out-of-range values are an error so
// they never reach the wire disguised as "unknown".
func (k Kind) MarshalText() ([]byte, error) {
	if int(k) >= len(kindNames) {
		return nil, fmt.Errorf("%w: %d", ErrUnknownKind, uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText decodes a kind name as written by MarshalText.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ParseKind parses a kind name, case-insensitively. "unknown" parses to
// KindUnknown so that MarshalText output always round-trips.
func ParseKind(s string) (Kind, error) {
	for i, name := range kindNames {
		if strings.EqualFold(s, name) {
			return Kind(i), nil
		}
	}
	return KindUnknown, fmt.Errorf("%w: %q", ErrUnknownKind, s)
}
