package ident

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gosimple/slug"
	"github.com/gosimple/unidecode"
)

// maxReadings bounds the Latin readings of one word. Every reading of a
// name's word is a term: a DHT key that registration publishes and a set
// of prefixes the node indexes.
const maxReadings = 4

// readings returns the Latin spellings a person may type for a folded word,
// without duplicates, at most maxReadings: unidecode's transliteration for
// every script, for Greek also the ELOT 743 spelling and the ones typed by
// ear (greekLatin), for Cyrillic the spellings in everyday use, which
// differ from unidecode's in a few letters. "ελενη" reads "elene" and
// "eleni"; "μπαμπησ" (folded "Μπάμπης") "mpampes", "bampis", "bambis" and
// "babis"; "дмитрии" (folded "Дмитрий") "dmitrii", "dmitriy" and "dmitry".
// An ASCII word reads as itself. Words without any Latin reading give nil.
func readings(w string) []string {
	if isASCII(w) {
		return []string{w}
	}
	var out []string
	add := func(t string) {
		if t = plainASCII(t); t != "" && !slices.Contains(out, t) && len(out) < maxReadings {
			out = append(out, t)
		}
	}
	add(unidecode.Unidecode(w))
	if strings.IndexFunc(w, isGreek) >= 0 {
		for _, style := range greekStyles {
			if strings.Contains(w, style.needs) {
				add(greekLatin(w, style))
			}
		}
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

// greekStyle is one way of writing Greek in Latin letters: how it spells
// the digraphs that single letters do not give, at the start or end of a
// word ([0]) and inside it ([1]), υ alone ("" keeps gosimple/slug's "y"),
// χ ("" keeps "ch"), γι before a vowel at the start of a word or before ω
// ("" keeps "gi"), and whether it
// spells by sound (ear): αι "e", ει and οι "i", αυ/ευ before β or φ "a"/"e"
// (the β or φ gives the "v" or "f").
type greekStyle struct {
	mp, nt, gk [2]string
	ou, y      string
	ch, yv     string
	ear        bool
	// needs is what a word must hold for this style to spell it unlike
	// the one it changes ("" for every word), so readings skips the rest.
	needs string
}

// The Greek styles, in the order readings takes them until it has
// maxReadings: ELOT 743, then by ear with the spellings people type most
// (passports before 2011, the press, Greeks abroad and in Cyprus) one at a
// time.
var (
	// elot743 is ELOT 743 / ISO 843 transcription as the Greek passport
	// office applies it: μπ "b" at the edges of a word and "mp" inside,
	// ντ "nt", γκ "gk", ου "ou", χ "ch", γι "gi".
	elot743 = greekStyle{mp: [2]string{"b", "mp"}, nt: [2]string{"nt", "nt"}, gk: [2]string{"gk", "gk"}, ou: "ou"}
	// greekByEar is how names are commonly typed from their sound: μπ, ντ,
	// γκ "b", "d", "g" at the start and "mb", "nd", "ng" inside, υ "i",
	// ου "ou" as in ELOT 743 ("efthimiou"), χ "h" ("Hatzidakis",
	// "Mihalis"), γι before a vowel "y" ("Yannis", "Yorgos", "Panayotis"),
	// αι "e", ει/οι "i" ("Ekaterini", "Irini").
	greekByEar = greekStyle{mp: [2]string{"b", "mb"}, nt: [2]string{"d", "nd"}, gk: [2]string{"g", "ng"}, ou: "ou", y: "i", ch: "h", yv: "y", ear: true}
	// The same with one spelling changed: ου "u" ("Papadopulos"), χ "ch"
	// ("Charalambos"), μπ "b" inside ("Babis"), γι "yi" ("Yiannis",
	// "Panayiotis").
	greekByEarU  = with(greekByEar, "ου", func(s *greekStyle) { s.ou = "u" })
	greekByEarCh = with(greekByEar, "χ", func(s *greekStyle) { s.ch = "" })
	greekByEarB  = with(greekByEar, "μπ", func(s *greekStyle) { s.mp = [2]string{"b", "b"} })
	greekByEarYi = with(greekByEar, "γι", func(s *greekStyle) { s.yv = "yi" })

	greekStyles = []*greekStyle{&elot743, &greekByEar, &greekByEarU, &greekByEarCh, &greekByEarB, &greekByEarYi}
)

func with(s greekStyle, needs string, change func(*greekStyle)) greekStyle {
	change(&s)
	s.needs = needs
	return s
}

// greekLatin spells a folded Greek word in Latin letters: its digraphs
// as style says, αυ/ευ/ηυ "av"/"ev"/"iv" ("af"/"ef"/"if" before a
// voiceless consonant and at the end), γγ/γξ/γχ "ng"/"nx"/"nch", and the
// single letters by gosimple/slug's Greek table (η, ι "i"; β "v"; χ "ch";
// φ "f"). ϊ and ϋ are vowels of their own: "ταϋγετοσ" -> "taygetos",
// "μαϊου" -> "maiou". "παυλοσ" -> "pavlos", "ευθυμιοσ" -> "efthymios";
// "ντινοσ" -> "ntinos" (ELOT 743), "dinos" (by ear).
func greekLatin(w string, style *greekStyle) string {
	rs := []rune(w)
	at := func(i int) rune {
		if i < len(rs) {
			return rs[i]
		}
		return 0
	}
	var b strings.Builder
	for i := 0; i < len(rs); i++ {
		r, next := rs[i], at(i+1)
		edge := 1 // a digraph at i: 0 at the start or end of the word
		if i == 0 || i+2 == len(rs) {
			edge = 0
		}
		switch {
		case next == 'υ' && strings.ContainsRune("αεη", r):
			b.WriteString(map[rune]string{'α': "a", 'ε': "e", 'η': "i"}[r])
			switch after := at(i + 2); {
			case style.ear && (after == 'β' || after == 'φ'):
			case after == 0 || strings.ContainsRune("θκξπσςτφχψ", after):
				b.WriteString("f")
			default:
				b.WriteString("v")
			}
			i++
		case style.ear && next == 'ι' && strings.ContainsRune("αεο", r):
			b.WriteString(map[rune]string{'α': "e", 'ε': "i", 'ο': "i"}[r])
			i++
		case r == 'ο' && next == 'υ':
			b.WriteString(style.ou)
			i++
		case r == 'μ' && next == 'π':
			b.WriteString(style.mp[edge])
			i++
		case r == 'ν' && next == 'τ':
			b.WriteString(style.nt[edge])
			i++
		case r == 'γ' && next == 'κ':
			b.WriteString(style.gk[edge])
			i++
		case r == 'γ' && strings.ContainsRune("γξχ", next):
			b.WriteString("n")
		case r == 'γ' && next == 'ι' && style.yv != "" && (i == 0 && strings.ContainsRune("αεηοωϋ", at(i+2)) || at(i+2) == 'ω'):
			// Only where the ι is a glide: "γιαννησ", "παναγιωτησ", not
			// "γεωργιου" (γί-ου).
			b.WriteString(style.yv)
			i++
		case (r == 'υ' || r == 'ϋ') && style.y != "":
			b.WriteString(style.y)
		case r == 'χ' && style.ch != "":
			b.WriteString(style.ch)
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
