package node_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/search/flood"
)

// frame is a uvarint length prefix and body, as every irmv protocol sends.
func frame(body []byte) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

func randHex16() string {
	var b [16]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}

func floodQuery(guid string, ttl, hops int) []byte {
	return frame(fmt.Appendf(nil, `{"type":"query","guid":%q,"ttl":%d,"hops":%d,"kind":"uid","value":"nobody-%s"}`, guid, ttl, hops, guid[:6]))
}

// attack is one kind of misbehaviour: a protocol and the bytes of one
// stream's worth of it.
type attack struct {
	name  string
	proto protocol.ID
	msg   func() []byte
}

func attacks(self peer.ID) []attack {
	replayed := randHex16()
	huge := func() []byte { return append(binary.AppendUvarint(nil, 1<<40), "{}"...) }
	// A hit that passes every check but the signature, for GUIDs the node
	// never saw.
	body, _ := (&record.Body{Terminal: "t-fake", Identifiers: record.Identifiers{UID: "fake"}, Node: self.String(), Seq: 1, Time: time.Now().UnixMilli()}).Marshal()
	hit, _ := json.Marshal(&record.Record{Body: body, Sig: make([]byte, 64), Signer: record.SignerNode, Status: record.StatusOnline})
	garbage := func() []byte {
		b := make([]byte, 200)
		rand.Read(b)
		return b
	}
	return []attack{
		{"flood ttl 50", flood.ProtocolID, func() []byte { return floodQuery(randHex16(), 50, 0) }},
		{"flood hops 9", flood.ProtocolID, func() []byte { return floodQuery(randHex16(), 1, 9) }},
		{"flood replayed guid", flood.ProtocolID, func() []byte { return floodQuery(replayed, 1, 0) }},
		{"flood garbage", flood.ProtocolID, garbage},
		{"flood huge prefix", flood.ProtocolID, huge},
		{"flood hit for unknown guid", flood.ProtocolID, func() []byte {
			return frame(fmt.Appendf(nil, `{"type":"hit","guid":%q,"hops":1,"origin":%q,"records":[%s]}`, randHex16(), self, hit))
		}},
		// Valid queries at thousands a second: the per-peer rate.
		{"flood query storm", flood.ProtocolID, func() []byte { return floodQuery(randHex16(), flood.MaxTTL, 0) }},
		{"lookup garbage", search.LookupProtocol, garbage},
		{"lookup huge prefix", search.LookupProtocol, huge},
		{"lookup storm", search.LookupProtocol, func() []byte { return frame([]byte(`{"kind":"uid","value":"nobody"}`)) }},
		{"call garbage", signal.Protocol, garbage},
		{"call huge prefix", signal.Protocol, huge},
		{"call bogus invite", signal.Protocol, func() []byte {
			return frame(fmt.Appendf(nil, `{"type":"invite","call":%q,"to":{"node":"x","terminal":"y"}}`, randHex16()))
		}},
	}
}

// attacker is a libp2p host that sends every kind of attack to target as
// fast as it can until ctx ends.
// A storm attacker sends only the valid requests of attack "storm" (a
// name), from many goroutines; the others send every other attack. sent
// counts streams sent by attack name.
func runAttacker(ctx context.Context, t *testing.T, target *node.Node, storm string, sent *sync.Map, failed *atomic.Int64) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Error(err)
		return
	}
	defer h.Close()
	if err := h.Connect(ctx, peer.AddrInfo{ID: target.ID(), Addrs: target.Host().Addrs()}); err != nil {
		t.Errorf("attacker connect: %v", err)
		return
	}
	var wg sync.WaitGroup
	for _, a := range attacks(h.ID()) {
		workers := 1
		switch {
		case storm == a.name:
			workers = 32
		case storm != "" || strings.HasSuffix(a.name, "storm"):
			continue
		}
		v, _ := sent.LoadOrStore(a.name, new(atomic.Int64))
		count := v.(*atomic.Int64)
		for range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					if sendOne(ctx, h, target.ID(), a) {
						count.Add(1)
					} else {
						failed.Add(1)
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
	}
	wg.Wait()
}

func sendOne(ctx context.Context, h host.Host, to peer.ID, a attack) bool {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := h.NewStream(sctx, to, a.proto)
	if err != nil {
		return false
	}
	st.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := st.Write(a.msg()); err != nil {
		st.Reset()
		return false
	}
	st.Close() // not waiting for answers: attackers don't
	return true
}

// apiSearch searches through the node's terminal API and returns the
// results.
func apiSearch(t *testing.T, n *node.Node, q, via string) []client.Result {
	t.Helper()
	u := n.APIURL() + "/v1/search?" + url.Values{"q": {q}, "via": {via}, "timeout": {"10s"}, "limit": {"1"}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("search %s: %d %s", u, resp.StatusCode, body)
	}
	var out []client.Result
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r client.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("search line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// metricLines returns the node's Prometheus lines starting with prefix.
func metricLines(t *testing.T, n *node.Node, prefix string) []string {
	t.Helper()
	resp, err := http.Get(n.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// TestAbuse attacks the middle node of three from several misbehaving
// peers at once on every irmv protocol, and meanwhile looks a terminal on
// another node up through it, by the DHT and by flooding.
func TestAbuse(t *testing.T) {
	nodes := nodetest.Chain(t, 3, nil)
	target, far := nodes[1], nodes[2]
	for _, n := range nodes {
		nodetest.WaitFor(t, "routing tables", func() bool { return n.DHT().RoutingTable().Size() >= 2 })
	}
	if _, err := far.Registry().Register(client.Registration{Name: "Honest Person", UID: "honest-1", Address: "10.99.0.7"}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "identifiers announced", func() bool {
		return len(apiSearch(t, target, "uid:honest-1", client.ViaDHT)) > 0
	})

	// Lookup and flood buckets that never refill: the storms run into
	// them after stormBurst requests however slowly the attackers go
	// (under the race detector a few hundred a second), so their rate
	// drops are always asserted. TestLookupRateLimit (search) and
	// TestRateLimit (search/flood) check the counts.
	const stormBurst = 20
	target.Search().SetLookupRate(0, stormBurst)
	target.Flooder().SetPerPeerRate(0, stormBurst)
	ctx, stop := context.WithCancel(context.Background())
	var (
		wg     sync.WaitGroup
		sent   sync.Map // attack name → *atomic.Int64
		failed atomic.Int64
	)
	total := func() (n int64) {
		sent.Range(func(_, v any) bool { n += v.(*atomic.Int64).Load(); return true })
		return n
	}
	storms := []string{"", "flood query storm", "", "lookup storm"}
	for _, storm := range storms {
		wg.Go(func() { runAttacker(ctx, t, target, storm, &sent, &failed) })
	}
	start := time.Now()
	// Let the attack get going, then look up honestly while it lasts.
	nodetest.WaitFor(t, "attack under way", func() bool { return total() > 1000 })
	firstTry := map[string]int{}
	const rounds = 3
	for i := range rounds {
		for _, via := range []string{client.ViaDHT, client.ViaFlood} {
			tries := 0
			nodetest.WaitFor(t, fmt.Sprintf("honest %s lookup %d under attack", via, i), func() bool {
				tries++
				res := apiSearch(t, target, "uid:honest-1", via)
				return len(res) == 1 && res[0].Node == far.ID().String() && res[0].Verified && res[0].Via == via
			})
			if tries == 1 {
				firstTry[via]++
			}
		}
	}
	if code := getJSON(t, target.APIURL()+"/healthz", nil); code != 200 {
		t.Fatalf("healthz under attack: %d", code)
	}
	// Go on until the storms have run into the rate limits.
	nodetest.WaitFor(t, "the storms dropped for rate", func() bool {
		return target.Flooder().Stats().Dropped[flood.DropRate] > 0 &&
			strings.Contains(strings.Join(metricLines(t, target, "irmv_lookup_requests_dropped_total"), ""), `reason="rate"`)
	})
	stop()
	wg.Wait()
	elapsed := time.Since(start)

	st := target.Flooder().Stats()
	t.Logf("attack: %d streams sent, %d refused/failed in %v (%.0f/s) by %d peers",
		total(), failed.Load(), elapsed.Round(time.Millisecond), float64(total())/elapsed.Seconds(), len(storms))
	rateOf := func(name string) float64 {
		v, ok := sent.Load(name)
		if !ok {
			return 0
		}
		return float64(v.(*atomic.Int64).Load()) / elapsed.Seconds()
	}
	sent.Range(func(k, v any) bool {
		t.Logf("  %-28s %6d (%.0f/s)", k, v.(*atomic.Int64).Load(), rateOf(k.(string)))
		return true
	})
	t.Logf("honest lookups found at first try: dht %d/%d, flood %d/%d", firstTry[client.ViaDHT], rounds, firstTry[client.ViaFlood], rounds)
	t.Logf("flood stats: handled %d, in %d, dropped %v", st.QueriesHandled, st.MessagesIn, st.Dropped)
	for _, p := range []string{"irmv_lookup_requests_dropped_total", "irmv_lookup_requests_served_total", "irmv_call_messages_dropped_total", "irmv_calls_total"} {
		for _, l := range metricLines(t, target, p) {
			t.Log(l)
		}
	}
	reasons := []flood.DropReason{flood.DropTTL, flood.DropDuplicate, flood.DropMalformed, flood.DropOversize, flood.DropUnknownGUID, flood.DropRate}
	for _, storm := range []string{"flood query storm", "lookup storm"} {
		if v, _ := sent.Load(storm); v == nil || v.(*atomic.Int64).Load() <= stormBurst {
			t.Fatalf("the %s sent %v requests, not more than the bucket's %d", storm, v, stormBurst)
		}
	}
	for _, r := range reasons {
		if st.Dropped[r] == 0 {
			t.Errorf("no flood message dropped for %q", r)
		}
	}
	lookupDrops := strings.Join(metricLines(t, target, "irmv_lookup_requests_dropped_total"), "\n")
	want := []string{`reason="malformed"`, `reason="rate"`}
	for _, reason := range want {
		if !strings.Contains(lookupDrops, reason) {
			t.Errorf("no lookup request dropped with %s:\n%s", reason, lookupDrops)
		}
	}
	if code := getJSON(t, target.APIURL()+"/healthz", nil); code != 200 {
		t.Fatalf("healthz after attack: %d", code)
	}
}
