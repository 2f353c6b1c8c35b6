package ident

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
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

// MaxReadings is the most readings Readings returns.
const MaxReadings = 3

// Readings returns every reading of a free-text query, each normalised:
//   - "name:", "phone:", "uid:" or "ip:" prefix: only that kind;
//   - "tel:" URI: a phone number;
//   - an IP address;
//   - a number ("+49 30 1234567", "030/123 45 67", "5551234"): a phone
//     number (international ones as written, national ones in the
//     Normalizer's region) and, without spaces, a unique ID; a name only
//     when it is no phone number;
//   - otherwise a name and, as a single token ("desk-42"), a unique ID.
//
// A national number that a Normalizer without a region cannot read is an
// error wrapping ErrNeedRegion, not a name; so is an international number
// that is not valid (ErrInvalidPhone).
func (n *Normalizer) Readings(query string) ([]ID, error) {
	if len(query) > MaxInputLen+maxPrefixLen {
		return nil, fmt.Errorf("%w: %d bytes (max %d): %q", ErrTooLong, len(query), MaxInputLen, query)
	}
	q := strings.TrimLeftFunc(query, unicode.IsSpace)
	if i := strings.IndexByte(q, ':'); i > 0 && i < maxPrefixLen {
		prefix := q[:i]
		if strings.EqualFold(prefix, "tel") {
			return one(n.Normalize(KindPhone, q))
		}
		if k, err := ParseKind(prefix); err == nil && k != KindUnknown {
			return one(n.Normalize(k, q[i+1:]))
		}
	}
	t, err := clean(query)
	if err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(t); err == nil {
		return one(n.Normalize(KindIP, t))
	}
	var out []ID
	add := func(id ID, err error) {
		if err == nil {
			out = append(out, id)
		}
	}
	if mostlyDigits(t) {
		phone, err := n.Normalize(KindPhone, t)
		international := strings.HasPrefix(t, "+") || strings.HasPrefix(t, "＋") || strings.HasPrefix(t, "00")
		switch {
		case err == nil:
			out = append(out, phone)
		case international:
			return nil, err
		case n.region() == phonenumbers.UNKNOWN_REGION && phoneLike(t):
			return nil, fmt.Errorf("%w: %q (or write it with + and the country code)", ErrNeedRegion, t)
		}
		add(n.Normalize(KindUID, t))
		if err != nil {
			add(n.Normalize(KindName, t))
		}
		if len(out) == 0 {
			return nil, err
		}
		return out, nil
	}
	name, nerr := n.Normalize(KindName, t)
	add(name, nerr)
	add(n.Normalize(KindUID, t))
	if len(out) == 0 {
		return nil, nerr
	}
	return out, nil
}

func one(id ID, err error) ([]ID, error) {
	if err != nil {
		return nil, err
	}
	return []ID{id}, nil
}

// phoneLike reports whether s is written like a national phone number: at
// least six digits, besides them only spaces and the punctuation numbers
// are written with, and either some of those or a leading trunk "0"
// ("123456" alone may well be a unique ID).
func phoneLike(s string) bool {
	digits, punct := 0, false
	for _, r := range s {
		switch {
		case unicode.IsDigit(r):
			digits++
		case unicode.IsSpace(r), strings.ContainsRune("()-./", r):
			punct = true
		default:
			return false
		}
	}
	return digits >= 6 && (punct || strings.HasPrefix(s, "0"))
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
