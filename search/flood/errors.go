package flood

import (
	"errors"

	"github.com/irmv/irmv/internal/wire"
)

// Decode errors. Decode and Encode return them wrapped with detail; test
// with errors.Is. The first two are internal/wire's, so a frame breaks the
// same rules with the same error in every protocol.
var (
	// ErrMalformed means a message does not decode or breaks a field rule
	// (unknown type or kind, bad GUID, empty value, bad records, truncated,
	// empty frame).
	ErrMalformed = wire.ErrMalformed
	// ErrOversize means a message is longer than its type allows (length
	// prefix over the limit, or a hit with more than MaxHitRecords records).
	ErrOversize = wire.ErrTooLarge
	// ErrTTL means a query's TTL and hop count break the rules: ttl < 1,
	// hops < 0 or ttl+hops > MaxTTL (for a hit: hops outside 1..MaxTTL).
	ErrTTL = errors.New("flood: bad ttl or hops")
)

// Errors from New.
var (
	// ErrNoHost is returned by New when Options.Host is nil.
	ErrNoHost = errors.New("flood: Options.Host must be non-nil")
	// ErrNoMatcher is returned by New when Options.Matcher is nil.
	ErrNoMatcher = errors.New("flood: Options.Matcher must be non-nil")
)
