package search_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search"
)

// bigMatcher answers every query with its records.
type bigMatcher []*record.Record

func (m bigMatcher) Match(ident.ID, int) []*record.Record { return m }

// TestLookupAnswerFitsLimit: a hosting node whose matches do not all fit
// into one answer (records of long names whose "&" JSON writes as
// \u0026, 2.4 kB each: 32 of them are 77 kB, over MaxLookupResponse)
// answers with as many as fit. It used to send nothing at all, and every
// lookup of the name at that node failed.
func TestLookupAnswerFitsLimit(t *testing.T) {
	asker, hosting := newHost(t), newHost(t)
	var recs bigMatcher
	for i := range search.MaxLookupRecords {
		b := &record.Body{Terminal: fmt.Sprintf("t-%d", i), Node: hosting.ID().String(), Seq: 1, Time: time.Now().UnixMilli(),
			Identifiers: record.Identifiers{Name: fmt.Sprintf("Smith %02d %s", i, strings.Repeat("&", 230)), UID: fmt.Sprintf("big-%d-%s", i, strings.Repeat("x", 100))}}
		r, err := record.SignNode(b, hosting.Peerstore().PrivKey(hosting.ID()))
		if err != nil {
			t.Fatal(err)
		}
		r.Status = record.StatusOnline
		recs = append(recs, r)
	}
	norm, err := ident.NewNormalizer("")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := search.New(search.Options{Host: hosting, Matcher: recs, Normalizer: norm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	asker.Peerstore().AddAddrs(hosting.ID(), hosting.Addrs(), time.Hour)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, bad, err := search.QueryNode(ctx, asker, hosting.ID(), []ident.ID{{Kind: ident.KindName, Value: "smith"}}, search.MaxLookupRecords)
	if err != nil {
		t.Fatalf("lookup of %d matches of 2.4 kB: %v", len(recs), err)
	}
	if bad != 0 || len(got) == 0 || len(got) >= len(recs) {
		t.Fatalf("got %d records (%d bad), want the first ones of %d that fit into %d bytes", len(got), bad, len(recs), search.MaxLookupResponse)
	}
	for i, r := range got {
		if string(r.Body) != string(recs[i].Body) {
			t.Fatalf("record %d is not the hosting node's record %d: the best matches go first", i, i)
		}
	}
}
