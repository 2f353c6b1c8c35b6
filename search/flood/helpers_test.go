package flood

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// testMatcher matches by exact kind and value.
type testMatcher struct {
	mu    sync.Mutex
	terms map[ident.ID][]*record.Record
}

func (m *testMatcher) Match(id ident.ID, limit int) []*record.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	recs := m.terms[id]
	if len(recs) > limit {
		recs = recs[:limit]
	}
	return recs
}

func (m *testMatcher) add(id ident.ID, r *record.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.terms == nil {
		m.terms = make(map[ident.ID][]*record.Record)
	}
	m.terms[id] = append(m.terms[id], r)
}

// testNode is a host with a Flooder and its matcher.
type testNode struct {
	h host.Host
	f *Flooder
	m *testMatcher
}

// host terminal hosts a terminal with the given name on n.
func (n *testNode) hostTerminal(tb testing.TB, handle, name string) ident.ID {
	tb.Helper()
	b := &record.Body{
		Terminal:    handle,
		Identifiers: record.Identifiers{Name: name},
		Address:     "192.0.2.1",
		Node:        n.h.ID().String(),
		Seq:         1,
		Time:        time.Now().UnixMilli(),
	}
	r, err := record.SignNode(b, n.h.Peerstore().PrivKey(n.h.ID()))
	if err != nil {
		tb.Fatal(err)
	}
	r.Status = record.StatusOnline
	id := ident.ID{Kind: ident.KindName, Value: name}
	n.m.add(id, r)
	return id
}

func newHost(tb testing.TB) host.Host {
	tb.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("closing host: %v", err)
		}
	})
	return h
}

// newNodes builds n hosts with Flooders (opts' Host and Matcher are set
// per node); t.Cleanup closes them.
func newNodes(tb testing.TB, n int, opts Options) []*testNode {
	tb.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		h := newHost(tb)
		m := &testMatcher{}
		o := opts
		o.Host, o.Matcher = h, m
		f, err := New(o)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if err := f.Close(); err != nil {
				tb.Errorf("closing flooder: %v", err)
			}
		})
		nodes[i] = &testNode{h: h, f: f, m: m}
	}
	return nodes
}

type edge struct{ a, b int }

func chain(n int) []edge {
	var es []edge
	for i := 0; i+1 < n; i++ {
		es = append(es, edge{i, i + 1})
	}
	return es
}

func ring(n int) []edge { return append(chain(n), edge{n - 1, 0}) }

// grid connects a w×h grid (every inner square is a cycle).
func grid(w, h int) []edge {
	var es []edge
	for y := range h {
		for x := range w {
			i := y*w + x
			if x+1 < w {
				es = append(es, edge{i, i + 1})
			}
			if y+1 < h {
				es = append(es, edge{i, i + w})
			}
		}
	}
	return es
}

// mesh is a ring plus chords to i+3 and i+7: degree 6, diameter small.
func mesh(n int) []edge {
	es := ring(n)
	for i := range n {
		es = append(es, edge{i, (i + 3) % n}, edge{i, (i + 7) % n})
	}
	return es
}

// connect dials every edge and waits until both ends list the flood
// protocol for each other (identify is asynchronous).
func connect(tb testing.TB, nodes []*testNode, es []edge) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, e := range es {
		a, b := nodes[e.a].h, nodes[e.b].h
		if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
			tb.Fatalf("connect %d-%d: %v", e.a, e.b, err)
		}
	}
	for _, e := range es {
		for _, pair := range [][2]host.Host{{nodes[e.a].h, nodes[e.b].h}, {nodes[e.b].h, nodes[e.a].h}} {
			waitFor(tb, 20*time.Second, fmt.Sprintf("flood protocol %d-%d", e.a, e.b), func() bool {
				ps, err := pair[0].Peerstore().SupportsProtocols(pair[1].ID(), ProtocolID)
				return err == nil && len(ps) == 1
			})
		}
	}
}

func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collect reads every hit until the channel closes.
func collect(ch <-chan Hit) []Hit {
	var hits []Hit
	for h := range ch {
		hits = append(hits, h)
	}
	return hits
}

// totals sums counters over nodes.
func totals(nodes []*testNode) (out, in uint64) {
	for _, n := range nodes {
		s := n.f.Stats()
		out += s.MessagesOut
		in += s.MessagesIn
	}
	return out, in
}

// quiesce waits until no messages move for a while and returns the
// messages sent in total.
func quiesce(tb testing.TB, nodes []*testNode) uint64 {
	tb.Helper()
	lastOut, lastIn := totals(nodes)
	stable := time.Now()
	deadline := time.Now().Add(20 * time.Second)
	for time.Since(stable) < 300*time.Millisecond {
		if time.Now().After(deadline) {
			tb.Fatal("network did not quiesce")
		}
		time.Sleep(20 * time.Millisecond)
		o, i := totals(nodes)
		if o != lastOut || i != lastIn || i < o {
			lastOut, lastIn, stable = o, i, time.Now()
		}
	}
	return lastOut
}

// sendRaw writes raw bytes on a new flood stream from h to p.
func sendRaw(tb testing.TB, h host.Host, p peer.ID, data []byte) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, p, ProtocolID)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.Write(data); err != nil {
		tb.Logf("write: %v", err)
	}
	_ = s.Close()
}

// frame prefixes a body with its uvarint length.
func frame(body string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// floodGoroutines lists the stacks of goroutines running this package's
// code (other than tests).
func floodGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "irmv/search/flood.(*Flooder)") || strings.Contains(g, "irmv/search/flood.(*guidCache)") {
			out = append(out, g)
		}
	}
	return out
}

func checkNoFloodGoroutines(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		gs := floodGoroutines()
		if len(gs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d goroutines left:\n%s", len(gs), strings.Join(gs, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func peerInfo(h host.Host) peer.AddrInfo { return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()} }

// signedRecord returns a record hosted by h.
func signedRecord(tb testing.TB, h host.Host, handle string) *record.Record {
	tb.Helper()
	r, err := record.SignNode(&record.Body{
		Terminal:    handle,
		Identifiers: record.Identifiers{Name: handle},
		Node:        h.ID().String(),
		Seq:         1,
		Time:        time.Now().UnixMilli(),
	}, h.Peerstore().PrivKey(h.ID()))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
