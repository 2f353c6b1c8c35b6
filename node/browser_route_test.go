package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/call/policy"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// legStats is the page's view of its call's current connection.
type legStats struct {
	Leg     int    `json:"leg"`
	Packets int    `json:"packets"` // inbound audio packets of this connection
	State   string `json:"state"`
	Next    bool   `json:"next"` // a new leg is being brought up
	Old     string `json:"old"`  // connection state of the first leg
}

// legStats reads the page's current RTCPeerConnection statistics.
func (p *page) legStats() legStats {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const c = T.call, r = await c.cur.pc.getStats();
		let n = 0;
		r.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio") n += s.packetsReceived || 0; });
		return JSON.stringify({leg: c.cur.n, packets: n, state: c.cur.pc.connectionState, next: !!c.next,
			old: window.firstPC ? window.firstPC.connectionState : ""});
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("page stats: %v\npage state: %s", err, p.state())
	}
	var s legStats
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		p.t.Fatalf("page stats %q: %v", v, err)
	}
	return s
}

// playAll plays the file into c's current leg over and over until the call
// ends (the fixture lasts a few seconds, the call longer).
func playAll(t *testing.T, c *phone.Call, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-c.Done():
				return
			default:
			}
			if err := c.Peer().Play(bytes.NewReader(data)); err != nil {
				if !errors.Is(err, media.ErrClosed) {
					t.Errorf("play: %v", err)
					return
				}
				time.Sleep(50 * time.Millisecond) // the leg is being replaced or the call ends
			}
		}
	}()
	t.Cleanup(func() { c.Hangup(); wg.Wait() })
}

// TestBrowserRouteSwitch: an irmv phone whose thresholds no call meets
// calls the page, so it moves the call from the direct route to the relay
// a few seconds in (a second WebRTC connection, leg 1, relay-only on both
// sides). The page answers the new leg, moves audio and chat to it and
// closes the first; audio and text carry on both ways.
func TestBrowserRouteSwitch(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	p := openPage(t, nodes[0], 1280, 800)
	webTerminal := p.register("Hanna Web", "+49 221 5550100")
	cli, ev := startGoPhone(t, nodes[1], client.Registration{Name: "Ida Desk", Phone: "+49 221 5550199"},
		phone.Options{
			RecordDir: t.TempDir(),
			// Any measured jitter or RTT is over these: the call moves.
			MaxJitter: time.Nanosecond,
			MaxRTT:    time.Nanosecond,
			MaxLoss:   -1,
		})
	res := findFrom(t, nodes[1], "+49 221 5550100", webTerminal)

	type result struct {
		c   *phone.Call
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), browserWait)
		defer cancel()
		c, err := cli.Call(ctx, res, phone.CallOptions{})
		done <- result{c, err}
	}()
	p.waitFor(`document.body.dataset.call === "incoming"`)
	p.do(chromedp.Click(chromedp.CSS("#accept")))
	r := <-done
	if r.err != nil {
		t.Fatalf("Call: %v\npage state: %s", r.err, p.state())
	}
	c := r.c
	playAll(t, c, speechOgg)
	p.waitFor(`document.body.dataset.call === "connected" && document.body.dataset.route === "direct"`)
	p.eval(`window.firstPC = T.call.cur.pc, ""`)
	connected := ev.wait(t, "connected", ofType(client.EventConnected))
	if connected.Route != signal.RouteDirect {
		t.Fatalf("connected on the %q route, want direct", connected.Route)
	}

	// The first move is to a relayed route ("relayed", or a newer phone's
	// other relay routes, which may follow it).
	route := ev.wait(t, "route", ofType(client.EventRoute))
	t.Logf("the phone moved the call %s → %s (%s)", route.From, route.To, route.Reason)
	if route.From != signal.RouteDirect || !strings.HasPrefix(route.To, signal.RouteRelayed) {
		t.Errorf("route event %+v, want direct → relayed", route)
	}
	ev.mu.Lock()
	for _, e := range ev.list {
		if e.Type == client.EventWarning {
			t.Errorf("phone warning: %s", e.Reason)
		}
	}
	ev.mu.Unlock()

	// A callee does not remember the caller's key: the caller's node
	// vouches for what it claims only.
	if k := p.eval(`localStorage.getItem("irmv-known-keys") || ""`); k != "" {
		t.Errorf("the called page remembered keys %s", k)
	}

	// The page took the new leg over and closed the first.
	p.waitFor(`Number(document.body.dataset.leg) >= 1 && document.body.dataset.route === "relayed"`)
	p.waitFor(`window.firstPC.connectionState === "closed"`)
	if s := p.eval(`document.getElementById("call-state").textContent`); s != "connected · relayed" {
		t.Errorf("call status %q, want connected · relayed", s)
	}
	if s := p.eval(`document.body.dataset.call + " " + document.body.dataset.chat`); s != "connected open" {
		t.Errorf("page call/chat %q after the switch, want connected open", s)
	}
	if got := c.Peer().Route(); got != signal.RouteRelayed {
		t.Errorf("the phone's current leg is %q, want relayed", got)
	}

	// Audio flows both ways on the new connections (counted per leg: the
	// phone may move the call on once more meanwhile).
	if s := p.legStats(); s.Leg < 1 || s.State != "connected" {
		t.Fatalf("page leg after the switch: %+v", s)
	}
	var base legStats
	nodetest.WaitFor(t, "audio from the phone on the page's new connection", func() bool {
		s := p.legStats()
		if s.Leg != base.Leg || base.Packets == 0 {
			base = s
			return false
		}
		return s.Leg >= 1 && s.Packets > base.Packets+50
	})
	var goPeer *media.Peer
	var g0 int64
	nodetest.WaitFor(t, "audio from the page on the phone's new leg", func() bool {
		if pc := c.Peer(); pc != goPeer {
			goPeer, g0 = pc, int64(pc.Stats().PacketsReceived)
			return false
		}
		return int64(goPeer.Stats().PacketsReceived) > g0+50
	})
	t.Logf("after the switch: page received %d packets on leg %d, the phone %d on its leg", p.legStats().Packets, p.legStats().Leg, goPeer.Stats().PacketsReceived)

	// Chat moved too.
	nodetest.WaitFor(t, "sending text on the new leg", func() bool { return c.Peer().SendText("still there?") == nil })
	p.waitFor(`[...document.querySelectorAll("#chat-log li.them")].some(li => li.textContent === "still there?")`)
	p.do(
		chromedp.SetValue(chromedp.CSS("#chat-input"), "yes, relayed"),
		chromedp.Click(chromedp.CSS("#chat-send")),
	)
	ev.wait(t, "text", func(e client.Event) bool { return e.Type == client.EventText && e.Text == "yes, relayed" })

	newLeg := goPeer.Stats().PacketsReceived
	if err := c.Hangup(); err != nil {
		t.Fatal(err)
	}
	p.waitFor(`document.body.dataset.call === "ended" && document.body.dataset.callReason === "hangup"`)
	ended := ev.wait(t, "ended", ofType(client.EventEnded))
	// The recording follows the call onto the new leg: it covers the call
	// (the page's fake microphone sends a 20 ms packet all the time), not
	// only the part before the switch.
	if ended.Record == "" {
		t.Fatal("the phone recorded nothing")
	}
	got := opusPackets(t, ended.Record)
	want := int(ended.Time.Sub(connected.Time) / (20 * time.Millisecond))
	t.Logf("the phone recorded %d Opus packets from the page over a %d-packet call; %d arrived on the new leg", got, want, newLeg)
	if got < want*8/10 {
		t.Errorf("the recording has %d packets, want at least %d of the call's %d", got, want*8/10, want)
	}
}

// TestBrowserRouteSwitchFails: the page can get no relay candidates (its
// ICE servers are taken away), so the relayed leg the phone offers never
// comes up. Both sides give it up and the call carries on where it was.
func TestBrowserRouteSwitchFails(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	p := openPage(t, nodes[0], 1280, 800)
	webTerminal := p.register("Jana Web", "+49 341 5550100")
	cli, ev := startGoPhone(t, nodes[1], client.Registration{Name: "Karl Desk"},
		phone.Options{MaxJitter: time.Nanosecond, MaxRTT: time.Nanosecond, MaxLoss: -1})
	res := findFrom(t, nodes[1], "+49 341 5550100", webTerminal)
	// No TURN server: a relay-only connection gathers nothing.
	p.eval(`T.ice = [], ""`)

	done := make(chan *phone.Call, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), browserWait)
		defer cancel()
		c, err := cli.Call(ctx, res, phone.CallOptions{})
		if err != nil {
			t.Errorf("Call: %v", err)
		}
		done <- c
	}()
	p.waitFor(`document.body.dataset.call === "incoming"`)
	p.do(chromedp.Click(chromedp.CSS("#accept")))
	c := <-done
	if c == nil {
		t.FailNow()
	}
	playAll(t, c, speechOgg)
	p.waitFor(`document.body.dataset.call === "connected"`)
	first := c.Peer()

	w := ev.wait(t, "warning", ofType(client.EventWarning))
	t.Logf("phone: %s", w.Reason)
	p.waitFor(`document.getElementById("call-warning").textContent.includes("failed")`)
	t.Logf("page: %s", p.eval(`document.getElementById("call-warning").textContent`))

	// Still on the first connection, with audio both ways.
	if s := p.eval(`document.body.dataset.call + " leg " + document.body.dataset.leg + " " + document.body.dataset.route`); s != "connected leg 0 direct" {
		t.Errorf("page after the failed switch: %q, want connected leg 0 direct", s)
	}
	if c.Peer() != first {
		t.Fatal("the phone moved the call")
	}
	s0 := p.legStats()
	g0 := first.Stats().PacketsReceived
	nodetest.WaitFor(t, "audio both ways on the first connection", func() bool {
		s := p.legStats()
		return s.Leg == 0 && s.Packets > s0.Packets+50 && first.Stats().PacketsReceived > g0+50
	})
	ev.mu.Lock()
	for _, e := range ev.list {
		if e.Type == client.EventRoute || e.Type == client.EventEnded {
			t.Errorf("phone event %s %+v", e.Type, e)
		}
	}
	ev.mu.Unlock()
}

// TestBrowserQualityCases runs the page's quality measuring (quality.js)
// on call/media's cases (TestQualityCases): the page and the Go phone
// measure a call alike.
func TestBrowserQualityCases(t *testing.T) {
	cases, err := os.ReadFile("../call/media/testdata/quality-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	nodes := nodetest.Chain(t, 1, nil)
	p := openPage(t, nodes[0], 800, 600)
	out := p.evalAsync(`(async () => {
		const { Meter } = await import("/static/quality.js");
		const cases = ` + string(cases) + `;
		return JSON.stringify(cases.map((c) => {
			const m = new Meter();
			return c.samples.map((s) => {
				const report = new Map(s.stats.map((st, i) => [String(i), Object.assign({ id: String(i) }, st)]));
				if (s.pairRTT) {
					report.set("t", { id: "t", type: "transport", selectedCandidatePairId: "p" });
					report.set("p", { id: "p", type: "candidate-pair", currentRoundTripTime: s.pairRTT });
				}
				return m.sample(report);
			});
		}));
	})()`)
	var want []struct {
		Name    string `json:"name"`
		Samples []struct {
			Want media.Quality `json:"want"`
		} `json:"samples"`
	}
	if err := json.Unmarshal(cases, &want); err != nil {
		t.Fatal(err)
	}
	var got [][]media.Quality
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("page's results %s: %v", out, err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d cases from the page, want %d", len(got), len(want))
	}
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }
	for i, c := range want {
		for j, s := range c.Samples {
			g := got[i][j]
			if !near(g.Loss, s.Want.Loss) || !near(g.Jitter, s.Want.Jitter) || !near(g.RTT, s.Want.RTT) || g.PacketsReceived != s.Want.PacketsReceived {
				t.Errorf("%s, sample %d: the page has %+v, want %+v", c.Name, j, g, s.Want)
			}
		}
	}
}

// TestBrowserKnownKeysCases runs the page's known keys (keys.js) on the Go
// phone's cases (call/phone TestKnownKeysCases).
func TestBrowserKnownKeysCases(t *testing.T) {
	cases, err := os.ReadFile("../call/phone/testdata/knownkeys-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	nodes := nodetest.Chain(t, 1, nil)
	p := openPage(t, nodes[0], 800, 600)
	out := p.evalAsync(`(async () => {
		const { changedKeys, remembered } = await import("/static/keys.js");
		const cases = ` + string(cases) + `;
		const bad = [];
		for (const c of cases) {
			let known = {};
			c.steps.forEach((s, i) => {
				if (s.op === "remember") known = remembered(known, s.ids, s.key);
				if (s.op === "check") {
					const got = changedKeys(known, s.ids, s.key);
					if (JSON.stringify(got) !== JSON.stringify(s.want)) bad.push(c.name + ", step " + i + ": " + JSON.stringify(got) + ", want " + JSON.stringify(s.want));
				}
			});
		}
		return bad.join("\n");
	})()`)
	if out != "" {
		t.Errorf("the page's known keys differ from the Go phone's:\n%s", out)
	}
}

// TestBrowserDescriptionCases runs the page's fingerprint check
// (fingerprint.js) on call/signal's cases (TestDescriptionCases:
// matching, mismatching, missing or foreign signatures), and has the Go
// side verify what the page signs.
func TestBrowserDescriptionCases(t *testing.T) {
	cases, err := os.ReadFile("../call/signal/testdata/description-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	nodes := nodetest.Chain(t, 1, nil)
	p := openPage(t, nodes[0], 800, 600)
	out := p.evalAsync(`(async () => {
		const { verifyDescription, ERR_BAD_SIG, ERR_MISMATCH } = await import("/static/fingerprint.js");
		const cases = ` + string(cases) + `;
		const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
		const bad = [];
		for (const c of cases) {
			const why = await verifyDescription(c.desc, c.key ? unb64(c.key) : null);
			const got = why === "" ? "" : why.startsWith(ERR_BAD_SIG + ": ") ? "sig" : why.startsWith(ERR_MISMATCH + ": ") ? "mismatch" : why;
			if (got !== c.want) bad.push(c.name + ": " + JSON.stringify(why) + ", want " + JSON.stringify(c.want));
		}
		return bad.join("\n");
	})()`)
	if out != "" {
		t.Errorf("the page's fingerprint check differs from call/signal's:\n%s", out)
	}

	// What the page signs (describe) verifies in Go against its key, and
	// in the page against no other.
	out = p.evalAsync(`(async () => {
		const { describe, verifyDescription } = await import("/static/fingerprint.js");
		const b64 = (b) => btoa(String.fromCharCode(...new Uint8Array(b)));
		const gen = () => crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
		const pair = await gen(), other = await gen();
		const pc = new RTCPeerConnection();
		pc.createDataChannel("chat");
		await pc.setLocalDescription(await pc.createOffer());
		const desc = await describe(pc.localDescription, async (bytes) => new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes)));
		pc.close();
		const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
		const otherPub = new Uint8Array(await crypto.subtle.exportKey("raw", other.publicKey));
		return JSON.stringify({ key: b64(pub), desc, own: await verifyDescription(desc, pub), other: await verifyDescription(desc, otherPub) });
	})()`)
	var signed struct {
		Key        []byte             `json:"key"`
		Desc       signal.Description `json:"desc"`
		Own, Other string
	}
	if err := json.Unmarshal([]byte(out), &signed); err != nil {
		t.Fatalf("the page's description %s: %v", out, err)
	}
	if err := signed.Desc.Verify(signed.Key); err != nil || signed.Desc.Fingerprint == "" {
		t.Errorf("the page's signed description %+v does not verify in Go: %v", signed.Desc, err)
	}
	if signed.Own != "" || !strings.HasPrefix(signed.Other, "bad fingerprint signature: ") {
		t.Errorf("the page verifies its own description as %q and against another key as %q; want \"\" and a bad signature", signed.Own, signed.Other)
	}
}

// TestBrowserConfig: the node serves the terminal side's shared figures
// (GET /v1/config), the Go phone's own, and the page runs on them.
func TestBrowserConfig(t *testing.T) {
	nodes := nodetest.Chain(t, 1, nil)
	var cfg policy.Config
	if code := getJSON(t, nodes[0].APIURL()+"/v1/config", &cfg); code != http.StatusOK {
		t.Fatalf("GET /v1/config: %d", code)
	}
	if cfg.MaxLoss != phone.DefaultMaxLoss || cfg.MaxJitter != phone.DefaultMaxJitter.Seconds() || cfg.MaxRTT != phone.DefaultMaxRTT.Seconds() ||
		cfg.BadSamples != phone.BadSamples || cfg.RouteHoldDown != phone.RouteHoldDown.Seconds() || cfg.RerouteTimeout != phone.RerouteTimeout.Seconds() ||
		cfg.PingInterval != phone.PingInterval.Seconds() || cfg.RingTimeout != phone.RingTimeout.Seconds() ||
		cfg.Reregister != phone.ReregisterInterval.Seconds() || cfg.MaxLeg != signal.MaxLeg || len(cfg.RouteOrder) != 3 ||
		cfg.SampleInterval != policy.SampleInterval.Seconds() || cfg.ReconnectMin != policy.ReconnectMin.Seconds() || cfg.ReconnectMax != policy.ReconnectMax.Seconds() {
		t.Errorf("GET /v1/config: %+v, not the phone's figures", cfg)
	}
	p := openPage(t, nodes[0], 800, 600)
	var page policy.Config
	if err := json.Unmarshal([]byte(p.eval(`JSON.stringify(T.cfg)`)), &page); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(page) != fmt.Sprint(cfg) {
		t.Errorf("the page runs on %+v, the node serves %+v", page, cfg)
	}
}

// TestBrowserMonitorCases runs the page's route switching decisions
// (monitor.js) on the Go monitor's cases (call/phone TestMonitorCases),
// with the node's figures (GET /v1/config).
func TestBrowserMonitorCases(t *testing.T) {
	cases, err := os.ReadFile("../call/phone/testdata/monitor-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	nodes := nodetest.Chain(t, 1, nil)
	p := openPage(t, nodes[0], 800, 600)
	out := p.evalAsync(`(async () => {
		const { Monitor } = await import("/static/monitor.js");
		const cases = ` + string(cases) + `;
		const bad = [];
		for (const c of cases) {
			const m = new Monitor(T.cfg), set = c.thresholds || {};
			const th = { maxLoss: set.max_loss || T.cfg.max_loss, maxJitter: set.max_jitter || T.cfg.max_jitter, maxRTT: set.max_rtt || T.cfg.max_rtt };
			c.steps.forEach((s, i) => {
				if (s.settle) { m.settle(); return; }
				const q = Object.assign({ loss: 0, jitter: 0, rtt: 0 }, s.q);
				const got = m.observe(th, c.can, q, s.t * 1000) || { route: "", reason: "" };
				if (got.route !== (s.to || "") || (got.route && got.reason !== s.reason)) {
					bad.push(c.name + ", step " + i + ": " + JSON.stringify(got) + ", want " + JSON.stringify({ route: s.to || "", reason: s.reason || "" }));
				}
			});
		}
		return bad.join("\n");
	})()`)
	if out != "" {
		t.Errorf("the page's route switching differs from the Go phone's:\n%s", out)
	}
}
