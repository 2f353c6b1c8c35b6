package search_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search/flood"
)

// TestForgedFloodHitsRejected: a rogue flood neighbour answers every query
// with hits whose records pass the protocol's transit checks (they name
// the rogue as their host) but are forged, tampered, stale or signed by
// someone else. The resolver keeps only the one good record and counts the
// rest in irmv_records_rejected_total{path="flood"}.
func TestForgedFloodHitsRejected(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	bad, other := newHost(t), newHost(t)
	good := nodeRecord(t, bad, bad.ID(), "good", 0)
	tampered := nodeRecord(t, bad, bad.ID(), "tampered", 0)
	tampered.Body = []byte(strings.Replace(string(tampered.Body), "tampered", "tampereD", 1))
	badSig := nodeRecord(t, bad, bad.ID(), "badsig", 0)
	badSig.Sig[0] ^= 0xff
	// Names the rogue but is signed by another node's key.
	otherSigned := nodeRecord(t, other, bad.ID(), "othersigned", 0)
	stale := nodeRecord(t, bad, bad.ID(), "stale", 2*record.MaxAge)
	future := nodeRecord(t, bad, bad.ID(), "future", -2*record.MaxAge)
	forged := []*record.Record{tampered, badSig, otherSigned, stale, future}

	bad.SetStreamHandler(flood.ProtocolID, func(s network.Stream) {
		q, err := flood.Decode(s, flood.MaxQuerySize)
		from := s.Conn().RemotePeer()
		s.Close()
		if err != nil || q.Type != flood.TypeQuery {
			return
		}
		hit := &flood.Message{Type: flood.TypeHit, GUID: q.GUID, Hops: q.Hops + 1, Origin: bad.ID(),
			Records: append([]*record.Record{good}, forged...)}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := bad.NewStream(ctx, from, flood.ProtocolID)
		if err != nil {
			return
		}
		if err := flood.Encode(out, hit); err != nil {
			t.Errorf("encode hit: %v", err) // the forgeries must pass transit checks
		}
		out.Close()
	})
	if err := bad.Connect(context.Background(), peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "rogue known as a flood neighbour", func() bool {
		ps, _ := n.Host().Peerstore().SupportsProtocols(bad.ID(), flood.ProtocolID)
		return len(ps) > 0
	})

	var got []client.Result
	for _, uid := range []string{"good", "tampered", "badsig", "othersigned", "stale", "future"} {
		got = append(got, collect(t, n, client.Query{Text: "uid:" + uid, Via: client.ViaFlood, Timeout: 3 * time.Second})...)
	}
	if len(got) == 0 {
		t.Fatal("the good record was not found either: the rogue's hits never arrived")
	}
	for _, r := range got {
		if r.Identifiers.UID != "good" || !r.Verified {
			t.Errorf("forged record reached the results: %+v", r)
		}
	}
	// The rogue answers every query with its good record too; that record
	// answers only uid:good, so the other queries must not return it.
	if len(got) != 1 {
		t.Errorf("got %d results over six queries, want the good record once: %+v", len(got), got)
	}
	rejected := floodRejected(t, n.APIURL())
	t.Logf("irmv_records_rejected_total{path=\"flood\"} = %v", rejected)
	if rejected < float64(len(forged)) {
		t.Errorf("rejected %v records, want at least %d", rejected, len(forged))
	}
}

func floodRejected(t *testing.T, api string) float64 {
	t.Helper()
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, `irmv_records_rejected_total{path="flood"} `); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
