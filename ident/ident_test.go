package ident

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func mustNormalizer(t testing.TB, region string) *Normalizer {
	t.Helper()
	n, err := NewNormalizer(region)
	if err != nil {
		t.Fatalf("NewNormalizer(%q): %v", region, err)
	}
	return n
}

func TestKind(t *testing.T) {
	for k, want := range map[Kind]string{
		KindUnknown: "unknown", KindName: "name", KindPhone: "phone", KindUID: "uid", KindIP: "ip", Kind(99): "unknown",
	} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
	for k := KindUnknown; k <= KindIP; k++ {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%v): %v", k, err)
		}
		var back Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("round trip %v: got %v, %v", k, back, err)
		}
	}
	if _, err := Kind(99).MarshalText(); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("MarshalText(99) err = %v, want ErrUnknownKind", err)
	}
	if k, err := ParseKind("PHONE"); err != nil || k != KindPhone {
		t.Errorf("ParseKind(PHONE) = %v, %v", k, err)
	}
	var k Kind
	if err := k.UnmarshalText([]byte("email")); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("UnmarshalText(email) err = %v, want ErrUnknownKind", err)
	}
}

func TestID(t *testing.T) {
	id := ID{Kind: KindPhone, Value: "+4930123456"}
	if got := id.String(); got != "phone:+4930123456" {
		t.Errorf("String() = %q", got)
	}
	if got := id.Key(); got != "irmv/phone/+4930123456" {
		t.Errorf("Key() = %q", got)
	}
	c := id.CID()
	if !c.Defined() || c.Version() != 1 || c.Type() != cid.Raw {
		t.Fatalf("CID() = %v (version %d, codec %x)", c, c.Version(), c.Type())
	}
	want, err := mh.Sum([]byte(id.Key()), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Equals(cid.NewCidV1(cid.Raw, want)) {
		t.Errorf("CID() = %v, want hash of Key()", c)
	}
	if c.Equals(ID{Kind: KindUID, Value: "+4930123456"}.CID()) {
		t.Error("same value with different kinds must give different CIDs")
	}
}

func TestNewNormalizer(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{"DE", "DE", nil},
		{"de", "DE", nil},
		{" us ", "US", nil},
		{"", "", nil},
		{"XX", "", ErrUnknownRegion},
		{"Germany", "", ErrUnknownRegion},
	}
	for _, tt := range tests {
		n, err := NewNormalizer(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("NewNormalizer(%q) err = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && n.Region != tt.want {
			t.Errorf("NewNormalizer(%q).Region = %q, want %q", tt.in, n.Region, tt.want)
		}
	}
}

var phoneTests = []struct {
	region, in, want string
	err              error
}{
	{"DE", "030 1234567", "+49301234567", nil},
	{"DE", "030/1234567", "+49301234567", nil},
	{"DE", "(030) 123 45 67", "+49301234567", nil},
	{"DE", "0049 30 1234567", "+49301234567", nil},
	{"DE", "+49 (30) 123-4567", "+49301234567", nil},
	{"DE", "0171 1234567", "+491711234567", nil},
	{"US", "(201) 555-0123", "+12015550123", nil},
	{"US", "201.555.0123", "+12015550123", nil},
	{"US", "1-201-555-0123", "+12015550123", nil},
	{"US", "011 49 30 1234567", "+49301234567", nil},
	{"US", "0049 30 1234567", "+49301234567", nil},  // ITU "00" honoured
	{"US", "+49 30 1234567", "+49301234567", nil},   // international ignores region
	{"", "+49 30 1234567", "+49301234567", nil},     // no region
	{"", "+49-30-123-4567", "+49301234567", nil},    // dashes
	{"", "+49 (0)30 1234567", "+49301234567", nil},  // (0) trunk prefix
	{"", "0049 30 1234567", "+49301234567", nil},    // 00 without region
	{"", "tel:+49-30-1234567", "+49301234567", nil}, // RFC 3966
	{"", "  +4930123456  ", "+4930123456", nil},     // trimmed
	{"", "＋４９ ３０ １２３４５６７", "+49301234567", nil},     // full-width
	{"", "030 1234567", "", ErrNeedRegion},          // national needs region
	{"DE", "112", "", ErrInvalidPhone},              // short code: possible, not valid
	{"DE", "123", "", ErrInvalidPhone},
	{"US", "(201) 555-012", "", ErrInvalidPhone}, // too short
	{"", "+999 1234567", "", ErrInvalidPhone},    // no such country code
	{"DE", "hello", "", ErrInvalidPhone},
	{"", "+49 30 1234567 ext. 12", "", ErrInvalidPhone}, // extension
	{"", "", "", ErrEmpty},
	{"", "   ", "", ErrEmpty},
	{"", "+49 30\x001234567", "", ErrControl},
	{"", "+49 30\n1234567", "", ErrControl},
	{"", "+49" + strings.Repeat("0", 300), "", ErrTooLong},
	{"", "+49 30 \xff", "", ErrInvalidUTF8},
}

func TestPhone(t *testing.T) {
	for _, tt := range phoneTests {
		n := mustNormalizer(t, tt.region)
		got, err := n.Phone(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("[%s] Phone(%q) = %q, %v; want %q, %v", tt.region, tt.in, got, err, tt.want, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if again, err := n.Phone(got); again != got || err != nil {
			t.Errorf("[%s] Phone(%q) = %q, %v; not idempotent", tt.region, got, again, err)
		}
	}
}

func TestPhoneZeroNormalizer(t *testing.T) {
	var nilN *Normalizer
	for _, n := range []*Normalizer{nilN, {}} {
		if got, err := n.Phone("+49 30 1234567"); err != nil || got != "+49301234567" {
			t.Errorf("%#v.Phone = %q, %v", n, got, err)
		}
	}
	// Region set directly in lower case still works.
	if got, err := (&Normalizer{Region: "de"}).Phone("030 1234567"); err != nil || got != "+49301234567" {
		t.Errorf("lower-case region: %q, %v", got, err)
	}
}

func TestErrorQuotesValue(t *testing.T) {
	_, err := mustNormalizer(t, "DE").Phone("12x")
	if err == nil || !strings.Contains(err.Error(), `"12x"`) {
		t.Errorf("error %v does not quote the input", err)
	}
}

var nameTests = []struct {
	in, display, folded string
	err                 error
}{
	{"Ｊｏｓé  Müller", "Ｊｏｓé Müller", "jose muller", nil},
	{"José Müller", "José Müller", "jose muller", nil},
	{"JOSE MULLER", "JOSE MULLER", "jose muller", nil},
	{"Jose\u0301 Mu\u0308ller", "Jose\u0301 Mu\u0308ller", "jose muller", nil}, // decomposed
	{"Straße", "Straße", "strasse", nil},
	{"STRASSE", "STRASSE", "strasse", nil},
	{"ẞ", "ẞ", "ss", nil},
	{"ﬁsh ﬂow", "ﬁsh ﬂow", "fish flow", nil},
	{"  Anna   Berg  ", "Anna Berg", "anna berg", nil},
	{"Anna\tBerg", "", "", ErrControl},                       // tab is a control character too
	{"Anna\u3000\u3000Berg", "Anna Berg", "anna berg", nil},  // ideographic space collapses
	{"Zoë\u200bKeller", "Zoë\u200bKeller", "zoekeller", nil}, // zero-width space dropped
	{"Ꮮ", "Ꮮ", "Ꮮ", nil},                                     // Cherokee folds to upper case
	{"ꮮ", "ꮮ", "Ꮮ", nil},
	{"Ελένη", "Ελένη", "ελενη", nil},
	// The dialytika stays (ι, υ a vowel of its own); a tonos on the first
	// of two vowels is the same thing in Greek spelling.
	{"Ταΰγετος", "Ταΰγετος", "ταϋγετοσ", nil},
	{"ΤΑΫΓΕΤΟΣ", "ΤΑΫΓΕΤΟΣ", "ταϋγετοσ", nil},
	{"Ταυ\u0308\u0301γετος", "Ταυ\u0308\u0301γετος", "ταϋγετοσ", nil}, // decomposed
	{"Προϊστάμενος Μαΐου", "Προϊστάμενος Μαΐου", "προϊσταμενοσ μαϊου", nil},
	{"Κάιρο Ρόυτερς", "Κάιρο Ρόυτερς", "καϊρο ροϋτερσ", nil},
	{"Ευφροσύνη Παύλου", "Ευφροσύνη Παύλου", "ευφροσυνη παυλου", nil}, // tonos on the second: digraphs
	{"Zoï Anaïs", "Zoï Anaïs", "zoi anais", nil},                      // Latin ï folds as before
	{"Şükrü Çelik", "Şükrü Çelik", "sukru celik", nil},
	{"Office 2nd floor", "Office 2nd floor", "office 2nd floor", nil},
	{"Ｒｏｏｍ　１０１", "Ｒｏｏｍ １０１", "room 101", nil},
	{"東京 オフィス", "東京 オフィス", "東京 オフィス", nil},
	{"\u0301", "", "", ErrEmpty}, // only a mark
	{"", "", "", ErrEmpty},
	{"  ", "", "", ErrEmpty},
	{"Anna\x00Berg", "", "", ErrControl},
	{"Anna\nBerg", "", "", ErrControl},
	{"Anna\u0085Berg", "", "", ErrControl}, // C1 NEL
	{strings.Repeat("a", 257), "", "", ErrTooLong},
	{strings.Repeat("ﷺ", 80), "", "", ErrTooLong}, // 240 bytes, NFKC expands past the limit
	{"Anna \xc3", "", "", ErrInvalidUTF8},
}

func TestName(t *testing.T) {
	n := mustNormalizer(t, "")
	for _, tt := range nameTests {
		display, folded, err := n.Name(tt.in)
		if !errors.Is(err, tt.err) {
			t.Errorf("Name(%q) err = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if display != tt.display || folded != tt.folded {
			t.Errorf("Name(%q) = %q, %q; want %q, %q", tt.in, display, folded, tt.display, tt.folded)
		}
		if _, again, err := n.Name(folded); again != folded || err != nil {
			t.Errorf("Name(%q) folded = %q, %v; not idempotent", folded, again, err)
		}
	}
}

func TestTerms(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"jose muller", []string{"jose", "muller"}},
		{"anna-lena o'neil", []string{"anna", "lena", "o", "neil", "annalena", "oneil"}},
		{"room 101, room 102", []string{"room", "101", "102"}},
		{"  --  ", nil},
		{"", nil},
		{"a a a b", []string{"a", "b"}},
		{"j.r.r. tolkien", []string{"j", "r", "tolkien", "jrr"}},
		{"дмитрии", []string{"дмитрии", "dmitrii", "dmitriy", "dmitry"}},
		{"ελενη", []string{"ελενη", "elene", "eleni"}},
		{"γιωργοσ", []string{"γιωργοσ", "giorgos", "yorgos", "yiorgos"}}, // unidecode and ELOT agree
		{"ταϋγετοσ", []string{"ταϋγετοσ", "ταυγετοσ", "taugetos", "taygetos", "taigetos"}},
		{"東京 オフィス", []string{"東京", "dongjing", "オフィス", "ohuisu"}},
		{"हिन्दी नाम", []string{"हिन्दी", "hindii", "नाम", "naam"}}, // spacing marks stay inside words
	}
	for _, tt := range tests {
		if got := Terms(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Terms(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestReadings checks the Latin spellings people type for names in other
// scripts: unidecode's, and the everyday one for Greek and Cyrillic.
func TestReadings(t *testing.T) {
	n := mustNormalizer(t, "")
	tests := []struct {
		name string   // as registered
		want []string // every one of these must be a reading of the folded name
		not  []string // and none of these
	}{
		// Greek: ELOT 743 (η, ι, υ as i/y; β v; χ ch; φ f; digraphs) and unidecode.
		{"Ελένη", []string{"eleni", "elene"}, []string{"elenh"}},
		{"Βασίλης", []string{"vasilis", "basiles"}, nil},
		{"Παύλος", []string{"pavlos", "paulos"}, []string{"paylos"}},
		{"Ευάγγελος", []string{"evangelos", "euaggelos"}, []string{"eyaggelos"}},
		{"Ευθύμιος", []string{"efthymios"}, []string{"evthymios"}},
		{"Χρήστος", []string{"christos", "khrestos"}, nil},
		{"Κουτσός", []string{"koutsos"}, []string{"koytsos"}},
		{"Φώτης", []string{"fotis", "photes"}, nil},
		{"ΞΑΝΘΗ", []string{"xanthi"}, nil},
		{"Γιώργος", []string{"giorgos"}, nil},
		{"Σπύρος", []string{"spyros"}, nil},
		// Cyrillic: ICAO (unidecode) and the usual press/passport spelling.
		{"Дмитрий", []string{"dmitrii", "dmitriy", "dmitry"}, nil},
		{"Юрий", []string{"iurii", "yuriy", "yury"}, nil},
		{"Сергей", []string{"sergei", "sergey"}, nil},
		{"Наталья", []string{"natalia", "natalya"}, nil},
		{"Евгений", []string{"evgenii", "yevgeniy", "yevgeny"}, nil},
		{"Николай", []string{"nikolai", "nikolay"}, nil},
		{"Михаил", []string{"mikhail"}, nil},
		{"Щукин", []string{"shchukin"}, nil},
		{"Олександр", []string{"oleksandr"}, nil},
		{"Шостакович", []string{"shostakovich"}, nil},
		// Latin letters keep their one plain form.
		{"Łukasz", []string{"lukasz"}, nil},
		{"Øyvind", []string{"oyvind"}, nil},
		{"Groß", []string{"gross"}, nil},
	}
	for _, tt := range tests {
		_, folded, err := n.Name(tt.name)
		if err != nil {
			t.Fatalf("Name(%q): %v", tt.name, err)
		}
		got := Terms(folded)
		for _, w := range tt.want {
			if !slices.Contains(got, w) {
				t.Errorf("Terms(%q) = %q: no %q", folded, got, w)
			}
			if m := MatchName(folded, w); m != MatchExact {
				t.Errorf("MatchName(%q, %q) = %v, want exact", folded, w, m)
			}
		}
		for _, w := range tt.not {
			if slices.Contains(got, w) {
				t.Errorf("Terms(%q) = %q: has %q", folded, got, w)
			}
		}
	}
}

// TestGreekReadings checks the Latin readings of Greek names, each in
// full: unidecode's, ELOT 743 (as the passport office spells names) and
// the spelling by ear, and that a person typing any of them, whole or in
// part, finds the name.
func TestGreekReadings(t *testing.T) {
	n := mustNormalizer(t, "")
	tests := []struct {
		name  string
		want  []string // readings: unidecode, ELOT 743, by ear, then by ear with one spelling changed (those that differ, at most four)
		typed []string // further queries that must find the name by prefix
	}{
		{"Ευάγγελος", []string{"euaggelos", "evangelos"}, []string{"evang", "euag", "evangel"}},
		{"Μπάμπης", []string{"mpampes", "bampis", "bambis", "babis"}, []string{"ba", "bamb", "bamp", "mpamp", "bab"}},
		{"Ντίνος", []string{"ntinos", "dinos"}, []string{"din", "ntin"}},
		{"Παύλος", []string{"paulos", "pavlos"}, []string{"pav", "paul"}},
		{"Αγγελική", []string{"aggelike", "angeliki"}, []string{"ang", "agg"}},
		{"Γκίκας", []string{"gkikas", "gikas"}, []string{"gik", "gki"}},
		{"Τζένη", []string{"tzene", "tzeni"}, []string{"tzen"}},
		{"Ουρανία", []string{"ourania", "urania"}, []string{"our", "ura"}},
		// υ alone: "y" in ELOT 743, "i" by ear, "u" in unidecode.
		{"Σπύρος", []string{"spuros", "spyros", "spiros"}, []string{"spy", "spi"}},
		// αυ/ευ before a voiceless consonant, ευ before a voiced one.
		{"Ευθύμιος", []string{"euthumios", "efthymios", "efthimios"}, []string{"efth"}},
		{"Ευγενία", []string{"eugenia", "evgenia"}, nil},
		{"Σταύρος", []string{"stauros", "stavros"}, nil},
		// Digraphs inside a word.
		{"Λάμπρος", []string{"lampros", "lambros", "labros"}, nil},
		{"Αντώνης", []string{"antones", "antonis", "andonis"}, nil},
		{"Τσαμπίκα", []string{"tsampika", "tsambika", "tsabika"}, []string{"tsam"}},
		{"Παπαδόπουλος", []string{"papadopoulos", "papadopulos"}, nil},
		{"Κουτσός", []string{"koutsos", "kutsos"}, nil},
		// ου as "ou" beside υ as "i", and both as "u" and "i".
		{"Ευθυμίου", []string{"euthumiou", "efthymiou", "efthimiou", "efthimiu"}, nil},
		{"Αλέξανδρος", []string{"alexandros"}, nil},
		// The dialytika: ϊ, ϋ are no digraph ("ταυγετοσ" reads "tavgetos").
		{"Ταΰγετος", []string{"taugetos", "taygetos", "taigetos"}, []string{"tayg", "taig"}},
		{"Προϊστάμενος", []string{"proistamenos"}, nil}, // by ear οι would be "i"
		{"Μαΐου", []string{"maiou", "maiu"}, nil},       // by ear αι would be "e"
		{"Κάιρο", []string{"kairo"}, nil},               // tonos on α: two vowels
		{"Παπαϊωάννου", []string{"papaioannou", "papaioannu"}, nil},
		// αι "e", ει/οι "i" by ear; ευ before φ/β "e" by ear (ELOT "eff", "evv").
		{"Ευφροσύνη", []string{"euphrosune", "effrosyni", "efrosini"}, []string{"efro", "effro"}},
		{"Εύβοια", []string{"euboia", "evvoia", "evia"}, nil},
		{"Ειρήνη", []string{"eirene", "eirini", "irini"}, nil},
		{"Αικατερίνη", []string{"aikaterine", "aikaterini", "ekaterini"}, nil},
		{"Ματθαίος", []string{"matthaios", "mattheos"}, nil},
		// χ "ch" (ELOT), "h" by ear, "kh" (unidecode).
		{"Χρήστος", []string{"khrestos", "christos", "hristos"}, nil},
		{"Χάρης", []string{"khares", "charis", "haris"}, []string{"har", "char"}},
		{"Μιχάλης", []string{"mikhales", "michalis", "mihalis"}, nil},
		{"Χατζηδάκης", []string{"khatzedakes", "chatzidakis", "hatzidakis"}, nil},
		{"Χαράλαμπος", []string{"kharalampos", "charalampos", "haralambos", "charalambos"}, []string{"haralamb", "charalamb"}}, // "haralabos" would be a fifth
		// γι before a vowel: "gi" (ELOT), "y" or "yi" by ear where ι is a glide.
		{"Γιώργος", []string{"giorgos", "yorgos", "yiorgos"}, []string{"yor", "yior", "gior"}},
		{"Γιάννης", []string{"giannes", "giannis", "yannis", "yiannis"}, nil},
		{"Παναγιώτης", []string{"panagiotes", "panagiotis", "panayotis", "panayiotis"}, nil},
		{"Γεωργίου", []string{"georgiou", "georgiu"}, nil},
		// η: "i" (ELOT, by ear), "e" (unidecode, as in "Demetrios").
		{"Δημήτριος", []string{"demetrios", "dimitrios"}, nil},
		{"Δημήτρης", []string{"demetres", "dimitris"}, []string{"dimitr", "demetr"}},
	}
	// Spellings that are no reading of the name (no prefix either).
	for _, tt := range []struct{ name, q string }{
		{"Ταΰγετος", "tavgetos"}, // αϋ is no digraph
		{"Προϊστάμενος", "pristamenos"},
		{"Μαΐου", "meou"},
		{"Ταύγετος", "taygetos"}, // without the dialytika αυ is one
		{"Γεωργίου", "georyou"},  // γί-ου: the ι is a vowel
		{"Χρήστος", "xristos"},   // Greeklish x: not a name's spelling
	} {
		_, folded, err := n.Name(tt.name)
		if err != nil {
			t.Fatalf("Name(%q): %v", tt.name, err)
		}
		if m := MatchName(folded, tt.q); m != MatchNone {
			t.Errorf("MatchName(%q, %q) = %v, want none", folded, tt.q, m)
		}
	}
	// Greek typed with and without the dialytika (or accents) finds the
	// name either way, as a node that folds the dialytika away indexes it.
	for _, tt := range []struct{ name, q string }{
		{"Ταΰγετος", "Ταυγετος"},
		{"Ταΰγετος", "ΤΑΫΓΕΤΟΣ"},
		{"Ταύγετος", "Ταΰγετος"},
		{"Μαΐου", "μαιου"},
		{"Κάιρο", "καιρο"},
		{"Κάιρο", "Καΐρο"},
	} {
		_, folded, err := n.Name(tt.name)
		if err != nil {
			t.Fatalf("Name(%q): %v", tt.name, err)
		}
		_, q, err := n.Name(tt.q)
		if err != nil {
			t.Fatalf("Name(%q): %v", tt.q, err)
		}
		if m := MatchName(folded, q); m != MatchExact {
			t.Errorf("MatchName(%q, %q) = %v, want exact", folded, q, m)
		}
		if !slices.Contains(Terms(folded), withoutDialytika(q)) {
			t.Errorf("Terms(%q) = %q: no %q, the term a node without the dialytika looks up", folded, Terms(folded), withoutDialytika(q))
		}
	}
	// A word mixing Greek and Cyrillic letters would read five ways; the
	// index takes the first four.
	if got, want := readings("μπυяии"), []string{"mpuiaii", "byiaii", "biiaii", "mpuyayy"}; !slices.Equal(got, want) {
		t.Errorf("readings(μπυяии) = %q, want %q", got, want)
	}
	for _, tt := range tests {
		_, folded, err := n.Name(tt.name)
		if err != nil {
			t.Fatalf("Name(%q): %v", tt.name, err)
		}
		if got := readings(folded); !slices.Equal(got, tt.want) {
			t.Errorf("readings(%q) = %q, want %q", folded, got, tt.want)
		}
		for _, q := range tt.want {
			if m := MatchName(folded, q); m != MatchExact {
				t.Errorf("MatchName(%q, %q) = %v, want exact", folded, q, m)
			}
		}
		for _, q := range tt.typed {
			if m := MatchName(folded, q); m != MatchPrefix {
				t.Errorf("MatchName(%q, %q) = %v, want prefix", folded, q, m)
			}
		}
	}
}

var uidTests = []struct {
	in, want string
	err      error
}{
	{"ABC-123", "ABC-123", nil},
	{"  abc-123  ", "abc-123", nil},
	{"urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8", "urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8", nil},
	{"MiXeD", "MiXeD", nil},
	{"Büro-7", "Büro-7", nil},
	{strings.Repeat("x", 128), strings.Repeat("x", 128), nil},
	{strings.Repeat("x", 129), "", ErrInvalidUID},
	{strings.Repeat("é", 128), strings.Repeat("é", 128), nil}, // 256 bytes, 128 chars
	{"ab cd", "", ErrInvalidUID},
	{"ab\u00a0cd", "", ErrInvalidUID}, // no-break space
	{"ab\u200bcd", "", ErrInvalidUID}, // not printable
	{"ab\tcd", "", ErrControl},
	{"", "", ErrEmpty},
	{strings.Repeat("x", 257), "", ErrTooLong},
}

func TestUID(t *testing.T) {
	for _, tt := range uidTests {
		got, err := UID(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("UID(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

var ipTests = []struct {
	in, want string
	err      error
}{
	{"192.0.2.1", "192.0.2.1", nil},
	{" 192.0.2.1 ", "192.0.2.1", nil},
	{"::ffff:192.0.2.1", "192.0.2.1", nil},
	{"::FFFF:C000:0201", "192.0.2.1", nil},
	{"2001:DB8:0:0:0:0:0:1", "2001:db8::1", nil},
	{"2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:db8::ff00:42:8329", nil},
	{"::1", "::1", nil},
	{"fe80::1%eth0", "", ErrInvalidIP},
	{"192.0.2.1%1", "", ErrInvalidIP},
	{"192.0.2.01", "", ErrInvalidIP}, // leading zeros are ambiguous (octal)
	{"192.0.2", "", ErrInvalidIP},
	{"[::1]", "", ErrInvalidIP},
	{"192.0.2.1:5060", "", ErrInvalidIP},
	{"example.com", "", ErrInvalidIP},
	{"", "", ErrEmpty},
	{"1.2.3.4\x00", "", ErrControl},
}

func TestIP(t *testing.T) {
	for _, tt := range ipTests {
		got, err := IP(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("IP(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
			continue
		}
		if err == nil {
			if again, err := IP(got); again != got || err != nil {
				t.Errorf("IP(%q) = %q, %v; not idempotent", got, again, err)
			}
		}
	}
}

var parseTests = []struct {
	region, in string
	want       ID
	err        error
}{
	{"DE", "030 1234567", ID{KindPhone, "+49301234567"}, nil},
	{"DE", "+49 30 1234567", ID{KindPhone, "+49301234567"}, nil},
	{"", "0049 30 1234567", ID{KindPhone, "+49301234567"}, nil},
	{"", "tel:+49-30-1234567", ID{KindPhone, "+49301234567"}, nil},
	{"US", "(201) 555-0123", ID{KindPhone, "+12015550123"}, nil},
	{"", "+49 30 12", ID{}, ErrInvalidPhone},                     // looks international: report, don't guess
	{"DE", "12345", ID{KindName, "12345"}, nil},                  // digits but no valid number
	{"", "030 1234567", ID{KindName, "030 1234567"}, nil},        // no region: cannot be a phone
	{"", "192.0.2.1", ID{KindIP, "192.0.2.1"}, nil},              //
	{"", "::ffff:192.0.2.1", ID{KindIP, "192.0.2.1"}, nil},       //
	{"", "2001:DB8::1", ID{KindIP, "2001:db8::1"}, nil},          //
	{"", "fe80::1%eth0", ID{}, ErrInvalidIP},                     //
	{"", "José Müller", ID{KindName, "jose muller"}, nil},        //
	{"", "Room 101", ID{KindName, "room 101"}, nil},              //
	{"", "name:José", ID{KindName, "jose"}, nil},                 //
	{"", "Name: José", ID{KindName, "jose"}, nil},                //
	{"", "uid:ABC-123", ID{KindUID, "ABC-123"}, nil},             //
	{"", "uid:abc def", ID{}, ErrInvalidUID},                     //
	{"", "phone:+4930123456", ID{KindPhone, "+4930123456"}, nil}, //
	{"", "ip:::1", ID{KindIP, "::1"}, nil},                       //
	{"", "ip:not-an-ip", ID{}, ErrInvalidIP},                     //
	{"", "unknown:x", ID{KindName, "unknown:x"}, nil},            // not a usable prefix
	{"", "sip:alice", ID{KindName, "sip:alice"}, nil},            //
	{"", "uid:", ID{}, ErrEmpty},                                 //
	{"", "", ID{}, ErrEmpty},                                     //
	{"", "Anna\x07", ID{}, ErrControl},                           //
	{"", strings.Repeat("a", 300), ID{}, ErrTooLong},
	{"", "uid:" + strings.Repeat("x", 257), ID{}, ErrTooLong},
	{"", "name:" + strings.Repeat("a", 256), ID{KindName, strings.Repeat("a", 256)}, nil}, // limit is on the value
	{"", "  uid:X1", ID{KindUID, "X1"}, nil},                                              //
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		n := mustNormalizer(t, tt.region)
		got, err := n.Parse(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("[%s] Parse(%q) = %v, %v; want %v, %v", tt.region, tt.in, got, err, tt.want, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		if again, err := n.Parse(got.String()); again != got || err != nil {
			t.Errorf("[%s] Parse(%q) = %v, %v; String() does not round-trip", tt.region, got.String(), again, err)
		}
	}
}

func TestNormalize(t *testing.T) {
	n := mustNormalizer(t, "DE")
	tests := []struct {
		k    Kind
		in   string
		want ID
		err  error
	}{
		{KindName, "Ｊｏｓé  Müller", ID{KindName, "jose muller"}, nil},
		{KindPhone, "030 1234567", ID{KindPhone, "+49301234567"}, nil},
		{KindUID, " X1 ", ID{KindUID, "X1"}, nil},
		{KindIP, "::ffff:10.0.0.1", ID{KindIP, "10.0.0.1"}, nil},
		{KindUnknown, "x", ID{}, ErrUnknownKind},
		{Kind(42), "x", ID{}, ErrUnknownKind},
		{KindPhone, "abc", ID{}, ErrInvalidPhone},
	}
	for _, tt := range tests {
		got, err := n.Normalize(tt.k, tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Normalize(%v, %q) = %v, %v; want %v, %v", tt.k, tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestConcurrent(t *testing.T) {
	n := mustNormalizer(t, "DE")
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 50 {
				if _, f, err := n.Name("Ｊｏｓé Müller"); err != nil || f != "jose muller" {
					t.Errorf("Name = %q, %v", f, err)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func FuzzPhone(f *testing.F) {
	for _, tt := range phoneTests {
		f.Add(tt.region, tt.in)
	}
	f.Fuzz(func(t *testing.T, region, s string) {
		n, err := NewNormalizer(region)
		if err != nil {
			n = &Normalizer{}
		}
		got, err := n.Phone(s)
		if err != nil {
			return
		}
		if again, err := n.Phone(got); again != got || err != nil {
			t.Fatalf("[%s] Phone(%q) = %q, but Phone(%q) = %q, %v", n.Region, s, got, got, again, err)
		}
		if again, err := (&Normalizer{}).Phone(got); again != got || err != nil {
			t.Fatalf("E.164 %q depends on region: %q, %v", got, again, err)
		}
	})
}

func FuzzName(f *testing.F) {
	for _, tt := range nameTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := &Normalizer{}
		display, folded, err := n.Name(s)
		if err != nil {
			return
		}
		if d2, f2, err := n.Name(display); d2 != display || f2 != folded || err != nil {
			t.Fatalf("Name(%q) = %q, %q; Name(display) = %q, %q, %v", s, display, folded, d2, f2, err)
		}
		if _, f2, err := n.Name(folded); f2 != folded || err != nil {
			t.Fatalf("Name(%q) folded = %q; Name(folded) = %q, %v", s, folded, f2, err)
		}
		for _, tok := range Terms(folded) {
			if tok == "" || MatchName(folded, tok) == MatchNone {
				t.Fatalf("Terms(%q) gave %q, which does not find it", folded, tok)
			}
		}
	})
}

func FuzzIP(f *testing.F) {
	for _, tt := range ipTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := IP(s)
		if err != nil {
			return
		}
		if again, err := IP(got); again != got || err != nil {
			t.Fatalf("IP(%q) = %q; IP(%q) = %q, %v", s, got, got, again, err)
		}
	})
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.region, tt.in)
	}
	f.Fuzz(func(t *testing.T, region, s string) {
		n, err := NewNormalizer(region)
		if err != nil {
			n = &Normalizer{}
		}
		id, err := n.Parse(s)
		if err != nil {
			return
		}
		if id.Kind == KindUnknown || id.Value == "" {
			t.Fatalf("Parse(%q) = %v without error", s, id)
		}
		if again, err := n.Normalize(id.Kind, id.Value); again != id || err != nil {
			t.Fatalf("Parse(%q) = %v; Normalize again = %v, %v", s, id, again, err)
		}
		if again, err := n.Parse(id.String()); again != id || err != nil {
			t.Fatalf("Parse(%q) = %v; Parse(%q) = %v, %v", s, id, id.String(), again, err)
		}
		_ = id.CID()
	})
}

func BenchmarkParse(b *testing.B) {
	n := mustNormalizer(b, "DE")
	queries := []string{"030 1234567", "+49 (30) 123-4567", "Ｊｏｓé  Müller", "192.0.2.1", "uid:ABC-123"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := n.Parse(queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGreekWordsRead checks every Greek word of one or two letters and
// every three-letter word of the letters that make digraphs (at the start,
// the end and alone): each has at most maxReadings readings, each plain
// ASCII, that find it exactly.
func TestGreekWordsRead(t *testing.T) {
	letters, digraphs := []rune("αβγδεζηθικλμνξοπρστυφχψωϊϋ"), []rune("αεηιουϊϋμπντγκξχθβφω")
	var words []string
	for _, a := range letters {
		words = append(words, string(a))
		for _, b := range letters {
			words = append(words, string([]rune{a, b}))
		}
	}
	for _, a := range digraphs {
		for _, b := range digraphs {
			for _, c := range digraphs {
				words = append(words, string([]rune{a, b, c}))
			}
		}
	}
	for _, w := range words {
		rs := readings(w)
		if len(rs) == 0 || len(rs) > maxReadings {
			t.Fatalf("readings(%q) = %q", w, rs)
		}
		for _, r := range rs {
			if !isPlain(r) || MatchName(w, r) != MatchExact {
				t.Fatalf("readings(%q) = %q: %q is not a plain reading that finds it", w, rs, r)
			}
		}
	}
}

// BenchmarkGreekTerms derives the terms of Greek names, as registration
// does, and reports how many each name has: every term is a DHT key.
// "eight" are names read alike by ELOT 743 and by ear but for digraphs
// and υ; "spelled" have χ, γι, αι/ει, μπ inside and a dialytika.
func BenchmarkGreekTerms(b *testing.B) {
	for _, set := range []struct {
		name  string
		names []string
	}{
		{"eight", []string{"Ευάγγελος Παπαδόπουλος", "Μπάμπης Γκίκας", "Ντίνος Σταύρου", "Παύλος Τζένης",
			"Αγγελική Ουρανία", "Σπύρος Ευθυμίου", "Ελένη Παπαδοπούλου", "Κωνσταντίνος Αντωνίου"}},
		{"spelled", []string{"Γιώργος Παπαϊωάννου", "Χαράλαμπος Χατζηδάκης", "Ειρήνη Μιχαλοπούλου", "Καταφύγιο Ταΰγετος"}},
	} {
		b.Run(set.name, func(b *testing.B) {
			n := mustNormalizer(b, "")
			var folded []string
			for _, s := range set.names {
				_, f, err := n.Name(s)
				if err != nil {
					b.Fatal(err)
				}
				folded = append(folded, f)
			}
			terms := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				terms += len(Terms(folded[i%len(folded)]))
			}
			b.ReportMetric(float64(terms)/float64(b.N), "terms/name")
		})
	}
}

// TestFoldAllRunes checks fold idempotence for every code point, which
// random fuzzing is unlikely to reach (it found the Cherokee case).
func TestFoldAllRunes(t *testing.T) {
	var b strings.Builder
	check := func() {
		folded, err := fold(b.String())
		if err != nil {
			t.Fatalf("fold(%q): %v", b.String(), err)
		}
		if again, err := fold(folded); again != folded || err != nil {
			for _, f := range strings.Fields(b.String()) { // narrow it down
				f1, _ := fold(f)
				if f2, _ := fold(f1); f2 != f1 {
					t.Errorf("fold not idempotent for %q: %q then %q", f, f1, f2)
				}
			}
		}
		b.Reset()
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.IsControl(r) || (r >= 0xD800 && r <= 0xDFFF) {
			continue
		}
		b.WriteString(" a")
		b.WriteRune(r)
		b.WriteString("B")
		if b.Len() > 4096 {
			check()
		}
	}
	check()
}
