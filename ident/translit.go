package ident

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gosimple/slug"
	"github.com/gosimple/unidecode"
)

// readings returns the Latin spellings a person may type for a folded word:
// unidecode's transliteration for every script, and for Greek and Cyrillic
// also the spellings in everyday use, which differ from it in a few
// letters. "ελενη" reads "elene" and "eleni"; "дмитрии" (folded "Дмитрий")
// reads "dmitrii", "dmitriy" and "dmitry". An ASCII word reads as itself.
// Words without any Latin reading give nil.
func readings(w string) []string {
	if isASCII(w) {
		return []string{w}
	}
	var out []string
	add := func(t string) {
		if t = plainASCII(t); t != "" {
			out = append(out, t)
		}
	}
	add(unidecode.Unidecode(w))
	if strings.IndexFunc(w, isGreek) >= 0 {
		add(greekELOT(w))
	}
	if strings.IndexFunc(w, isCyrillic) >= 0 {
		usual, short := cyrillicUsual(w)
		add(usual)
		add(short)
	}
	return out
}

func isGreek(r rune) bool    { return unicode.Is(unicode.Greek, r) }
func isCyrillic(r rune) bool { return unicode.Is(unicode.Cyrillic, r) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// plainASCII lower-cases t and keeps only ASCII letters and digits.
func plainASCII(t string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return -1
	}, t)
}

// greekELOT spells a folded Greek word the way Greeks write their names in
// Latin letters (ELOT 743 / ISO 843: η, ι, υ read "i"/"y", β "v", χ "ch",
// φ "f"; gosimple/slug's Greek table) after the digraphs that table reads
// letter by letter: ου "ou", αυ/ευ/ηυ "av"/"ev"/"iv" ("af"/"ef"/"if"
// before a voiceless consonant or at the end), γγ/γξ/γχ "ng"/"nx"/"nch".
// "παυλοσ" -> "pavlos", "ευθυμιοσ" -> "efthymios", "ελενη" -> "eleni".
func greekELOT(w string) string {
	rs := []rune(w)
	var b strings.Builder
	for i := 0; i < len(rs); i++ {
		r, next := rs[i], rune(0)
		if i+1 < len(rs) {
			next = rs[i+1]
		}
		switch {
		case next == 'υ' && strings.ContainsRune("αεη", r):
			b.WriteString(map[rune]string{'α': "a", 'ε': "e", 'η': "i"}[r])
			if i+2 >= len(rs) || strings.ContainsRune("θκξπσςτφχψ", rs[i+2]) {
				b.WriteString("f")
			} else {
				b.WriteString("v")
			}
			i++
		case r == 'ο' && next == 'υ':
			b.WriteString("ou")
			i++
		case r == 'γ' && strings.ContainsRune("γξχ", next):
			b.WriteString("n")
		default:
			b.WriteRune(r)
		}
	}
	return slug.MakeLang(b.String(), "el")
}

// cyrillicUsual spells a folded Cyrillic word the way names are written in
// passports and the press (BGN/PCGN-like), where unidecode follows ICAO:
// я "ya", ю "yu", є "ye", е "ye" at the start of a word or after a vowel,
// и "y" after a vowel (folding turned й into и), ь and ъ silent. short also
// ends "-ий"/"-ый" in a plain "y" ("dmitry"); it is "" when the word has no
// such ending.
func cyrillicUsual(w string) (usual, short string) {
	const vowels = "аеиоуыэюяєіїьъ"
	spell := func(rs []rune) string {
		var b strings.Builder
		for i, r := range rs {
			afterVowel := i > 0 && strings.ContainsRune(vowels, rs[i-1])
			switch {
			case r == 'я':
				b.WriteString("ya")
			case r == 'ю':
				b.WriteString("yu")
			case r == 'є':
				b.WriteString("ye")
			case r == 'е' && (i == 0 || afterVowel):
				b.WriteString("ye")
			case r == 'и' && afterVowel:
				b.WriteString("y")
			case r == 'ь' || r == 'ъ':
			default:
				b.WriteString(unidecode.Unidecode(string(r)))
			}
		}
		return b.String()
	}
	rs := []rune(w)
	usual = spell(rs)
	if n := len(rs); n > 2 && rs[n-1] == 'и' && (rs[n-2] == 'и' || rs[n-2] == 'ы') {
		short = spell(rs[:n-2]) + "y"
	}
	return usual, short
}
