package ident

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Normalizer normalises identifiers whose meaning depends on configuration:
// national phone numbers need a default region. The zero value (and a nil
// *Normalizer) accepts only international phone numbers. Safe for
// concurrent use.
type Normalizer struct {
	// Region is the ISO 3166 country for national phone numbers, e.g. "DE";
	// "" means only international (+.. or 00..) forms parse.
	Region string
}

// NewNormalizer returns a Normalizer for region, upper-cased. An empty
// region is allowed; a region phonenumbers has no metadata for is not.
func NewNormalizer(region string) (*Normalizer, error) {
	r := strings.ToUpper(strings.TrimSpace(region))
	if r != "" && !phonenumbers.GetSupportedRegions()[r] {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRegion, region)
	}
	return &Normalizer{Region: r}, nil
}

func (n *Normalizer) region() string {
	if n == nil || n.Region == "" {
		return phonenumbers.UNKNOWN_REGION
	}
	return strings.ToUpper(n.Region)
}

// Phone normalises a phone number in any common written form ("030 1234567",
// "+49 (30) 123-4567", "0049 30 1234567", "tel:+49-30-1234567") to E.164.
//
// The number must be valid by phonenumbers' metadata (IsValidNumber), not
// merely possible: a typo that is the right length would otherwise become a
// key nobody can find, and short codes like "112" would be accepted.
// Extensions are rejected because E.164 cannot carry them, and dropping them
// would make two terminals share one key.
func (n *Normalizer) Phone(s string) (string, error) {
	t, err := clean(s)
	if err != nil {
		return "", err
	}
	num, perr := phonenumbers.Parse(t, n.region())
	if (perr != nil || !phonenumbers.IsValidNumber(num)) && strings.HasPrefix(t, "00") {
		// "00" is the ITU international prefix; honour it even without a
		// region, or where the region dials abroad differently (US: 011).
		num, perr = phonenumbers.Parse("+"+t[2:], phonenumbers.UNKNOWN_REGION)
	}
	if errors.Is(perr, phonenumbers.ErrInvalidCountryCode) && n.region() == phonenumbers.UNKNOWN_REGION &&
		!strings.HasPrefix(t, "+") && !strings.HasPrefix(t, "＋") && !strings.HasPrefix(t, "00") {
		return "", fmt.Errorf("%w: %q (or write it with + and the country code)", ErrNeedRegion, s)
	}
	if perr != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidPhone, s, perr)
	}
	if num.GetExtension() != "" {
		return "", fmt.Errorf("%w: extensions not supported: %q", ErrInvalidPhone, s)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%w: %q", ErrInvalidPhone, s)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
