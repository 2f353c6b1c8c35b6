package search

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/testenv"
)

// countingRouter counts the DHT lookups of a real DHT.
type countingRouter struct {
	*dht.IpfsDHT
	finds atomic.Int64
}

func (r *countingRouter) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	r.finds.Add(1)
	return r.IpfsDHT.FindProvidersAsync(ctx, c, count)
}

// TestSearchDHTKeysBounded: a name query of many words asks the DHT
// under a bounded number of keys. Each term was a DHT lookup of its own:
// one search of an 86-word name (256 bytes) sent 87 DHT queries into the
// network, 1,740 a second at the API's search rate.
func TestSearchDHTKeysBounded(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "host", h)
	d, err := dht.New(h, dht.Mode(dht.ModeServer))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "dht", d)
	norm, err := ident.NewNormalizer("")
	if err != nil {
		t.Fatal(err)
	}
	router := &countingRouter{IpfsDHT: d}
	svc, err := New(Options{Host: h, Matcher: recordsMatcher(nil), Normalizer: norm, Router: router})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "search", svc)
	var words []string
	for i := range 120 {
		words = append(words, string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	text := strings.Join(words, " ")[:ident.MaxInputLen]
	res, err := svc.Search(context.Background(), client.Query{Text: text, Via: client.ViaDHT, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for range res {
	}
	if n := router.finds.Load(); n > maxDHTKeys {
		t.Fatalf("one search of a %d-word name made %d DHT lookups, want at most %d", len(words), n, maxDHTKeys)
	}
}
