// Package demo is `irmv demo`: three nodes and three phones in one process
// on 127.0.0.1, searches by several identifiers, and one call that plays a
// bundled speech sample and records it at the callee, with a timeline.
//
// Everything binds to loopback: the nodes listen on 127.0.0.1 with mDNS
// off, their TURN relays and APIs on 127.0.0.1:0, and the phones' WebRTC
// gathers loopback UDP candidates only.
package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
)

// speech is a short Opus speech sample (a copy of call/media/testdata's).
//
//go:embed testdata/speech.ogg
var speech []byte

// Report is what a demo run did, for tests and callers.
type Report struct {
	Found           map[string]client.Result // by query
	SetupMS         float64                  // caller's "connected" event
	Route           string
	PacketsPlayed   int
	PacketsRecorded int
	Recording       string // removed with the demo's directory unless Options.Dir is set
}

// Options tune a run; the zero value is the demo.
type Options struct {
	// Dir keeps the nodes' data and the recording; "": a temporary
	// directory, removed at the end.
	Dir string
	// Logger receives the nodes' and phones' logs; nil discards them.
	Logger *slog.Logger
}

// Run runs the demo, writing what happens to w.
func Run(ctx context.Context, w io.Writer, o Options) (*Report, error) {
	d := &demo{w: w, start: time.Now(), log: o.Logger, rep: &Report{Found: map[string]client.Result{}}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "irmv-demo-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	d.dir = dir
	defer d.close()
	err := d.run(ctx)
	return d.rep, err
}

type demo struct {
	w     io.Writer
	start time.Time
	dir   string
	log   *slog.Logger
	rep   *Report

	mu     sync.Mutex
	nodes  []*node.Node
	phones []*phone.Phone
}

// say prints a timeline line: seconds since start, then the text.
func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.w, "%6.3fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) run(ctx context.Context) error {
	d.say("starting 3 irmv nodes on 127.0.0.1 (a chain: each joins through the one before)")
	names := []string{"ap-kitchen", "ap-hall", "ap-garden"}
	for i := range 3 {
		opts := node.Options{
			DataDir: filepath.Join(d.dir, names[i]),
			Listen:  []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
			API:     "127.0.0.1:0",
			Region:  "DE",
			TURN:    "127.0.0.1:0",
			MDNS:    false,
			Logger:  d.log,
		}
		if i > 0 {
			opts.Bootstrap = []string{loopbackAddr(d.nodes[i-1])}
		}
		n, err := node.New(opts)
		if err != nil {
			return fmt.Errorf("node %s: %w", names[i], err)
		}
		d.nodes = append(d.nodes, n)
		if i > 0 {
			if err := waitFor(ctx, 10*time.Second, func() bool { return n.DHT().RoutingTable().Size() > 0 }); err != nil {
				return fmt.Errorf("node %s did not join: %w", names[i], err)
			}
		}
		d.say("node %s  %s  api %s", names[i], short(n.ID().String()), n.APIURL())
	}

	playFile := filepath.Join(d.dir, "speech.ogg")
	if err := os.WriteFile(playFile, speech, 0o600); err != nil {
		return err
	}
	d.rep.PacketsPlayed = OpusPackets(speech)

	bobEvents := make(chan client.Event, 64)
	callerEvents := make(chan client.Event, 64)
	alice, err := d.phone(ctx, 0, client.Registration{Name: "Alice Anders", UID: "alice-demo"}, phone.Options{OnEvent: forward(callerEvents)})
	if err != nil {
		return err
	}
	_, err = d.phone(ctx, 1, client.Registration{Name: "Carol Castro", Phone: "+49 89 7654321"}, phone.Options{})
	if err != nil {
		return err
	}
	bob, err := d.phone(ctx, 2, client.Registration{Name: "Bob Brückner", Phone: "+49 30 1234567", UID: "bob-demo"},
		phone.Options{Answer: phone.AnswerAuto, RecordDir: d.dir, OnEvent: forward(bobEvents)})
	if err != nil {
		return err
	}
	_ = alice

	// Search from Alice's node for the others, by each kind of identifier.
	api := d.client(0)
	var bobResult client.Result
	for _, q := range []struct{ text, terminal string }{
		{"030 1234567", bob.Ack().Terminal},  // national phone number
		{"uid:bob-demo", bob.Ack().Terminal}, // unique ID
		{"bob bruckner", bob.Ack().Terminal}, // whole name, no umlaut
		{"car", ""},                          // name prefix: flooding
		{"+49 (89) 765 43 21", ""},           // phone in another form
	} {
		res, err := d.search(ctx, api, q.text, q.terminal)
		if err != nil {
			return err
		}
		d.rep.Found[q.text] = res
		if res.Terminal == bob.Ack().Terminal && bobResult.Terminal == "" {
			bobResult = res
		}
	}

	// Call Bob and play the sample; Bob records it.
	d.say("alice calls %s (%s) and plays a %d-packet speech sample", bobResult.Identifiers.Name, bobResult.Identifiers.Phone, d.rep.PacketsPlayed)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := alice.Call(cctx, bobResult, phone.CallOptions{Play: playFile})
	if err != nil {
		return fmt.Errorf("call: %w", err)
	}
	if err := d.followCall(cctx, c, callerEvents, bobEvents); err != nil {
		return err
	}
	d.say("done: nodes and phones stop, temporary files are removed")
	return nil
}

// followCall prints the call's events, hangs up once the sample has had
// time to play out, and waits for Bob's recording.
func (d *demo) followCall(ctx context.Context, c *phone.Call, caller, callee <-chan client.Event) error {
	var hangup <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("call did not finish: %w", ctx.Err())
		case ev := <-caller:
			switch ev.Type {
			case client.EventRinging:
				d.say("  ringing")
			case client.EventConnected:
				d.rep.SetupMS, d.rep.Route = ev.SetupMS, ev.Route
				d.say("  alice: media path up, set-up %.0f ms (invite sent to media up), route %s", ev.SetupMS, ev.Route)
			case client.EventQuality:
				d.say("  quality: loss %.1f%%, jitter %.1f ms, rtt %.1f ms", 100*ev.Loss, ev.JitterMS, ev.RTTMS)
			case client.EventRoute:
				d.say("  route %s -> %s (%s)", ev.From, ev.To, ev.Reason)
			case client.EventEnded:
				d.say("  alice: call ended (%s)", ev.Reason)
			}
		case ev := <-callee:
			switch ev.Type {
			case client.EventIncoming:
				d.say("  bob: incoming call, answering")
			case client.EventConnected:
				d.say("  bob: first audio, set-up %.0f ms (invite received to first packet), route %s", ev.SetupMS, ev.Route)
				// The sample plays from here on; leave it time to arrive.
				hangup = time.After(OggDuration(speech) + 500*time.Millisecond)
			case client.EventEnded:
				d.rep.Recording = ev.Record
				if ev.Record == "" {
					return errors.New("bob recorded nothing")
				}
				data, err := os.ReadFile(ev.Record)
				if err != nil {
					return fmt.Errorf("bob's recording: %w", err)
				}
				d.rep.PacketsRecorded = OpusPackets(data)
				d.say("  bob: call ended (%s); recorded %d of %d packets (%d bytes)",
					ev.Reason, d.rep.PacketsRecorded, d.rep.PacketsPlayed, len(data))
				return nil
			}
		case <-hangup:
			hangup = nil
			d.say("  the sample has played (%.1f s); alice hangs up", OggDuration(speech).Seconds())
			if err := c.Hangup(); err != nil {
				return err
			}
		}
	}
}

// search runs q from api until terminal (or, if "", anything) is found
// callable, and prints how it was found.
func (d *demo) search(ctx context.Context, api *client.Client, q, terminal string) (client.Result, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var res client.Result
		ok := false
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		api.Search(sctx, client.Query{Text: q, Timeout: 2 * time.Second, Limit: 5}, func(r client.Result) error {
			if !ok && (terminal == "" || r.Terminal == terminal) && r.Status.Callable() {
				res, ok = r, true
				cancel() // found: stop reading
			}
			return nil
		})
		cancel()
		if ok {
			id := res.Identifiers
			who := id.Name
			if who == "" {
				who = id.Phone
			}
			d.say("search %-22q -> %s (%s) on node %s, via %s in %.1f ms", q, who, idSummary(id.Phone, id.UID), short(res.Node), res.Via, res.ElapsedMS)
			return res, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return client.Result{}, fmt.Errorf("search %q found nothing", q)
		}
		time.Sleep(100 * time.Millisecond) // the DHT records are still being stored
	}
}

func idSummary(phone, uid string) string {
	var parts []string
	if phone != "" {
		parts = append(parts, phone)
	}
	if uid != "" {
		parts = append(parts, "uid "+uid)
	}
	return strings.Join(parts, ", ")
}

// phone starts a phone on node i.
func (d *demo) phone(ctx context.Context, i int, reg client.Registration, o phone.Options) (*phone.Phone, error) {
	o.Client = d.client(i)
	o.Registration = reg
	o.SettingEngine = loopbackEngine()
	o.Logger = d.log
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := phone.Start(sctx, o)
	if err != nil {
		return nil, fmt.Errorf("phone %s: %w", reg.Name, err)
	}
	d.phones = append(d.phones, p)
	ack := p.Ack()
	d.say("phone %-14s registered on node %s as %s", reg.Name, short(d.nodes[i].ID().String()), strings.Join(ackIDs(ack), ", "))
	return p, nil
}

func ackIDs(a client.Ack) []string {
	var out []string
	for _, s := range []string{a.Identifiers.Phone, a.Identifiers.UID} {
		if s != "" {
			out = append(out, s)
		}
	}
	out = append(out, "name \""+a.Identifiers.Name+"\"")
	return out
}

func (d *demo) client(i int) *client.Client {
	c, _ := client.New(d.nodes[i].APIURL(), "")
	return c
}

func (d *demo) close() {
	for _, p := range d.phones {
		p.Close()
	}
	for _, n := range d.nodes {
		n.Close()
	}
}

// forward sends events to ch without blocking the phone.
func forward(ch chan<- client.Event) func(client.Event) {
	return func(e client.Event) {
		select {
		case ch <- e:
		default:
		}
	}
}

// loopbackEngine keeps WebRTC on 127.0.0.1 and out of multicast DNS.
func loopbackEngine() *webrtc.SettingEngine {
	return media.LoopbackSettingEngine()
}

// loopbackAddr is n's TCP multiaddr on 127.0.0.1.
func loopbackAddr(n *node.Node) string {
	for _, a := range n.Addrs() {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			return a
		}
	}
	return ""
}

func waitFor(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return "…" + id[len(id)-8:]
	}
	return id
}
