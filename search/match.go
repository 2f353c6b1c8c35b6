package search

import (
	"strings"

	"github.com/irmv/irmv/search/ident"
	"github.com/irmv/irmv/share/record"
)

// Matches reports whether a terminal's identifiers answer a query: phone
// numbers, unique IDs and IP addresses exactly; a name when every word of
// the folded query begins some word of the folded name. The resolver
// applies it to every record another node returns, so a node can only
// answer with terminals that were asked for.
func Matches(n *ident.Normalizer, ids record.Identifiers, id ident.ID) bool {
	switch id.Kind {
	case ident.KindPhone:
		return ids.Phone != "" && ids.Phone == id.Value
	case ident.KindUID:
		return ids.UID != "" && ids.UID == id.Value
	case ident.KindIP:
		return ids.IP != "" && ids.IP == id.Value
	case ident.KindName:
		if ids.Name == "" {
			return false
		}
		_, folded, err := n.Name(ids.Name)
		if err != nil {
			return false
		}
		words := ident.Tokens(folded)
		qs := ident.Tokens(id.Value)
		if len(qs) == 0 {
			return false
		}
	query:
		for _, q := range qs {
			for _, w := range words {
				if strings.HasPrefix(w, q) {
					continue query
				}
			}
			return false
		}
		return true
	}
	return false
}
