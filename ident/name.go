package ident

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gosimple/unidecode"
	"golang.org/x/text/cases"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// newFolder builds the folding chain up to the split-off diacritics, which
// dropMarks removes. Transformers and casers keep state, so each call gets
// its own.
func newFolder() transform.Transformer {
	return transform.Chain(
		norm.NFKC,    // full-width -> ASCII, ligatures "ﬁ" -> "fi"
		cases.Fold(), // case, including "ß" -> "ss"
		runes.Map(cherokeeUpper),
		norm.NFKD, // split off diacritics
	)
}

// cherokeeUpper folds Cherokee to upper case, as Unicode's CaseFolding.txt
// does. x/text's Fold swaps Cherokee case both ways, so folding would not
// be idempotent ("Ꮮ" -> "ꮮ" -> "Ꮮ").
func cherokeeUpper(r rune) rune {
	if unicode.Is(unicode.Cherokee, r) {
		return unicode.ToUpper(r)
	}
	return r
}

// dropMarks removes diacritics (Mn) and invisible format characters (Cf:
// zero-width space, soft hyphen, BOM) from decomposed text, so visually
// equal names fold alike, and composes the rest. It keeps the Greek
// dialytika, which says that ι or υ is a vowel of its own ("Ταΰγετος",
// "Προϊστάμενος": no digraph αυ, οι), and writes a tonos on the first of two
// such vowels as a dialytika on the second ("Κάιρο" -> "καϊρο"), which
// Greek spelling treats alike.
func dropMarks(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	var prev, base rune // the last two base letters
	prevTonos, tonos, dialytika := false, false, false
	flush := func() {
		if base == 0 {
			return
		}
		b.WriteRune(base)
		if (base == 'ι' || base == 'υ') && (dialytika || !tonos && prevTonos && strings.ContainsRune("αεηο", prev)) {
			b.WriteRune('\u0308')
		}
	}
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Cf, r):
		case unicode.Is(unicode.Mn, r):
			tonos = tonos || r == '\u0301'
			dialytika = dialytika || r == '\u0308'
		default:
			flush()
			prev, prevTonos = base, tonos
			base, tonos, dialytika = r, false, false
		}
	}
	flush()
	return norm.NFKC.String(b.String())
}

// withoutDialytika returns w with ϊ, ϋ written ι, υ: the folded form of
// nodes that removed every diacritic.
func withoutDialytika(w string) string {
	if !strings.ContainsAny(w, "ϊϋ") {
		return w
	}
	return strings.NewReplacer("ϊ", "ι", "ϋ", "υ").Replace(w)
}

// Name normalises a terminal name. display is the name as written, trimmed,
// with internal whitespace collapsed to single spaces; folded is the search
// form: width-, case- and diacritic-folded, whitespace collapsed.
// "Ｊｏｓé  Müller" gives display "Ｊｏｓé Müller", folded "jose muller".
func (n *Normalizer) Name(s string) (display, folded string, err error) {
	t, err := clean(s)
	if err != nil {
		return "", "", err
	}
	display = strings.Join(strings.Fields(t), " ")
	folded, err = fold(display)
	if err != nil {
		return "", "", err
	}
	if len(folded) > MaxInputLen {
		// NFKC and folding can expand ("ﷺ", "ß"); keep the stored form
		// within the limit so it can be normalised again.
		return "", "", fmt.Errorf("%w: folded form is %d bytes (max %d): %q", ErrTooLong, len(folded), MaxInputLen, s)
	}
	if folded == "" {
		// Only marks or format characters: nothing left to search for.
		return "", "", emptyErr(s)
	}
	return display, folded, nil
}

// fold returns the search form of s, without limits: every Latin letter
// plain ("ł" -> "l", "æ" -> "ae", "þ" -> "th"), other scripts as written
// without diacritics but the Greek dialytika (their transliteration is
// matched too, see Terms).
func fold(s string) (string, error) {
	f, _, err := transform.String(newFolder(), s)
	if err != nil {
		// Not expected on valid UTF-8; keep it an error, not a panic.
		return "", err
	}
	return strings.Join(strings.Fields(plainLatin(dropMarks(f))), " "), nil
}

// plainLatin replaces the Latin letters that Unicode does not decompose
// ("ł", "ø", "đ", "ħ", "æ", "œ", "þ", "ı") with their transliteration.
func plainLatin(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r < utf8.RuneSelf || !unicode.Is(unicode.Latin, r) {
			if b.Cap() > 0 {
				b.WriteRune(r)
			}
			continue
		}
		t := strings.ToLower(unidecode.Unidecode(string(r)))
		if !isPlain(t) {
			t = string(r) // no plain letters for it: keep it
		}
		if b.Cap() == 0 {
			b.Grow(len(s))
			b.WriteString(s[:i])
		}
		b.WriteString(t)
	}
	if b.Cap() == 0 {
		return s
	}
	return b.String()
}

// isPlain reports whether t is non-empty lower-case ASCII letters and digits.
func isPlain(t string) bool {
	for i := 0; i < len(t); i++ {
		if c := t[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return t != ""
}
