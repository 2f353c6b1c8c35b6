package search

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/record"
)

// resultOf builds a result from a verified record.
func resultOf(r *record.Record, b *record.Body, via string) client.Result {
	return client.Result{
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
func Rank(rs []client.Result) {
	slices.SortStableFunc(rs, func(a, b client.Result) int { return cmp.Compare(b.Match, a.Match) })
}

// Best picks the terminal a query means from a finished search's results:
// the one result whose match is better than every other's. When several
// terminals share the best match it returns them, ranked, with an error
// wrapping ErrAmbiguous; with no results, ErrNotFound.
func Best(rs []client.Result) (client.Result, []client.Result, error) {
	if len(rs) == 0 {
		return client.Result{}, nil, ErrNotFound
	}
	ranked := slices.Clone(rs)
	Rank(ranked)
	n := 1
	for n < len(ranked) && ranked[n].Match == ranked[0].Match {
		n++
	}
	if n > 1 {
		return client.Result{}, ranked[:n], fmt.Errorf("%w: %d terminals match %s", ErrAmbiguous, n, ranked[0].Match)
	}
	return ranked[0], ranked[:1], nil
}
