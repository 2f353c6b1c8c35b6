package search

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/record"
)

// Paths a result can be found by (client.Via*).
const (
	ViaLocal = client.ViaLocal
	ViaDHT   = client.ViaDHT
	ViaFlood = client.ViaFlood
	ViaAuto  = client.ViaAuto // only as a request: race them all
)

// Result and Query are the API's shapes of a search, defined in package
// client.
type (
	Result = client.Result
	Query  = client.Query
)

// resultOf builds a result from a verified record.
func resultOf(r *record.Record, b *record.Body, via string) Result {
	return Result{
		Terminal:    b.Terminal,
		Identifiers: b.Identifiers,
		Address:     b.Address,
		Private:     b.Private,
		Status:      r.Status,
		Node:        b.Node,
		Via:         via,
		Verified:    true,
		Signer:      r.Signer,
		Key:         b.Key,
		Seq:         b.Seq,
		Record:      r,
	}
}

// Rank sorts results best match first; results that match equally keep
// their order (of arrival).
func Rank(rs []Result) {
	slices.SortStableFunc(rs, func(a, b Result) int { return cmp.Compare(b.Match, a.Match) })
}

// Best picks the terminal a query means from a finished search's results:
// the one result whose match is better than every other's. When several
// terminals share the best match it returns them, ranked, with an error
// wrapping ErrAmbiguous; with no results, ErrNotFound.
func Best(rs []Result) (Result, []Result, error) {
	if len(rs) == 0 {
		return Result{}, nil, ErrNotFound
	}
	ranked := slices.Clone(rs)
	Rank(ranked)
	n := 1
	for n < len(ranked) && ranked[n].Match == ranked[0].Match {
		n++
	}
	if n > 1 {
		return Result{}, ranked[:n], fmt.Errorf("%w: %d terminals match %s", ErrAmbiguous, n, ranked[0].Match)
	}
	return ranked[0], ranked[:1], nil
}
