package search

import (
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// MatchOf reports how well a terminal's identifiers answer a query's
// readings, the best over them: phone numbers, unique IDs and IP
// addresses exactly (ident.MatchExact); a name as ident.MatchName says.
// The resolver applies it to every record another node returns, so a node
// can only answer with terminals that were asked for.
func MatchOf(n *ident.Normalizer, ids record.Identifiers, readings []ident.ID) ident.Match {
	best := ident.MatchNone
	for _, id := range readings {
		best = max(best, matchOne(n, ids, id))
	}
	return best
}

func matchOne(n *ident.Normalizer, ids record.Identifiers, id ident.ID) ident.Match {
	var ok bool
	switch id.Kind {
	case ident.KindPhone:
		ok = ids.Phone != "" && ids.Phone == id.Value
	case ident.KindUID:
		ok = ids.UID != "" && ids.UID == id.Value
	case ident.KindIP:
		ok = ids.IP != "" && ids.IP == id.Value
	case ident.KindName:
		if ids.Name == "" {
			return ident.MatchNone
		}
		_, folded, err := n.Name(ids.Name)
		if err != nil {
			return ident.MatchNone
		}
		return ident.MatchName(folded, id.Value)
	}
	if ok {
		return ident.MatchExact
	}
	return ident.MatchNone
}
