package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// longSpeech writes speech.ogg over and over into an Ogg/Opus file of at
// least d: the phone plays it through the whole call (Options.Play plays
// a file once).
func longSpeech(t *testing.T, d time.Duration) string {
	t.Helper()
	f, err := os.Open(speechOgg)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := media.OpusPackets(f)
	f.Close()
	if err != nil || len(pkts) == 0 {
		t.Fatalf("%s: %d packets, %v", speechOgg, len(pkts), err)
	}
	path := filepath.Join(t.TempDir(), "long.ogg")
	w, err := oggwriter.New(path, 48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint16
	for n := 0; time.Duration(n)*20*time.Millisecond < d; {
		for _, p := range pkts {
			seq++
			if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq}, Payload: p}); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBrowserCallerRouteSwitch: the page calls an irmv phone; once the
// call runs directly it is given thresholds no call meets, so the page, as
// the caller, moves the call from the direct route to a relayed one: a
// second WebRTC connection (leg 1, relay-only on both sides) offered in an
// update. The phone answers it and both take it over make-before-break;
// audio carries on both ways and the call hangs up as usual.
func TestBrowserCallerRouteSwitch(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	cli, ev := startGoPhone(t, nodes[1],
		client.Registration{Name: "Lena Desk", Phone: "+49 40 5550199"},
		phone.Options{Answer: phone.AnswerAuto, RecordDir: t.TempDir(), Play: longSpeech(t, 3*time.Minute)})
	cliTerminal := cli.Ack().Terminal
	findFrom(t, nodes[0], "+49 40 5550199", cliTerminal)

	p := openPage(t, nodes[0], 1280, 800)
	p.register("Max Web", "+49 40 5550100")
	// No thresholds until ICE has settled on the direct pair (below).
	p.eval(`T.thresholds = {maxLoss: -1, maxJitter: -1, maxRTT: -1}, ""`)
	p.search("040 5550199", cliTerminal)
	p.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#results li[data-terminal=%q] .call-btn`, cliTerminal))))
	p.waitFor(`document.body.dataset.call === "connected" && document.body.dataset.route === "direct"`)
	p.eval(`window.firstPC = T.call.cur.pc, ""`)
	connected := ev.wait(t, "connected", ofType(client.EventConnected))
	settled := settleDirect(t, ev, connected)
	// The caller remembers the callee's key under its phone number, not
	// its name (call/phone knownkeys.go).
	if k := p.eval(`Object.keys(JSON.parse(localStorage.getItem("irmv-known-keys") || "{}")).join(" ")`); k != "phone:+49405550199" {
		t.Errorf("the calling page remembered keys for %q, want phone:+49405550199", k)
	}

	// Any measured jitter or RTT is over these: the page moves the call,
	// first to its own relay.
	p.eval(`T.thresholds = {maxLoss: -1, maxJitter: 1e-9, maxRTT: 1e-9}, ""`)
	route := ev.wait(t, "route", func(e client.Event) bool { return e.Type == client.EventRoute && e.Time.After(settled.Time) })
	t.Logf("the page moved the call %s → %s (%s)", route.From, route.To, route.Reason)
	if route.From != signal.RouteDirect || route.To != signal.RouteRelayed {
		t.Errorf("route event %+v, want direct → relayed", route)
	}
	if !strings.HasPrefix(route.Reason, "jitter ") && !strings.HasPrefix(route.Reason, "rtt ") {
		t.Errorf("route event's reason %q, want the threshold crossed", route.Reason)
	}

	// The page took the new leg over and closed the first.
	p.waitFor(`Number(document.body.dataset.leg) >= 1 && document.body.dataset.route.startsWith("relayed")`)
	p.waitFor(`window.firstPC.connectionState === "closed"`)
	if s := p.eval(`document.getElementById("call-state").textContent`); !strings.HasPrefix(s, "connected · relayed") {
		t.Errorf("call status %q, want connected · relayed…", s)
	}
	if s := p.eval(`document.getElementById("q-route").textContent`); !strings.HasPrefix(s, "relayed") {
		t.Errorf("route shown %q, want relayed…", s)
	}
	if s := p.eval(`[...document.querySelectorAll("#chat-log li.note")].map(li => li.textContent).join(" | ")`); !strings.Contains(s, "Route: direct → relayed (") {
		t.Errorf("call log %q, want the move to the relay with its reason", s)
	}

	// Audio from the phone on the page's new connection (counted per leg:
	// the page moves on to the callee's relay, relayed-peer, a few seconds
	// later, and stays there: the others are held down).
	var base legStats
	nodetest.WaitFor(t, "audio from the phone on the page's new connection", func() bool {
		s := p.legStats()
		if s.Leg != base.Leg || base.Packets == 0 {
			base = s
			return false
		}
		return s.Leg >= 1 && s.State == "connected" && s.Packets > base.Packets+50
	})
	// Let the call run on the last route at least as long as it ran
	// before, so that the phone's recording shows what arrived there.
	var last client.Event
	nodetest.WaitFor(t, "the call running on its last route", func() bool {
		if p.eval(`document.body.dataset.rerouting || ""`) != "" {
			return false
		}
		ev.mu.Lock()
		for _, e := range ev.list {
			if e.Type == client.EventRoute {
				last = e
			}
		}
		ev.mu.Unlock()
		return time.Since(last.Time) > last.Time.Sub(connected.Time)+2*time.Second
	})
	s := p.legStats()
	if s.State != "connected" || s.Leg < 1 {
		t.Errorf("page leg at the end: %+v", s)
	}
	// From the relay the call moves on to the callee's node's relay
	// (peer_ice_servers of the accept), and stays there: direct and
	// relayed were left within the hold-down.
	if last.From != signal.RouteRelayed || last.To != signal.RouteRelayedPeer {
		t.Errorf("last route event %s → %s, want relayed → relayed-peer", last.From, last.To)
	}
	if r := p.eval(`document.body.dataset.route + " " + document.getElementById("call-state").textContent`); r != "relayed-peer connected · relayed-peer" {
		t.Errorf("page route and status %q, want relayed-peer connected · relayed-peer", r)
	}
	// The page's side of it gathers at the callee's node's TURN server.
	relay := p.evalAsync(`(async () => {
		const r = await T.call.cur.pc.getStats();
		let pair = null;
		r.forEach((s) => { if (s.type === "transport" && s.selectedCandidatePairId) pair = r.get(s.selectedCandidatePairId); });
		const local = pair && r.get(pair.localCandidateId);
		return JSON.stringify({type: local ? local.candidateType : "", url: local ? local.url || "" : "",
			peer: T.call.peerICE.flatMap((s) => [].concat(s.urls)), own: T.ice.flatMap((s) => [].concat(s.urls))});
	})()`)
	var lc struct {
		Type, URL string
		Peer, Own []string
	}
	if err := json.Unmarshal([]byte(relay), &lc); err != nil {
		t.Fatalf("local candidate %q: %v", relay, err)
	}
	t.Logf("the page's relayed-peer candidate: %s from %s (callee's node: %v, own node: %v)", lc.Type, lc.URL, lc.Peer, lc.Own)
	if lc.Type != "relay" || !slices.Contains(lc.Peer, lc.URL) || slices.Contains(lc.Own, lc.URL) {
		t.Errorf("the page's relayed-peer leg uses a %s candidate from %q, want one from the callee's node's TURN server %v", lc.Type, lc.URL, lc.Peer)
	}
	t.Logf("page: leg %d on %s received %d packets; quality shown: loss %s, jitter %s, RTT %s", s.Leg,
		p.eval(`document.body.dataset.route`), s.Packets, p.eval(`document.getElementById("q-loss").textContent`),
		p.eval(`document.getElementById("q-jitter").textContent`), p.eval(`document.getElementById("q-rtt").textContent`))
	ev.mu.Lock()
	for _, e := range ev.list {
		switch e.Type {
		case client.EventRoute:
			t.Logf("phone: route %s → %s (%s)", e.From, e.To, e.Reason)
		case client.EventWarning:
			t.Errorf("phone warning: %s", e.Reason)
		}
	}
	ev.mu.Unlock()

	p.do(chromedp.Click(chromedp.CSS("#hangup")))
	p.waitFor(`document.body.dataset.call === "ended"`)
	ended := ev.wait(t, "ended", ofType(client.EventEnded))
	if ended.Reason != "hangup" {
		t.Errorf("the phone's call ended with %q, want hangup", ended.Reason)
	}
	// The page's fake microphone sends a 20 ms packet all the time. The
	// part of the call after the last move is at least 40% of it: a
	// recording of 80% of the call has audio from the last leg.
	if ended.Record == "" {
		t.Fatal("the phone recorded nothing")
	}
	got := opusPackets(t, ended.Record)
	want := int(ended.Time.Sub(connected.Time) / (20 * time.Millisecond))
	after := int(ended.Time.Sub(last.Time) / (20 * time.Millisecond))
	t.Logf("the phone recorded %d Opus packets from the page over a %d-packet call, %d of it after the last move", got, want, after)
	if after < want*4/10 {
		t.Fatalf("only %d of %d packets' time after the last move", after, want)
	}
	if got < want*8/10 {
		t.Errorf("the recording has %d packets, want at least %d of the call's %d", got, want*8/10, want)
	}
}

// settleDirect waits until the phone's first leg runs on the direct route,
// as the page's does, and returns the event that said so: connected, or a
// route event of the ICE agent's ("ice") after it. The page, controlling
// ICE as the caller, may first nominate a pair through the phone's TURN
// relay: the phone checks from its relayed candidate before that
// candidate's signalling reaches the page, which learns it as
// peer-reflexive (and calls it direct: a relay is told only by a "relay"
// candidate type). It renominates the better host pair when that one
// works; pion follows a higher-priority nomination (ice v4.4.8
// controlledSelector), and the phone's next sample reports the change.
// Each side knows its own end's candidate type for sure, so both saying
// direct means the pair is direct.
func settleDirect(t *testing.T, ev *phoneEvents, connected client.Event) client.Event {
	t.Helper()
	t.Logf("the phone connected on the %s route", connected.Route)
	last := connected
	nodetest.WaitFor(t, "the phone's first leg on the direct route", func() bool {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		for _, e := range ev.list {
			if e.Type == client.EventRoute && e.Time.After(last.Time) {
				if e.Reason != "ice" {
					t.Fatalf("route event %+v before the page was given thresholds", e)
				}
				t.Logf("the phone's ICE agent moved the pair: %s → %s", e.From, e.To)
				last = e
			}
		}
		return last.Route == signal.RouteDirect
	})
	return last
}

// evalAsync evaluates a JavaScript expression whose value is a promise of
// a string.
func (p *page) evalAsync(expr string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}
