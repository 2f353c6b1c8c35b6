package ident

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// maxPrefixLen is the length of the longest "kind:" prefix, "phone:".
const maxPrefixLen = len("phone:")

func emptyErr(s string) error { return fmt.Errorf("%w: %q", ErrEmpty, s) }

// Normalize normalises a value of a known kind. For names the Value is the
// folded form, which is what keys and matching use.
func (n *Normalizer) Normalize(k Kind, v string) (ID, error) {
	var (
		out string
		err error
	)
	switch k {
	case KindName:
		_, out, err = n.Name(v)
	case KindPhone:
		out, err = n.Phone(v)
	case KindUID:
		out, err = UID(v)
	case KindIP:
		out, err = IP(v)
	default:
		return ID{}, fmt.Errorf("%w: %q", ErrUnknownKind, k.String())
	}
	if err != nil {
		return ID{}, err
	}
	return ID{Kind: k, Value: out}, nil
}

// Parse guesses what a free-text query is and normalises it:
//   - "name:", "phone:", "uid:" or "ip:" prefix (as written by ID.String):
//     that kind;
//   - "tel:" URI: a phone number;
//   - an IP address;
//   - starts with "+" or "00" and is mostly digits: a phone number, and its
//     error is returned rather than searching for it as a name;
//   - otherwise mostly digits and a valid phone number: a phone number;
//   - else a name (Value is the folded name).
//
// A unique ID cannot be told from a name, so it needs the "uid:" prefix.
// The MaxInputLen limit applies to the value after a prefix, so that
// ID.String() of every ID parses back.
func (n *Normalizer) Parse(query string) (ID, error) {
	if len(query) > MaxInputLen+maxPrefixLen {
		return ID{}, fmt.Errorf("%w: %d bytes (max %d): %q", ErrTooLong, len(query), MaxInputLen, query)
	}
	q := strings.TrimLeftFunc(query, unicode.IsSpace)
	if i := strings.IndexByte(q, ':'); i > 0 && i < maxPrefixLen {
		prefix := q[:i]
		if strings.EqualFold(prefix, "tel") {
			return n.Normalize(KindPhone, q)
		}
		if k, err := ParseKind(prefix); err == nil && k != KindUnknown {
			return n.Normalize(k, q[i+1:])
		}
	}
	t, err := clean(query)
	if err != nil {
		return ID{}, err
	}
	if _, err := netip.ParseAddr(t); err == nil {
		return n.Normalize(KindIP, t)
	}
	if mostlyDigits(t) {
		if strings.HasPrefix(t, "+") || strings.HasPrefix(t, "＋") || strings.HasPrefix(t, "00") {
			return n.Normalize(KindPhone, t)
		}
		if id, err := n.Normalize(KindPhone, t); err == nil {
			return id, nil
		}
	}
	return n.Normalize(KindName, t)
}

// mostlyDigits reports whether s has at least three digits and digits make
// up at least half of its non-space runes, i.e. it reads like a number
// rather than a name with a number in it.
func mostlyDigits(s string) bool {
	digits, other := 0, 0
	for _, r := range s {
		switch {
		case unicode.IsDigit(r):
			digits++
		case unicode.IsSpace(r):
		default:
			other++
		}
	}
	return digits >= 3 && digits >= other
}
