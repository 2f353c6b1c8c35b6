package search_test

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/search/flood"
	"github.com/irmv/irmv/share"
)

// directory is what the resolve table registers, on a node in Germany.
// Each terminal's uid names it in the table.
var directory = []client.Registration{
	{UID: "t-lukasz", Name: "Łukasz Żółkiewski"},
	{UID: "t-oyvind", Name: "Øyvind Ærø"},
	{UID: "t-obrien", Name: "Siobhán O'Brien"},
	{UID: "t-annalena", Name: "Anna-Lena Schmidt"},
	{UID: "t-dmitri", Name: "Дмитрий Шостакович"},
	{UID: "t-eleni", Name: "Ελένη Παπαδοπούλου"},
	{UID: "t-pavlos", Name: "Παύλος Βασιλείου"},
	{UID: "t-yuri", Name: "Юрий Гагарин"},
	{UID: "t-djordje", Name: "Đorđe Balašević"},
	{UID: "t-hamrun", Name: "Ħamrun Office"},
	{UID: "t-thorunn", Name: "Þórunn Ægisdóttir"},
	{UID: "t-oeuvre", Name: "Œuvre Atelier"},
	{UID: "t-gross", Name: "Groß Gerau Empfang"},
	{UID: "kim-1", Name: "Kim Berg"},
	{UID: "kim-2", Name: "Kim Berg"},
	{UID: "t-kimberly", Name: "Kimberly Ross"},
	{UID: "callee-b", Name: "Callee b"},
	{UID: "callee-c", Name: "Callee c"},
	{UID: "desk-42", Name: "José Müller", Phone: "030 1234567"},
	{UID: "priya-1", Name: "Priya Raman", Phone: "+1 201-555-0123"},
	{UID: "t-picard", Name: "Jean-Luc Picard"},
	{UID: "t-tolkien", Name: "J.R.R. Tolkien"},
	{UID: "t-sukru", Name: "Şükrü Çelik"},
	{UID: "t-walesa", Name: "Lech Wałęsa"},
	{UID: "t-stockholm", Name: "Reception Stockholm", Phone: "+46 8 123 45 67"},
	{UID: "t-paris", Phone: "+33 1 42 68 53 00"},
	{UID: "t-ml", Name: "Müller-Lüdenscheidt"},
	{UID: "t-tokyo", Name: "東京 オフィス"},
	{UID: "123456", Name: "Lobby"},
}

// resolveTests are queries as people type them, at the asking node's
// region, with every terminal that must match and the one Best picks
// ("" with several matches: ambiguous; "" with none: nothing found).
var resolveTests = []struct {
	region, q string
	want      []string
	best      string
}{
	// Letters Unicode does not decompose.
	{"DE", "lukasz", []string{"t-lukasz"}, "t-lukasz"},
	{"DE", "Łukasz Żółkiewski", []string{"t-lukasz"}, "t-lukasz"},
	{"DE", "lukasz zolkiewski", []string{"t-lukasz"}, "t-lukasz"},
	{"DE", "zolk", []string{"t-lukasz"}, "t-lukasz"},
	{"DE", "oyvind", []string{"t-oyvind"}, "t-oyvind"},
	{"DE", "OYVIND AERO", []string{"t-oyvind"}, "t-oyvind"},
	{"DE", "ærø", []string{"t-oyvind"}, "t-oyvind"},
	{"DE", "djordje", nil, ""}, // "đ" is "d", not "dj"
	{"DE", "dorde balasevic", []string{"t-djordje"}, "t-djordje"},
	{"DE", "hamrun", []string{"t-hamrun"}, "t-hamrun"},
	{"DE", "thorunn", []string{"t-thorunn"}, "t-thorunn"},
	{"DE", "aegisdottir thorunn", []string{"t-thorunn"}, "t-thorunn"},
	{"DE", "oeuvre", []string{"t-oeuvre"}, "t-oeuvre"},
	{"DE", "gross", []string{"t-gross"}, "t-gross"},
	{"DE", "groß gerau", []string{"t-gross"}, "t-gross"},
	{"DE", "GROSS GERAU EMPFANG", []string{"t-gross"}, "t-gross"},
	{"DE", "sukru celik", []string{"t-sukru"}, "t-sukru"},
	{"DE", "şükrü", []string{"t-sukru"}, "t-sukru"},
	{"DE", "walesa", []string{"t-walesa"}, "t-walesa"},
	{"DE", "lech wał", []string{"t-walesa"}, "t-walesa"},
	{"DE", "jose muller", []string{"desk-42"}, "desk-42"},
	{"DE", "Ｊｏｓé", []string{"desk-42"}, "desk-42"},
	// Punctuation inside a word: joined and split.
	{"DE", "obrien", []string{"t-obrien"}, "t-obrien"},
	{"DE", "brien", []string{"t-obrien"}, "t-obrien"},
	{"DE", "o'brien", []string{"t-obrien"}, "t-obrien"},
	{"DE", "O’Brien Siobhan", []string{"t-obrien"}, "t-obrien"},
	{"DE", "siobhan o brien", []string{"t-obrien"}, "t-obrien"},
	{"DE", "annalena", []string{"t-annalena"}, "t-annalena"},
	{"DE", "lena schmidt", []string{"t-annalena"}, "t-annalena"},
	{"DE", "anna lena schmidt", []string{"t-annalena"}, "t-annalena"},
	{"DE", "jean luc", []string{"t-picard"}, "t-picard"},
	{"DE", "jeanluc picard", []string{"t-picard"}, "t-picard"},
	{"DE", "jrr tolkien", []string{"t-tolkien"}, "t-tolkien"},
	{"DE", "j.r.r. tolkien", []string{"t-tolkien"}, "t-tolkien"},
	{"DE", "tolk", []string{"t-tolkien"}, "t-tolkien"},
	{"DE", "ludenscheidt", []string{"t-ml"}, "t-ml"},
	{"DE", "muller", []string{"desk-42", "t-ml"}, ""}, // two prefix matches
	{"DE", "muller-ludenscheidt", []string{"t-ml"}, "t-ml"},
	// Other scripts: as written and transliterated.
	{"DE", "Дмитрий", []string{"t-dmitri"}, "t-dmitri"},
	{"DE", "шостакович дмитрий", []string{"t-dmitri"}, "t-dmitri"},
	{"DE", "dmitrii shostakovich", []string{"t-dmitri"}, "t-dmitri"},
	{"DE", "shostak", []string{"t-dmitri"}, "t-dmitri"},
	{"DE", "Ελένη", []string{"t-eleni"}, "t-eleni"},
	{"DE", "ελενη παπαδοπουλου", []string{"t-eleni"}, "t-eleni"},
	{"DE", "papadopoulou", []string{"t-eleni"}, "t-eleni"},
	{"DE", "ΠΑΠΑΔ", []string{"t-eleni"}, "t-eleni"},
	{"DE", "東京", []string{"t-tokyo"}, "t-tokyo"},
	{"DE", "eleni", []string{"t-eleni"}, "t-eleni"}, // η as Greeks write it
	{"DE", "elene", []string{"t-eleni"}, "t-eleni"}, // and as unidecode reads it
	{"DE", "eleni papadopoulou", []string{"t-eleni"}, "t-eleni"},
	{"DE", "pavlos vasileiou", []string{"t-pavlos"}, "t-pavlos"},
	{"DE", "vasil", []string{"t-pavlos"}, "t-pavlos"},
	{"DE", "Παύλος", []string{"t-pavlos"}, "t-pavlos"},
	{"DE", "dmitry shostakovich", []string{"t-dmitri"}, "t-dmitri"},
	{"DE", "dmitriy", []string{"t-dmitri"}, "t-dmitri"},
	{"DE", "yuri gagarin", []string{"t-yuri"}, "t-yuri"},
	{"DE", "iurii", []string{"t-yuri"}, "t-yuri"},
	{"DE", "gagarin yury", []string{"t-yuri"}, "t-yuri"},
	// Each query word its own name word.
	{"DE", "callee-c", []string{"callee-c"}, "callee-c"},
	{"DE", "callee c", []string{"callee-c"}, "callee-c"},
	{"DE", "callee", []string{"callee-b", "callee-c"}, ""},
	{"DE", "callee callee", nil, ""},
	{"DE", "kim berg", []string{"kim-1", "kim-2"}, ""},
	{"DE", "kim", []string{"kim-1", "kim-2", "t-kimberly"}, ""},
	{"DE", "kimberly", []string{"t-kimberly"}, "t-kimberly"},
	{"DE", "kim-2", []string{"kim-2"}, "kim-2"}, // "2" begins no word of "Kim Berg"
	{"DE", "berg kim", []string{"kim-1", "kim-2"}, ""},
	{"DE", "ross kim", []string{"t-kimberly"}, "t-kimberly"},
	// Bare unique IDs.
	{"DE", "desk-42", []string{"desk-42"}, "desk-42"},
	{"DE", "priya-1", []string{"priya-1"}, "priya-1"},
	{"DE", "uid:priya-1", []string{"priya-1"}, "priya-1"},
	{"DE", "123456", []string{"123456"}, "123456"},
	{"", "123456", []string{"123456"}, "123456"},
	{"DE", "priya", []string{"priya-1"}, "priya-1"},
	{"DE", "lobby", []string{"123456"}, "123456"},
	// Phone numbers in every written form.
	{"DE", "030 1234567", []string{"desk-42"}, "desk-42"},
	{"DE", "030/123 45 67", []string{"desk-42"}, "desk-42"},
	{"DE", "(030) 123-4567", []string{"desk-42"}, "desk-42"},
	{"DE", "030.123.45.67", []string{"desk-42"}, "desk-42"},
	{"US", "+49 (0)30 123 45 67", []string{"desk-42"}, "desk-42"},
	{"", "0049 30 1234567", []string{"desk-42"}, "desk-42"},
	{"", "tel:+49-30-1234567", []string{"desk-42"}, "desk-42"},
	{"US", "(201) 555-0123", []string{"priya-1"}, "priya-1"},
	{"US", "201.555.0123", []string{"priya-1"}, "priya-1"},
	{"DE", "+1 201 555 0123", []string{"priya-1"}, "priya-1"},
	{"DE", "001 201 555 0123", []string{"priya-1"}, "priya-1"},
	{"SE", "08-123 45 67", []string{"t-stockholm"}, "t-stockholm"},
	{"SE", "08 123 456 7", []string{"t-stockholm"}, "t-stockholm"},
	{"DE", "+46 (0)8 123 45 67", []string{"t-stockholm"}, "t-stockholm"},
	{"FR", "01 42 68 53 00", []string{"t-paris"}, "t-paris"},
	{"DE", "+33 1 42 68 53 00", []string{"t-paris"}, "t-paris"},
	{"DE", "tel:+33142685300", []string{"t-paris"}, "t-paris"},
	{"DE", "08-123 45 67", nil, ""}, // a German number nobody has
	{"DE", "reception", []string{"t-stockholm"}, "t-stockholm"},
}

func TestResolveTable(t *testing.T) {
	if len(resolveTests) < 60 {
		t.Fatalf("%d cases; the table must hold at least 60", len(resolveTests))
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	de, err := ident.NewNormalizer("DE")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := share.Open(share.Options{Path: t.TempDir() + "/t.db", NodeKey: key, Normalizer: de})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, r := range directory {
		r.Address = "10.99.0.1"
		if _, err := reg.Register(r); err != nil {
			t.Fatalf("register %+v: %v", r, err)
		}
	}
	for _, tt := range resolveTests {
		n, err := ident.NewNormalizer(tt.region)
		if err != nil {
			t.Fatal(err)
		}
		readings, err := n.Readings(tt.q)
		if err != nil {
			t.Errorf("[%s] %q: %v", tt.region, tt.q, err)
			continue
		}
		var results []client.Result
		var got []string
		for _, rec := range flood.MatchAll(reg, readings, 0) {
			b, err := rec.Decoded()
			if err != nil {
				t.Fatal(err)
			}
			m := search.MatchOf(n, b.Identifiers, readings)
			if m == ident.MatchNone {
				t.Errorf("[%s] %q: the index returned %s, which does not match", tt.region, tt.q, b.Identifiers.UID)
			}
			results = append(results, client.Result{Terminal: b.Identifiers.UID, Match: m})
			got = append(got, b.Identifiers.UID)
		}
		sort.Strings(got)
		want := slices.Clone(tt.want)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("[%s] %q matches %q, want %q", tt.region, tt.q, got, want)
		}
		best, tied, err := search.Best(results)
		switch {
		case tt.best != "" && (err != nil || best.Terminal != tt.best):
			t.Errorf("[%s] %q: best %q (%v), want %q", tt.region, tt.q, best.Terminal, err, tt.best)
		case tt.best == "" && len(tt.want) > 1 && !errors.Is(err, search.ErrAmbiguous):
			t.Errorf("[%s] %q: best %q, %v; want ambiguous", tt.region, tt.q, best.Terminal, err)
		case tt.best == "" && len(tt.want) > 1 && len(tied) < 2:
			t.Errorf("[%s] %q: ambiguous among %d", tt.region, tt.q, len(tied))
		case len(tt.want) == 0 && !errors.Is(err, search.ErrNotFound):
			t.Errorf("[%s] %q: %v, want nothing found", tt.region, tt.q, err)
		}
	}
}

// TestReadingsRegion checks that a national number asked at a node
// without a region is an error that names --region, not a name search.
func TestReadingsRegion(t *testing.T) {
	n := &ident.Normalizer{}
	for _, q := range []string{"08-123 45 67", "030 1234567", "(030) 123-4567", "0301234567"} {
		_, err := n.Readings(q)
		if !errors.Is(err, ident.ErrNeedRegion) || !strings.Contains(err.Error(), "--region") {
			t.Errorf("Readings(%q) err = %v, want one naming --region", q, err)
		}
	}
	for _, q := range []string{"+46 8 123 45 67", "4711", "desk-42"} {
		if _, err := n.Readings(q); err != nil {
			t.Errorf("Readings(%q): %v", q, err)
		}
	}
}
