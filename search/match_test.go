package search

import (
	"testing"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

func TestMatchOf(t *testing.T) {
	n, err := ident.NewNormalizer("DE")
	if err != nil {
		t.Fatal(err)
	}
	ids := record.Identifiers{Name: "José Müller-Lüdenscheidt", Phone: "+49301234567", UID: "desk-42", IP: "10.99.0.42"}
	for _, tc := range []struct {
		q    string
		want ident.Match
	}{
		{"030 1234567", ident.MatchExact},
		{"+49 30 7654321", ident.MatchNone},
		{"uid:desk-42", ident.MatchExact},
		{"desk-42", ident.MatchExact}, // read as a uid too
		{"uid:desk-4", ident.MatchNone},
		{"10.99.0.42", ident.MatchExact},
		{"10.99.0.43", ident.MatchNone},
		{"jose", ident.MatchPrefix},
		{"MÜL", ident.MatchPrefix},
		{"jo lud", ident.MatchPrefix},
		{"jose muller ludenscheidt", ident.MatchExact},
		{"jose mullerludenscheidt", ident.MatchExact},
		{"muller-ludenscheidt jose", ident.MatchWords},
		{"jose schmidt", ident.MatchNone},
		{"ose", ident.MatchNone}, // not the start of a word
	} {
		readings, err := n.Readings(tc.q)
		if err != nil {
			t.Fatalf("%q: %v", tc.q, err)
		}
		if got := MatchOf(n, ids, readings); got != tc.want {
			t.Errorf("MatchOf(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if MatchOf(n, record.Identifiers{Phone: "+49301234567"}, []ident.ID{{Kind: ident.KindName, Value: "x"}}) != ident.MatchNone {
		t.Error("a terminal without a name matched a name query")
	}
}
