package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// The web terminal's tests drive Debian's Chromium through the DevTools
// protocol. They fail, not skip, without it: CI installs it (.ci/run).

const (
	browserWait = 60 * time.Second
	speechOgg   = "../call/media/testdata/speech.ogg"
)

// browserFlags keep Chromium off the network and give it a fake microphone
// (NOTES.md, "WebRTC (pion, Chromium) in tests").
func browserFlags(dataDir string) []chromedp.ExecAllocatorOption {
	opts := []chromedp.ExecAllocatorOption{chromedp.UserDataDir(dataDir)}
	for _, f := range []string{
		"no-sandbox", "disable-gpu", "disable-background-networking",
		"disable-component-update", "disable-sync", "no-first-run",
		"no-default-browser-check", "disable-default-apps", "disable-extensions",
		"use-fake-device-for-media-stream", "use-fake-ui-for-media-stream",
		"allow-loopback-in-peer-connection", "disable-dev-shm-usage",
		"mute-audio", "hide-scrollbars",
	} {
		opts = append(opts, chromedp.Flag(f, true))
	}
	return append(opts,
		chromedp.Flag("headless", "new"),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	)
}

// page is one Chromium tab showing a node's web terminal.
type page struct {
	t   testing.TB
	ctx context.Context

	mu      sync.Mutex
	console []string
}

// openPage starts a Chromium of its own and opens n's web page in it; the
// browser is closed at cleanup.
func openPage(t testing.TB, n *node.Node, width, height int64) *page {
	t.Helper()
	exe := testenv.Chromium(t)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(browserFlags(t.TempDir()), chromedp.ExecPath(exe))...)
	ctx, cancel := chromedp.NewContext(actx)
	p := &page{t: t, ctx: ctx}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		wg.Wait()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("page console:\n%s", strings.Join(p.console, "\n"))
			p.mu.Unlock()
		}
	})
	msgs := chromedp.Console(ctx) // starts the browser
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m.String())
			p.mu.Unlock()
		}
	}()
	p.do(chromedp.EmulateViewport(width, height), chromedp.Navigate(n.APIURL()+"/"))
	p.waitFor(`document.body.dataset.state === "unregistered"`)
	return p
}

// do runs actions with a generous deadline and fails the test on error.
func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\npage state: %s", err, p.state())
	}
}

// waitFor polls a JavaScript condition of the page until it holds.
func (p *page) waitFor(cond string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(browserWait)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v\npage state: %s", cond, err, p.state())
	}
}

// eval evaluates a JavaScript expression of type string.
func (p *page) eval(expr string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// state is the page's data-* attributes, for failure messages.
func (p *page) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(Object.assign({}, document.body.dataset, {warning: document.getElementById("call-warning").textContent, search: document.getElementById("search-info").textContent, regError: document.getElementById("reg-error").textContent}))`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return v
}

// register fills in the registration form and waits for the node's
// WebSocket welcome. It returns the terminal handle.
func (p *page) register(name, phoneNumber string) string {
	p.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	if name != "" {
		steps = append(steps, chromedp.SetValue(chromedp.CSS("#reg-name"), name))
	}
	if phoneNumber != "" {
		steps = append(steps, chromedp.SetValue(chromedp.CSS("#reg-phone"), phoneNumber))
	}
	p.do(append(steps, chromedp.Click(chromedp.CSS("#reg-submit")))...)
	p.waitFor(`document.body.dataset.state === "registered" && document.body.dataset.ws === "open"`)
	return p.eval(`document.body.dataset.terminal`)
}

// search runs a search in the page and waits for the terminal's result.
func (p *page) search(q, terminal string) {
	p.t.Helper()
	p.do(
		chromedp.SetValue(chromedp.CSS("#search-q"), q),
		chromedp.Click(chromedp.CSS("#search-go")),
	)
	p.waitFor(fmt.Sprintf(`document.querySelector('#results li[data-terminal=%q]')`, terminal))
}

// loopbackEngine keeps pion on 127.0.0.1 and out of multicast DNS.
func loopbackEngine() *webrtc.SettingEngine {
	return media.LoopbackSettingEngine()
}

// phoneEvents records a Phone's events.
type phoneEvents struct {
	mu      sync.Mutex
	list    []client.Event
	changed chan struct{}
}

func newPhoneEvents() *phoneEvents { return &phoneEvents{changed: make(chan struct{})} }

func (e *phoneEvents) add(ev client.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// wait returns the first event that match accepts.
func (e *phoneEvents) wait(t testing.TB, what string, match func(client.Event) bool) client.Event {
	t.Helper()
	deadline := time.After(browserWait)
	for {
		e.mu.Lock()
		for _, ev := range e.list {
			if match(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		ch := e.changed
		var got []string
		for _, ev := range e.list {
			got = append(got, ev.Type+":"+ev.Reason+ev.Text)
		}
		e.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %s event from the phone; got %v", what, got)
		}
	}
}

func ofType(typ string) func(client.Event) bool {
	return func(ev client.Event) bool { return ev.Type == typ }
}

// startGoPhone starts an irmv phone on n, closed at cleanup.
func startGoPhone(t testing.TB, n *node.Node, reg client.Registration, o phone.Options) (*phone.Phone, *phoneEvents) {
	t.Helper()
	c, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	ev := newPhoneEvents()
	o.Client, o.Registration, o.OnEvent = c, reg, ev.add
	o.SettingEngine = loopbackEngine()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	p, err := phone.Start(ctx, o)
	if err != nil {
		t.Fatalf("phone.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing the phone: %v", err)
		}
	})
	return p, ev
}

// findFrom searches through n's API until the terminal shows up callable.
func findFrom(t testing.TB, n *node.Node, q, terminal string) client.Result {
	t.Helper()
	c, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	var res client.Result
	nodetest.WaitFor(t, "search "+q, func() bool {
		found := errors.New("found")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := c.Search(ctx, client.Query{Text: q, Timeout: 2 * time.Second}, func(r client.Result) error {
			if r.Terminal == terminal && r.Status.Callable() {
				res = r
				return found
			}
			return nil
		})
		return errors.Is(err, found)
	})
	return res
}

// opusPackets counts the audio packets of an Ogg/Opus file.
func opusPackets(t testing.TB, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	defer f.Close()
	pkts, err := media.OpusPackets(f)
	if err != nil {
		t.Fatalf("recording %s is not Ogg/Opus: %v", path, err)
	}
	return len(pkts)
}

func TestBrowserCallsPhone(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	cli, ev := startGoPhone(t, nodes[1],
		client.Registration{Name: "Berta Desk", Phone: "+49 30 1234567"},
		phone.Options{Answer: phone.AnswerAuto, RecordDir: t.TempDir(), Play: speechOgg})
	cliTerminal := cli.Ack().Terminal
	findFrom(t, nodes[0], "+49 30 1234567", cliTerminal)

	p := openPage(t, nodes[0], 390, 844)
	p.register("Anna Web", "+49 30 7654321")
	if got := p.eval(`document.querySelector('#ack-list dd[data-field="signed-by"]').textContent`); got != "terminal" {
		t.Errorf("the acknowledgement says the record is signed by %q, want terminal", got)
	}
	p.search("030 1234567", cliTerminal)
	p.do(chromedp.Click(chromedp.CSS(fmt.Sprintf(`#results li[data-terminal=%q] .call-btn`, cliTerminal))))
	p.waitFor(`document.body.dataset.call === "connected"`)
	connected := ev.wait(t, "connected", ofType(client.EventConnected))
	if connected.Peer == nil || connected.Peer.Identifiers.Name != "Anna Web" {
		t.Errorf("the phone sees the caller as %+v, want Anna Web", connected.Peer)
	}

	// Text both ways is the data channel the caller (the page) created.
	p.waitFor(`document.body.dataset.chat === "open"`)
	p.do(
		chromedp.SetValue(chromedp.CSS("#chat-input"), "hello from the browser"),
		chromedp.Click(chromedp.CSS("#chat-send")),
	)
	ev.wait(t, "text", func(e client.Event) bool { return e.Type == client.EventText && e.Text == "hello from the browser" })

	// The browser hears the phone's file and sends its fake microphone.
	p.waitFor(`Number(document.getElementById("quality").dataset.packetsReceived) > 20`)
	p.waitFor(`Number(document.getElementById("quality").dataset.packetsSent) > 100`)
	if q := p.eval(`document.getElementById("q-route").textContent`); q != "direct" {
		t.Errorf("route shown %q, want direct", q)
	}

	p.do(chromedp.Click(chromedp.CSS("#hangup")))
	p.waitFor(`document.body.dataset.call === "ended"`)
	ended := ev.wait(t, "ended", ofType(client.EventEnded))
	if ended.Reason != "hangup" {
		t.Errorf("the phone's call ended with %q, want hangup", ended.Reason)
	}
	if ended.Record == "" {
		t.Fatal("the phone recorded nothing")
	}
	if n := opusPackets(t, ended.Record); n <= 20 {
		t.Errorf("the phone recorded %d Opus packets from the browser, want > 20", n)
	} else {
		t.Logf("the phone recorded %d Opus packets from the browser", n)
	}
}

// TestBrowserAnswersPhone: an irmv phone on node 1 calls the page on node
// 0; the page rings, the user clicks Accept, and media and text flow both
// ways until the phone hangs up.
func TestBrowserAnswersPhone(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	p := openPage(t, nodes[0], 1280, 800)
	webTerminal := p.register("Carla Web", "+49 40 5550100")
	cli, ev := startGoPhone(t, nodes[1], client.Registration{Name: "Dora Desk", Phone: "+49 40 5550199"},
		phone.Options{RecordDir: t.TempDir()})
	res := findFrom(t, nodes[1], "+49 40 5550100", webTerminal)
	if len(res.Key) != 32 {
		t.Fatalf("the page's record carries a key of %d bytes, want its Ed25519 key", len(res.Key))
	}

	type result struct {
		c   *phone.Call
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), browserWait)
		defer cancel()
		c, err := cli.Call(ctx, res, phone.CallOptions{Play: speechOgg})
		done <- result{c, err}
	}()
	p.waitFor(`document.body.dataset.call === "incoming"`)
	if who := p.eval(`document.getElementById("call-peer").textContent`); who != "Dora Desk" {
		t.Errorf("the page shows the caller as %q, want Dora Desk", who)
	}
	p.do(chromedp.Click(chromedp.CSS("#accept")))
	r := <-done
	if r.err != nil {
		t.Fatalf("Call: %v\npage state: %s", r.err, p.state())
	}
	c := r.c
	p.waitFor(`document.body.dataset.call === "connected"`)
	ev.wait(t, "connected", ofType(client.EventConnected))

	// The callee (the page) received the channel; text both ways.
	select {
	case <-c.Peer().ChatReady():
	case <-time.After(browserWait):
		t.Fatal("the chat channel never opened")
	}
	if err := c.Peer().SendText("hello from irmv"); err != nil {
		t.Fatal(err)
	}
	p.waitFor(`[...document.querySelectorAll("#chat-log li.them")].some(li => li.textContent === "hello from irmv")`)
	p.waitFor(`document.body.dataset.chat === "open"`)
	p.do(
		chromedp.SetValue(chromedp.CSS("#chat-input"), "hello back"),
		chromedp.Click(chromedp.CSS("#chat-send")),
	)
	ev.wait(t, "text", func(e client.Event) bool { return e.Type == client.EventText && e.Text == "hello back" })

	nodetest.WaitFor(t, "packets from the browser", func() bool { return c.Peer().Stats().PacketsReceived > 20 })
	p.waitFor(`Number(document.getElementById("quality").dataset.packetsReceived) > 20`)

	if err := c.Hangup(); err != nil {
		t.Fatal(err)
	}
	p.waitFor(`document.body.dataset.call === "ended" && document.body.dataset.callReason === "hangup"`)
	ended := ev.wait(t, "ended", ofType(client.EventEnded))
	if n := opusPackets(t, ended.Record); n <= 20 {
		t.Errorf("the phone recorded %d Opus packets from the browser, want > 20", n)
	}
}

// TestBrowserRejectsCall: the page's Reject button ends an incoming call
// with phone.ErrRejected at the caller.
func TestBrowserRejectsCall(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	p := openPage(t, nodes[0], 390, 844)
	webTerminal := p.register("Emil Web", "+49 89 5550100")
	cli, _ := startGoPhone(t, nodes[1], client.Registration{Name: "Fritz Desk"}, phone.Options{})
	res := findFrom(t, nodes[1], "Emil Web", webTerminal)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), browserWait)
		defer cancel()
		c, err := cli.Call(ctx, res, phone.CallOptions{})
		if err == nil {
			c.Hangup()
		}
		done <- err
	}()
	p.waitFor(`document.body.dataset.call === "incoming"`)
	p.do(chromedp.Click(chromedp.CSS("#reject")))
	if err := <-done; !errors.Is(err, phone.ErrRejected) {
		t.Fatalf("Call: %v, want ErrRejected", err)
	}
	p.waitFor(`document.body.dataset.call === "ended" && document.body.dataset.callReason === "rejected"`)
}

// TestBrowserSetsStatus: the status picker changes the terminal's status
// at the node, and a second page sees it in its search.
func TestBrowserSetsStatus(t *testing.T) {
	nodes := nodetest.Chain(t, 1, nil)
	p := openPage(t, nodes[0], 390, 844)
	term := p.register("Gina Web", "")
	p.do(chromedp.SetValue(chromedp.CSS("#status"), "busy"))
	p.eval(`document.getElementById("status").dispatchEvent(new Event("change")), ""`)
	p.waitFor(`document.body.dataset.status === "busy"`)
	c, err := client.New(nodes[0].APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	got, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range got {
		if tm.Terminal == term && tm.Status.String() != "busy" {
			t.Errorf("terminal %s has status %s at the node, want busy", term, tm.Status)
		}
	}
	p.search("gina", term)
	if st := p.eval(fmt.Sprintf(`document.querySelector('#results li[data-terminal=%q]').dataset.status`, term)); st != "busy" {
		t.Errorf("search shows status %q, want busy", st)
	}
}

// TestBrowserPageAssets: the page and its assets are served with the right
// types; the API keeps answering JSON 404s for unknown paths.
func TestBrowserPageAssets(t *testing.T) {
	n := nodetest.Chain(t, 1, nil)[0]
	for _, tc := range []struct {
		path, typ string
		status    int
	}{
		{"/", "text/html", http.StatusOK},
		{"/static/app.js", "javascript", http.StatusOK},
		{"/static/style.css", "text/css", http.StatusOK},
		{"/static/", "", http.StatusNotFound},
		{"/static/nope.js", "", http.StatusNotFound},
		{"/nope", "application/json", http.StatusNotFound},
	} {
		res, err := http.Get(n.APIURL() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(res.Header.Get("Content-Type"), tc.typ) {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, res.StatusCode, res.Header.Get("Content-Type"), tc.status, tc.typ)
		}
	}
}

// TestBrowserScreenshots takes the README's screenshots of the page after
// registering and searching, at a phone's size and a desktop's. They go to
// $IRMV_SCREENSHOTS if set (docs/screenshots), else to a temp dir.
func TestBrowserScreenshots(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	c, err := client.New(nodes[1].APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	var last string
	for _, r := range []client.Registration{
		{Name: "Anna Schmidt", Phone: "+49 30 1234567", Status: "online"},
		{Name: "Anna Berg", Phone: "+49 40 7654321", UID: "anna.berg", Status: "busy"},
		{Name: "Anna Kowalski", Phone: "+48 22 1234567", Status: "idle"},
	} {
		ack, err := c.Register(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Terminal
	}
	findFrom(t, nodes[0], "anna kowalski", last)

	c0, err := client.New(nodes[0].APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("IRMV_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, size := range []struct {
		name          string
		width, height int64
	}{{"phone", 390, 844}, {"desktop", 1280, 800}} {
		p := openPage(t, nodes[0], size.width, size.height)
		self := p.register("Anna Web", "+49 30 7654321")
		p.search("anna", last)
		p.waitFor(`document.body.dataset.search === "done" && document.querySelectorAll("#results li").length >= 4`)
		p.eval(`document.activeElement.blur(), ""`)
		sctx, scancel := context.WithTimeout(p.ctx, browserWait)
		shot, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
		scancel()
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if w := img.Bounds().Dx(); int64(w) != size.width {
			t.Errorf("%s screenshot is %d px wide, want %d", size.name, w, size.width)
		}
		if err := os.WriteFile(filepath.Join(dir, "web-"+size.name+".png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		// The next page registers the same identifiers with another key.
		if err := c0.Remove(ctx, self); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowserBeforeRegistering: a page that has not registered shows that
// the node is up (not "offline") and searches; its Call buttons wait for
// the registration. When the node stops answering, the page says offline.
func TestBrowserBeforeRegistering(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	c, err := client.New(nodes[0].APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	ack, err := c.Register(ctx, client.Registration{Name: "Anna Before", Status: "online"})
	if err != nil {
		t.Fatal(err)
	}
	p := openPage(t, nodes[0], 390, 844)
	p.waitFor(`document.body.dataset.ws === "node"`)
	if got := p.eval(`document.getElementById("conn").textContent`); got != "node up" {
		t.Errorf("connection shows %q before registering, want \"node up\"", got)
	}
	p.search("anna", ack.Terminal)
	btn := fmt.Sprintf(`document.querySelector('#results li[data-terminal=%q] .call-btn')`, ack.Terminal)
	if got := p.eval(`String(` + btn + `.disabled)`); got != "true" {
		t.Errorf("Call button disabled=%s before registering, want true", got)
	}
	p.register("Ben Before", "")
	p.waitFor(`!` + btn + `.disabled`)
	// A lost WebSocket is connected again after the node's reconnect_min
	// (GET /v1/config), and the backoff starts over.
	p.eval(`window.lostWS = T.ws, T.ws.close(), ""`)
	p.waitFor(`T.ws && T.ws !== window.lostWS && document.body.dataset.ws === "open" && T.backoff === 0`)

	// Another node's page, not registered: "offline" once that node stops.
	p.do(chromedp.Navigate(nodes[1].APIURL() + "/"))
	p.waitFor(`document.body.dataset.state === "unregistered" && document.body.dataset.ws === "node"`)
	if err := nodes[1].Close(); err != nil {
		t.Fatal(err)
	}
	p.waitFor(`document.body.dataset.ws === "offline" && document.getElementById("conn").textContent === "offline"`)
}
