package search_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/search"
)

// TestLookupRateLimit: a peer gets as many lookups as its bucket holds
// and no more; each refused one resets its stream and is counted as a rate
// drop. The bucket does not refill (rate 0), so the count is exact however
// fast or slow the machine.
func TestLookupRateLimit(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	if _, err := n.Registry().Register(client.Registration{UID: "limited-1", Address: "10.99.0.5"}); err != nil {
		t.Fatal(err)
	}
	const burst, asks = 3, 7
	n.Search().SetLookupRate(0, burst)
	asker := newHost(t)
	if err := asker.Connect(context.Background(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	answered := 0
	for i := range asks {
		recs, _, err := search.QueryNode(ctx, asker, n.ID(), []ident.ID{{Kind: ident.KindUID, Value: "limited-1"}}, 1)
		switch {
		case err == nil && len(recs) == 1:
			answered++
			if i >= burst {
				t.Errorf("lookup %d answered past the burst of %d", i+1, burst)
			}
		case err == nil:
			t.Errorf("lookup %d answered without the terminal", i+1)
		case i < burst:
			t.Errorf("lookup %d within the burst refused: %v", i+1, err)
		}
	}
	if answered != burst {
		t.Errorf("%d of %d lookups answered, want %d", answered, asks, burst)
	}
	resp, err := http.Get(n.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := fmt.Sprintf(`irmv_lookup_requests_dropped_total{reason="rate"} %d`, asks-burst); !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %s", want)
	}
}
