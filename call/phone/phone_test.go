package phone

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

const (
	fixture  = "../media/testdata/speech.ogg"
	waitLong = 30 * time.Second
)

// loopbackEngine gathers 127.0.0.1 UDP candidates only and stays out of
// multicast DNS, so that tests never leave loopback.
func loopbackEngine() *webrtc.SettingEngine {
	return media.LoopbackSettingEngine()
}

// startNodes starts a chain of nodes whose TURN relays listen on loopback.
func startNodes(tb testing.TB, n int) []*node.Node {
	tb.Helper()
	return nodetest.Chain(tb, n, func(_ int, o *node.Options) {
		o.TURN = "127.0.0.1:0"
	})
}

func apiClient(tb testing.TB, n *node.Node) *client.Client {
	tb.Helper()
	c, err := client.New(n.APIURL(), "")
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// events records a Phone's events.
type events struct {
	mu      sync.Mutex
	list    []client.Event
	changed chan struct{}
}

func newEvents() *events { return &events{changed: make(chan struct{})} }

func (e *events) add(ev client.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// wait returns the first event of type typ (of call, unless "").
func (e *events) wait(tb testing.TB, typ, call string) client.Event {
	tb.Helper()
	deadline := time.After(waitLong)
	for {
		e.mu.Lock()
		for _, ev := range e.list {
			if ev.Type == typ && (call == "" || ev.Call == call) {
				e.mu.Unlock()
				return ev
			}
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("no %q event for call %q; got %s", typ, call, e)
		}
	}
}

func (e *events) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.list {
		fmt.Fprintf(&b, "[%s %s %s] ", ev.Type, ev.Call, ev.Reason)
	}
	return b.String()
}

// startPhone starts a Phone on node n, closed at cleanup.
func startPhone(tb testing.TB, n *node.Node, o Options) *Phone {
	tb.Helper()
	o.Client = apiClient(tb, n)
	if o.SettingEngine == nil {
		o.SettingEngine = loopbackEngine()
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	p, err := Start(ctx, o)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return p
}

// find searches through c until the terminal shows up callable.
func find(tb testing.TB, c *client.Client, q, terminal string) client.Result {
	tb.Helper()
	var res client.Result
	nodetest.WaitFor(tb, "search "+q, func() bool {
		ok := false
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Search(ctx, client.Query{Text: q, Timeout: 2 * time.Second}, func(r client.Result) error {
			if r.Terminal == terminal && r.Status.Callable() {
				res, ok = r, true
				return errors.New("found")
			}
			return nil
		})
		return ok
	})
	return res
}

// oggPackets is the sequence of audio packets of an Ogg/Opus stream.
func oggPackets(tb testing.TB, b []byte) [][]byte {
	tb.Helper()
	pkts, err := media.OpusPackets(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("not Ogg/Opus: %v", err)
	}
	return pkts
}

// incoming is the phone's one call.
// checkRecording fails unless the Ogg/Opus file at path holds exactly the
// packets want, in order.
func checkRecording(tb testing.TB, path string, want [][]byte) {
	tb.Helper()
	if path == "" {
		tb.Fatal("nothing recorded")
	}
	rec, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	got := oggPackets(tb, rec)
	if len(got) != len(want) {
		tb.Fatalf("recorded %d packets, played %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			tb.Fatalf("packet %d differs", i)
		}
	}
}

func incoming(tb testing.TB, p *Phone) *Call {
	tb.Helper()
	var c *Call
	nodetest.WaitFor(tb, "incoming call", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, cc := range p.calls {
			c = cc
		}
		return c != nil
	})
	return c
}

// waitIdle waits until p has no call and its status is back to online.
func waitIdle(tb testing.TB, p *Phone) {
	tb.Helper()
	nodetest.WaitFor(tb, "phone idle", func() bool {
		p.mu.Lock()
		n := len(p.calls)
		p.mu.Unlock()
		p.statusMu.Lock()
		busy := p.busy
		p.statusMu.Unlock()
		return n == 0 && !busy
	})
}

func TestCall(t *testing.T) {
	nodes := startNodes(t, 2)
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	want := oggPackets(t, data)

	evB, recDir := newEvents(), t.TempDir()
	b := startPhone(t, nodes[1], Options{
		Registration: client.Registration{Name: "Bob Example", Phone: "+49 30 1234567"},
		Answer:       AnswerAuto,
		RecordDir:    recDir,
		OnEvent:      evB.add,
	})
	evA := newEvents()
	a := startPhone(t, nodes[0], Options{
		Registration:  client.Registration{UID: "alice-test"},
		OnEvent:       evA.add,
		KnownKeysFile: t.TempDir() + "/known_keys.json",
	})
	evA.wait(t, client.EventRegistered, "")

	res := find(t, apiClient(t, nodes[0]), "030 1234567", b.Ack().Terminal)
	if res.Node != nodes[1].ID().String() || !bytes.Equal(res.Key, b.Key()) {
		t.Fatalf("search result node %s key %x, want %s %x", res.Node, res.Key, nodes[1].ID(), b.Key())
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := a.Call(ctx, res, CallOptions{Play: fixture})
	if err != nil {
		t.Fatalf("Call: %v (events %s)", err, evA)
	}
	evA.wait(t, client.EventRinging, c.ID())
	evB.wait(t, client.EventIncoming, c.ID())
	for name, ev := range map[string]*events{"caller": evA, "callee": evB} {
		e := ev.wait(t, client.EventConnected, c.ID())
		t.Logf("%s connected: setup %.1f ms, route %s", name, e.SetupMS, e.Route)
		if e.SetupMS <= 0 || e.Route != "direct" {
			t.Errorf("%s connected event %+v: want setup_ms > 0, route direct", name, e)
		}
	}
	evA.wait(t, client.EventQuality, c.ID())

	// Wait until B has every packet A plays, then hang up.
	bc := incoming(t, b)
	nodetest.WaitFor(t, "all packets at the callee", func() bool {
		return bc.Peer().Stats().PacketsReceived >= uint32(len(want))
	})
	if err := c.Hangup(); err != nil {
		t.Fatal(err)
	}
	endA := evA.wait(t, client.EventEnded, c.ID())
	endB := evB.wait(t, client.EventEnded, c.ID())
	if endA.Reason != "hangup" || endB.Reason != "hangup" {
		t.Errorf("ended: caller %q, callee %q; want hangup for both", endA.Reason, endB.Reason)
	}
	checkRecording(t, endB.Record, want)
	// Both are online again.
	ack := b.Ack()
	find(t, apiClient(t, nodes[0]), "+49301234567", ack.Terminal)
}

func TestBusyRejectUnavailable(t *testing.T) {
	nodes := startNodes(t, 2)
	b := startPhone(t, nodes[1], Options{Registration: client.Registration{Phone: "+49 30 555"}, Answer: AnswerAuto})
	r := startPhone(t, nodes[1], Options{Registration: client.Registration{Phone: "+49 30 666"}, Answer: AnswerReject})
	a := startPhone(t, nodes[0], Options{Registration: client.Registration{UID: "a"}})
	evC := newEvents()
	cp := startPhone(t, nodes[0], Options{Registration: client.Registration{UID: "c"}, OnEvent: evC.add})
	ca := apiClient(t, nodes[0])
	resB := find(t, ca, "030 555", b.Ack().Terminal)
	resR := find(t, ca, "030 666", r.Ack().Terminal)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	t.Run("rejected", func(t *testing.T) {
		_, err := a.Call(ctx, resR, CallOptions{})
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("Call: %v, want ErrRejected", err)
		}
	})
	t.Run("identity", func(t *testing.T) {
		forged := resB
		forged.Key, _, _ = ed25519.GenerateKey(nil)
		_, err := a.Call(ctx, forged, CallOptions{})
		if !errors.Is(err, ErrIdentity) {
			t.Fatalf("Call: %v, want ErrIdentity", err)
		}
	})
	t.Run("busy", func(t *testing.T) {
		waitIdle(t, b)
		call, err := a.Call(ctx, resB, CallOptions{})
		if err != nil {
			t.Fatalf("Call: %v", err)
		}
		defer call.Hangup()
		_, err = cp.Call(ctx, resB, CallOptions{})
		if !errors.Is(err, ErrBusy) {
			t.Fatalf("third party's Call: %v, want ErrBusy", err)
		}
		if e := evC.wait(t, client.EventEnded, ""); e.Reason != "busy" {
			t.Errorf("ended %+v, want reason busy", e)
		}
	})
	t.Run("unavailable", func(t *testing.T) {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		_, err := a.Call(ctx, resB, CallOptions{})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Call: %v, want ErrUnavailable", err)
		}
	})
}

func TestAsk(t *testing.T) {
	nodes := startNodes(t, 1)
	asked := make(chan Incoming, 1)
	b := startPhone(t, nodes[0], Options{
		Registration: client.Registration{Name: "Asker"},
		Answer:       AnswerAsk,
		Ask: func(ctx context.Context, inv Incoming) bool {
			asked <- inv
			<-ctx.Done() // the caller gives up
			return true
		},
	})
	evA := newEvents()
	a := startPhone(t, nodes[0], Options{Registration: client.Registration{UID: "caller"}, OnEvent: evA.add})
	res := find(t, apiClient(t, nodes[0]), "asker", b.Ack().Terminal)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(ctx, res, CallOptions{})
		errc <- err
	}()
	inv := <-asked
	if inv.From.Terminal != a.Ack().Terminal || !bytes.Equal(inv.From.Key, a.Key()) {
		t.Errorf("incoming from %+v, want terminal %s with its key", inv.From, a.Ack().Terminal)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Call: %v, want context.Canceled", err)
	}
	evA.wait(t, client.EventEnded, "")
	nodetest.WaitFor(t, "callee's call to end", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.calls) == 0
	})
}

func TestKnownKeys(t *testing.T) {
	path := t.TempDir() + "/known.json"
	k, err := loadKnownKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	pub1, _, _ := ed25519.GenerateKey(nil)
	pub2, _, _ := ed25519.GenerateKey(nil)
	ids := client.Ack{}.Identifiers
	ids.Phone, ids.Name = "+4930123", "Anna"
	if w := k.check(ids, pub1); len(w) != 0 {
		t.Fatalf("warnings for an unknown key: %v", w)
	}
	k.remember(ids, pub1)
	k2, err := loadKnownKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	if w := k2.check(ids, pub1); len(w) != 0 {
		t.Fatalf("warnings for the known key: %v", w)
	}
	if w := k2.check(ids, pub2); len(w) != 1 || !strings.Contains(w[0], "phone:+4930123") {
		t.Fatalf("warnings for a changed key: %v", w)
	}
}

func TestWSURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:7370":  "ws://127.0.0.1:7370/v1/ws",
		"https://node.example":   "wss://node.example/v1/ws",
		"https://node.example/x": "wss://node.example/x/v1/ws",
	} {
		if got, err := wsURLOf(in); err != nil || got != want {
			t.Errorf("wsURLOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := wsURLOf("ftp://x"); err == nil {
		t.Error("wsURLOf(ftp://x): no error")
	}
}

// TestConnectedWhenStarted: a Phone that Start returned can place a call at
// once: its WebSocket is current before the session goroutine runs (a
// call right after Start once failed with ErrNotConnected in CI).
func TestConnectedWhenStarted(t *testing.T) {
	nodes := startNodes(t, 1)
	for i := range 5 {
		p := startPhone(t, nodes[0], Options{Registration: client.Registration{UID: fmt.Sprintf("fresh-%d", i)}})
		p.mu.Lock()
		conn := p.conn
		p.mu.Unlock()
		if conn == nil {
			t.Fatalf("phone %d: no current connection when Start returned", i)
		}
	}
}
