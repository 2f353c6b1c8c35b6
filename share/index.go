package share

import (
	"cmp"
	"slices"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// maxPrefix is the longest name-token prefix indexed, in runes. Longer
// query tokens are looked up by their first maxPrefix runes and checked
// against the terminal's tokens.
const maxPrefix = 16

// identifiers returns what is published for a terminal: the folded name,
// each of its terms (ident.Terms), the phone number, the uid and the IP identifier.
func identifiers(ids record.Identifiers, folded string, tokens []string) []ident.ID {
	var out []ident.ID
	if folded != "" {
		out = append(out, ident.ID{Kind: ident.KindName, Value: folded})
		for _, t := range tokens {
			if t != folded {
				out = append(out, ident.ID{Kind: ident.KindName, Value: t})
			}
		}
	}
	if ids.Phone != "" {
		out = append(out, ident.ID{Kind: ident.KindPhone, Value: ids.Phone})
	}
	if ids.UID != "" {
		out = append(out, ident.ID{Kind: ident.KindUID, Value: ids.UID})
	}
	if ids.IP != "" {
		out = append(out, ident.ID{Kind: ident.KindIP, Value: ids.IP})
	}
	return out
}

// eachPrefix calls f with every prefix of tok of 1..maxPrefix runes.
func eachPrefix(tok string, f func(string)) {
	runes := 0
	for i := range tok {
		if i > 0 {
			f(tok[:i])
		}
		runes++
		if runes > maxPrefix {
			return
		}
	}
	if tok != "" {
		f(tok)
	}
}

// truncRunes cuts s to at most n runes.
func truncRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

func addTo(m map[string]set, k string, e *entry) {
	s := m[k]
	if s == nil {
		s = make(set, 1)
		m[k] = s
	}
	s[e] = struct{}{}
}

func removeFrom(m map[string]set, k string, e *entry) {
	if s := m[k]; s != nil {
		delete(s, e)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// indexLocked adds e to the maps and returns the identifiers that became
// published.
func (r *Registry) indexLocked(e *entry) (pub []ident.ID) {
	r.byHandle[e.Terminal] = e
	if len(e.body.Key) > 0 {
		r.byKey[string(e.body.Key)] = e
	}
	ids := e.body.Identifiers
	if ids.UID != "" {
		r.byUID[ids.UID] = e
	}
	if ids.Phone != "" {
		addTo(r.byPhone, ids.Phone, e)
	}
	if ids.IP != "" {
		addTo(r.byIP, ids.IP, e)
	}
	for _, t := range e.tokens {
		eachPrefix(t, func(p string) { addTo(r.prefix, p, e) })
	}
	for _, id := range e.ids {
		r.published[id]++
		if r.published[id] == 1 {
			pub = append(pub, id)
		}
	}
	return pub
}

// unindexLocked removes e from the maps and returns the identifiers no
// other terminal still has.
func (r *Registry) unindexLocked(e *entry) (unpub []ident.ID) {
	if r.byHandle[e.Terminal] == e {
		delete(r.byHandle, e.Terminal)
		delete(r.connected, e.Terminal)
	}
	if k := string(e.body.Key); k != "" && r.byKey[k] == e {
		delete(r.byKey, k)
	}
	ids := e.body.Identifiers
	if ids.UID != "" && r.byUID[ids.UID] == e {
		delete(r.byUID, ids.UID)
	}
	if ids.Phone != "" {
		removeFrom(r.byPhone, ids.Phone, e)
	}
	if ids.IP != "" {
		removeFrom(r.byIP, ids.IP, e)
	}
	for _, t := range e.tokens {
		eachPrefix(t, func(p string) { removeFrom(r.prefix, p, e) })
	}
	for _, id := range e.ids {
		if r.published[id]--; r.published[id] <= 0 {
			delete(r.published, id)
			unpub = append(unpub, id)
		}
	}
	return unpub
}

// replaceLocked puts e in place of old (nil for a new terminal) and
// returns the identifiers to publish and unpublish. e is indexed first, so
// identifiers both have never drop to zero references, and unindexing old
// only deletes map entries that still point at old.
func (r *Registry) replaceLocked(old, e *entry) (pub, unpub []ident.ID) {
	pub = r.indexLocked(e)
	if old != nil && old != e {
		unpub = r.unindexLocked(old)
	}
	return pub, unpub
}

// Match returns the records of hosted terminals that match id, with their
// current status and seen time, at most limit of them (limit <= 0: all).
// Phone, uid and IP identifiers match exactly, and the result is sorted by
// handle. A name matches as ident.MatchName says; the best matches come
// first (then by handle), and a limit keeps the best.
func (r *Registry) Match(id ident.ID, limit int) []*record.Record {
	var hits []*entry
	switch id.Kind {
	case ident.KindName:
		// Fold again: a caller may pass the query as typed. Folding is
		// idempotent on folded input.
		_, folded, err := r.norm.Name(id.Value)
		if err != nil {
			return nil
		}
		r.mu.RLock()
		defer r.mu.RUnlock()
		// Every match has a term that a form of the query's first word
		// begins; the candidates are checked word by word.
		level := map[*entry]ident.Match{}
		for _, q := range ident.QueryTerms(folded) {
			for e := range r.prefix[truncRunes(q, maxPrefix)] {
				if _, done := level[e]; done {
					continue
				}
				level[e] = ident.MatchName(e.folded, folded)
				if level[e] != ident.MatchNone {
					hits = append(hits, e)
				}
			}
		}
		// The best matches first, so a limit keeps them.
		slices.SortFunc(hits, func(a, b *entry) int {
			return cmp.Or(cmp.Compare(level[b], level[a]), cmp.Compare(a.Terminal, b.Terminal))
		})
		if limit > 0 && len(hits) > limit {
			hits = hits[:limit]
		}
	case ident.KindPhone:
		r.mu.RLock()
		defer r.mu.RUnlock()
		hits = collect(r.byPhone[id.Value], limit)
	case ident.KindIP:
		r.mu.RLock()
		defer r.mu.RUnlock()
		hits = collect(r.byIP[id.Value], limit)
	case ident.KindUID:
		r.mu.RLock()
		defer r.mu.RUnlock()
		if e := r.byUID[id.Value]; e != nil {
			hits = append(hits, e)
		}
	default:
		return nil
	}
	if len(hits) == 0 {
		return nil
	}
	if id.Kind != ident.KindName {
		slices.SortFunc(hits, func(a, b *entry) int { return cmp.Compare(a.Terminal, b.Terminal) })
	}
	out := make([]*record.Record, len(hits))
	nowMS := r.now().UnixMilli()
	for i, e := range hits {
		rc := *e.Record
		rc.Status = r.shownStatus(e, nowMS)
		out[i] = &rc
	}
	return out
}

func collect(s set, limit int) []*entry {
	var out []*entry
	for e := range s {
		out = append(out, e)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out
}
