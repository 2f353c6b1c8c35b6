package search

import (
	"testing"

	"github.com/irmv/irmv/search/ident"
	"github.com/irmv/irmv/share/record"
)

func TestMatches(t *testing.T) {
	n, err := ident.NewNormalizer("DE")
	if err != nil {
		t.Fatal(err)
	}
	ids := record.Identifiers{Name: "José Müller-Lüdenscheidt", Phone: "+49301234567", UID: "desk-42", IP: "10.99.0.42"}
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{"030 1234567", true},
		{"+49 30 7654321", false},
		{"uid:desk-42", true},
		{"uid:desk-4", false},
		{"10.99.0.42", true},
		{"10.99.0.43", false},
		{"jose", true},
		{"MÜL", true},
		{"jo lud", true},
		{"jose schmidt", false},
		{"ose", false}, // not the start of a word
	} {
		id, err := n.Parse(tc.q)
		if err != nil {
			t.Fatalf("%q: %v", tc.q, err)
		}
		if got := Matches(n, ids, id); got != tc.want {
			t.Errorf("Matches(%q) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if Matches(n, record.Identifiers{Phone: "+49301234567"}, ident.ID{Kind: ident.KindName, Value: "x"}) {
		t.Error("a terminal without a name matched a name query")
	}
}
