package search_test

import (
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/node/nodetest"
)

// TestGreekNamesAcrossNodes registers Greek names on the last node of a
// chain and finds each from the first by the Latin spellings people type:
// ELOT 743 as passports write names, the spelling by ear, and unidecode's
// letter by letter; χ as "h", γι as "y", μπ inside as "b", the dialytika
// kept ("Ταΰγετος" is "taygetos", not "tavgetos"); whole words through the
// DHT, beginnings by flooding.
func TestGreekNamesAcrossNodes(t *testing.T) {
	nodes := nodetest.Chain(t, 3, nil)
	for _, n := range nodes {
		nodetest.WaitFor(t, "routing tables", func() bool { return n.DHT().RoutingTable().Size() >= 2 })
	}
	first, last := nodes[0], nodes[len(nodes)-1]
	for _, r := range []client.Registration{
		{UID: "t-evangelos", Name: "Ευάγγελος Παπαδόπουλος"},
		{UID: "t-babis", Name: "Μπάμπης Γκίκας"},
		{UID: "t-dinos", Name: "Ντίνος Σταύρου"},
		{UID: "t-pavlos", Name: "Παύλος Τζένης"},
		{UID: "t-angeliki", Name: "Αγγελική Ουρανία"},
		{UID: "t-spyros", Name: "Σπύρος Ευθυμίου"},
		{UID: "t-yorgos", Name: "Γιώργος Παπαϊωάννου"},
		{UID: "t-haris", Name: "Χαράλαμπος Χατζηδάκης"},
		{UID: "t-irini", Name: "Ειρήνη Μιχαλοπούλου"},
		{UID: "t-taygetos", Name: "Καταφύγιο Ταΰγετος"},
	} {
		r.Address = "10.99.0.7"
		if _, err := last.Registry().Register(r); err != nil {
			t.Fatalf("register %+v: %v", r, err)
		}
		nodetest.WaitFor(t, r.UID+" announced", func() bool {
			return len(collect(t, first, client.Query{Text: "uid:" + r.UID, Via: client.ViaDHT, Timeout: time.Second})) > 0
		})
	}
	for _, tc := range []struct {
		q, via, want string
		match        ident.Match
	}{
		{"evangelos papadopoulos", client.ViaDHT, "t-evangelos", ident.MatchExact},
		{"euaggelos", client.ViaDHT, "t-evangelos", ident.MatchPrefix},
		{"papadopulos", client.ViaDHT, "t-evangelos", ident.MatchPrefix},
		{"evang", client.ViaFlood, "t-evangelos", ident.MatchPrefix},
		{"bampis", client.ViaDHT, "t-babis", ident.MatchPrefix},
		{"bambis gikas", client.ViaDHT, "t-babis", ident.MatchExact},
		{"gkikas", client.ViaDHT, "t-babis", ident.MatchPrefix},
		{"bamb gik", client.ViaFlood, "t-babis", ident.MatchPrefix},
		{"dinos", client.ViaDHT, "t-dinos", ident.MatchPrefix},
		{"ntinos stavrou", client.ViaAuto, "t-dinos", ident.MatchExact},
		{"stavru", client.ViaFlood, "t-dinos", ident.MatchPrefix},
		{"pavlos tzenis", client.ViaAuto, "t-pavlos", ident.MatchExact},
		{"angeliki", client.ViaDHT, "t-angeliki", ident.MatchPrefix},
		{"aggelike ourania", client.ViaDHT, "t-angeliki", ident.MatchExact},
		{"urania", client.ViaDHT, "t-angeliki", ident.MatchPrefix},
		{"spiros efthimiou", client.ViaDHT, "t-spyros", ident.MatchExact},
		{"spyros", client.ViaAuto, "t-spyros", ident.MatchPrefix},
		{"efthym", client.ViaFlood, "t-spyros", ident.MatchPrefix},
		{"Σπυρος", client.ViaDHT, "t-spyros", ident.MatchPrefix},
		{"babis gikas", client.ViaDHT, "t-babis", ident.MatchExact},
		{"yorgos papaioannou", client.ViaDHT, "t-yorgos", ident.MatchExact},
		{"yiorgos", client.ViaDHT, "t-yorgos", ident.MatchPrefix},
		{"giorgos papaiwannou", client.ViaAuto, "", 0}, // no reading writes ω "w"
		{"Γιωργος Παπαιωαννου", client.ViaDHT, "t-yorgos", ident.MatchExact},
		{"papaio", client.ViaFlood, "t-yorgos", ident.MatchPrefix},
		{"haralambos hatzidakis", client.ViaDHT, "t-haris", ident.MatchExact},
		{"charalambos", client.ViaDHT, "t-haris", ident.MatchPrefix},
		{"chatzidakis", client.ViaDHT, "t-haris", ident.MatchPrefix},
		{"hatzid", client.ViaFlood, "t-haris", ident.MatchPrefix},
		{"irini mihalopoulou", client.ViaDHT, "t-irini", ident.MatchExact},
		{"eirini", client.ViaDHT, "t-irini", ident.MatchPrefix},
		{"michalopoulou", client.ViaDHT, "t-irini", ident.MatchPrefix},
		{"taygetos", client.ViaDHT, "t-taygetos", ident.MatchPrefix},
		{"katafygio taygetos", client.ViaAuto, "t-taygetos", ident.MatchExact},
		{"Ταυγετος", client.ViaDHT, "t-taygetos", ident.MatchPrefix},
		{"tayg", client.ViaFlood, "t-taygetos", ident.MatchPrefix},
		{"tavgetos", client.ViaAuto, "", 0}, // αϋ is no digraph
	} {
		res := collect(t, first, client.Query{Text: tc.q, Via: tc.via, Timeout: 10 * time.Second})
		var uids []string
		for _, r := range res {
			uids = append(uids, r.Identifiers.UID)
		}
		if tc.want == "" {
			if len(res) != 0 {
				t.Errorf("%q via %s: found %q (%+v), want nothing", tc.q, tc.via, uids, res)
			}
			continue
		}
		if len(res) != 1 || res[0].Identifiers.UID != tc.want || res[0].Match != tc.match || res[0].Node != last.ID().String() {
			t.Errorf("%q via %s: found %q (%+v), want only %s, match %v, hosted by the last node", tc.q, tc.via, uids, res, tc.want, tc.match)
		}
	}
}
