package ident

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Match says how well a terminal's identifier answers a query, from worst
// to best. Clients rank results by it.
type Match uint8

// Match levels.
const (
	// MatchNone: the identifier does not answer the query.
	MatchNone Match = iota
	// MatchPrefix: each query word begins a different word of the name.
	MatchPrefix
	// MatchWords: the query holds all of the name's words, whole, in
	// another order.
	MatchWords
	// MatchExact: the query is the whole identifier (a name's words in
	// their order; a phone number, unique ID or IP address).
	MatchExact
)

var matchNames = [...]string{MatchNone: "none", MatchPrefix: "prefix", MatchWords: "words", MatchExact: "exact"}

// String returns "none", "prefix", "words" or "exact".
func (m Match) String() string {
	if int(m) < len(matchNames) {
		return matchNames[m]
	}
	return "none"
}

// MarshalText encodes m as its name.
func (m Match) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText decodes a name written by MarshalText; an empty text is
// MatchNone.
func (m *Match) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = MatchNone
		return nil
	}
	for i, name := range matchNames {
		if string(b) == name {
			*m = Match(i)
			return nil
		}
	}
	return fmt.Errorf("unknown match %q", b)
}

// joiner reports whether r joins the parts of one word: "O'Brien",
// "Anna-Lena", "J.R.R." are one word each, matched joined and split.
func joiner(r rune) bool {
	switch r {
	case '\'', '\u2019', '\u02bc', '\u2018', '.', '\u00b7', '_':
		return true
	}
	return unicode.Is(unicode.Pd, r)
}

// inWord reports whether r belongs to a word (marks stay inside words for
// scripts that write vowels as spacing marks).
func inWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) || joiner(r)
}

// unit is one word (or one part of a word) in every form a query word may
// match: as written and, for other scripts, transliterated.
type unit []string

// nameWords splits a folded name into its parts (split at joiners) and its
// words (joined). "o'brien anna-lena" has parts o, brien, anna, lena and
// words obrien, annalena.
func nameWords(folded string) (parts, words []unit) {
	for _, f := range strings.FieldsFunc(folded, func(r rune) bool { return !inWord(r) }) {
		ps := strings.FieldsFunc(f, joiner)
		if len(ps) == 0 {
			continue
		}
		for _, p := range ps {
			parts = append(parts, forms(p))
		}
		words = append(words, forms(strings.Join(ps, "")))
	}
	return parts, words
}

// forms returns w as written, without the Greek dialytika (as nodes that
// fold it away index and query it), and each of its Latin readings (see
// readings) that differ from it.
func forms(w string) unit {
	u := unit{w}
	if s := withoutDialytika(w); s != w {
		u = append(u, s)
	}
	for _, t := range readings(w) {
		if t != "" && !slices.Contains(u, t) {
			u = append(u, t)
		}
	}
	return u
}

// Terms returns every form a folded name is found by as a whole word: its
// parts and joined words, as written and transliterated, without
// duplicates, in order. Registration publishes them as DHT keys and
// indexes their prefixes.
func Terms(folded string) []string {
	parts, words := nameWords(folded)
	var out []string
	seen := map[string]bool{}
	for _, u := range append(parts, words...) {
		for _, f := range u {
			if !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// QueryTerms returns the forms of the query's first word: a name that
// matches the query has a term that one of them begins. An index looks a
// query up by them and checks candidates with MatchName.
func QueryTerms(folded string) []string {
	parts, words := nameWords(folded)
	if len(parts) == 0 {
		return nil
	}
	out := append([]string{}, parts[0]...)
	for _, f := range words[0] {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// MatchName reports how a folded name answers a folded query. Each query
// word must begin a different word of the name, where a word with joiners
// ("o'brien") is matched both joined ("obrien") and split ("o", "brien"),
// and a word in another script both as written and transliterated.
func MatchName(name, query string) Match {
	nParts, nWords := nameWords(name)
	qParts, qWords := nameWords(query)
	if len(qParts) == 0 {
		return MatchNone
	}
	return max(matchUnits(nParts, qParts), matchUnits(nWords, qWords))
}

// maxQueryWords bounds the work of one match: no name has more words than
// a query of MaxInputLen bytes could name, so longer queries never match.
const maxQueryWords = 64

func matchUnits(name, q []unit) Match {
	if len(q) == 0 || len(q) > len(name) || len(q) > maxQueryWords {
		return MatchNone
	}
	if len(q) == len(name) {
		inOrder := true
		for i := range q {
			if !equalForms(q[i], name[i]) {
				inOrder = false
				break
			}
		}
		if inOrder {
			return MatchExact
		}
		if assign(name, q, equalForms) {
			return MatchWords
		}
	}
	if assign(name, q, prefixForms) {
		return MatchPrefix
	}
	return MatchNone
}

func equalForms(q, w unit) bool {
	for _, a := range q {
		for _, b := range w {
			if a == b {
				return true
			}
		}
	}
	return false
}

func prefixForms(q, w unit) bool {
	for _, a := range q {
		for _, b := range w {
			if strings.HasPrefix(b, a) {
				return true
			}
		}
	}
	return false
}

// assign reports whether every query word can be given its own name word
// it fits (a bipartite matching, by augmenting paths).
func assign(name, q []unit, fits func(q, w unit) bool) bool {
	owner := make([]int, len(name)) // name word -> query word + 1
	var try func(i int, seen []bool) bool
	try = func(i int, seen []bool) bool {
		for j := range name {
			if seen[j] || !fits(q[i], name[j]) {
				continue
			}
			seen[j] = true
			if owner[j] == 0 || try(owner[j]-1, seen) {
				owner[j] = i + 1
				return true
			}
		}
		return false
	}
	for i := range q {
		if !try(i, make([]bool, len(name))) {
			return false
		}
	}
	return true
}
