//go:build !irmv_node_only

package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	callsignal "github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/logging"
)

func phoneCommand() *cli.Command {
	flags := append(identifierFlags(),
		&cli.StringFlag{Name: "answer", Usage: "how to take incoming calls: ask (prompt on the terminal), auto (at once) or reject", Value: phone.AnswerAsk, EnvVars: []string{"IRMV_ANSWER"}},
		&cli.StringFlag{Name: "play", Usage: "`FILE` to play into each call: Ogg/Opus for Opus calls, WAV (8 kHz, 16-bit) for G.711 calls, which it then prefers (default: send no audio)", EnvVars: []string{"IRMV_PLAY"}},
		&cli.StringFlag{Name: "record", Usage: "`DIR` to record each call into (<time>-<call>-<peer>.ogg, .wav for G.711 calls)", EnvVars: []string{"IRMV_RECORD"}},
		&cli.BoolFlag{Name: "private", Usage: "keep this terminal's address out of its record and relay all media through TURN", EnvVars: []string{"IRMV_PRIVATE"}},
		&cli.StringFlag{Name: "key", Usage: "the terminal's Ed25519 key (PEM, created 0600 if missing)", Value: defaultKeyFile("phone.key"), EnvVars: []string{"IRMV_KEY"}},
		&cli.StringSliceFlag{Name: "node", Usage: "`URL` of the node's terminal API; repeated (IRMV_NODE: comma-separated), the nodes to fail over to, in order, when the current one stays unreachable for --failover-after", Value: cli.NewStringSlice(client.DefaultNode), EnvVars: []string{"IRMV_NODE"}},
		&cli.StringFlag{Name: "node-file", Usage: "`FILE` naming the node to be registered at (a URL a line; the next lines: nodes to fail over to); when its first line names another node the phone moves there, calls included (a roaming or DHCP hook rewrites it as the phone joins another access point). Overrides --node once it names one", EnvVars: []string{"IRMV_NODE_FILE"}},
		&cli.DurationFlag{Name: "failover-after", Usage: "how long the node may stay unreachable before the phone registers at the next one of --node or --node-file", Value: 3 * time.Second, EnvVars: []string{"IRMV_FAILOVER_AFTER"}},
		jsonFlag,
		&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error (logs go to stderr)", Value: "warn", EnvVars: []string{"IRMV_LOG_LEVEL"}},
	)
	flags = append(flags, qualityFlags()...)
	return &cli.Command{
		Name:  "phone",
		Usage: "be a terminal: register, stay registered, ring and answer calls",
		Description: `Registers this terminal with its node (the record signed by --key), stays
registered while it runs, rings on incoming calls and answers them: --answer ask
prompts on the terminal, auto answers at once, reject declines. Each call plays
--play and is recorded under --record; in a conference each other party is
recorded into a file of its own. When loss, jitter or round-trip time stay over
--max-loss, --max-jitter or --max-rtt for 3 s, calls this phone placed move to
another route without hanging up: direct → through this node's relay → through
the other node's relay → direct, skipping a route left less than
--route-hold-down ago. Ctrl-C removes the registration.
A phone that walks to another access point follows --node-file: when the
file names another node, the phone registers there (its record then outranks
the old one, and the old node withdraws it) and moves its connection. A phone
whose key registers at another node, or connects to this one (a second phone
with the same key: give each phone its own --key) stops with exit status 2. With several nodes (--node repeated, or more lines in
--node-file) a phone whose node stays unreachable for --failover-after (the
access point died) registers at the next one, calls included.
On a terminal, a line of keys (0-9 * # A-D, e.g. 123#) typed while a call is
up presses them in the call (DTMF; a SIP phone behind a bridge gets RFC 4733
events, e.g. for a voice menu).
With --json it prints one event per line on stdout.`,
		Flags:  flags,
		Action: runPhone,
	}
}

// checkHoldDown refuses a negative --route-hold-down (phone would take it
// for the default).
func checkHoldDown(c *cli.Context) error {
	if d := c.Duration("route-hold-down"); d < 0 {
		return cli.Exit(fmt.Sprintf("--route-hold-down %v: must not be negative", d), exitError)
	}
	return nil
}

// qualityFlags are the thresholds of call and phone.
func qualityFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Float64Flag{Name: "max-loss", Usage: "packet loss in `PERCENT` above which a call moves to another route (negative: never)", Value: phone.DefaultMaxLoss * 100, EnvVars: []string{"IRMV_MAX_LOSS"}},
		&cli.DurationFlag{Name: "max-jitter", Usage: "jitter above which a call moves to another route (negative: never)", Value: phone.DefaultMaxJitter, EnvVars: []string{"IRMV_MAX_JITTER"}},
		&cli.DurationFlag{Name: "max-rtt", Usage: "round-trip time above which a call moves to another route (negative: never)", Value: phone.DefaultMaxRTT, EnvVars: []string{"IRMV_MAX_RTT"}},
		&cli.DurationFlag{Name: "route-hold-down", Usage: "how long a call does not go back to a route it has left", Value: phone.RouteHoldDown, EnvVars: []string{"IRMV_ROUTE_HOLD_DOWN"}},
	}
}

// defaultKeyFile is <user config dir>/irmv/<name>.
func defaultKeyFile(name string) string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return filepath.Join("irmv", name)
	}
	return filepath.Join(dir, "irmv", name)
}

// loadOrCreateKey reads an Ed25519 key (PKCS #8 PEM) or creates one, 0600.
func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err := errors.Join(werr, f.Close()); err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key %s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key %s: not an Ed25519 key", path)
	}
	return key, nil
}

// phoneLogger is the logger of phone and call: text on stderr.
func phoneLogger(c *cli.Context) (*slog.Logger, error) {
	log, err := logging.New(c.App.ErrWriter, c.String("log-level"), "text")
	if err != nil {
		return nil, cli.Exit(err.Error(), exitError)
	}
	return log, nil
}

// signalContext ends on Ctrl-C or SIGTERM.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// eventPrinter prints events: JSON lines on out, or text via text.
type eventPrinter struct {
	mu   sync.Mutex
	json bool
	out  io.Writer
	text func(w io.Writer, e client.Event)
	tw   io.Writer
}

func (p *eventPrinter) print(e client.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		json.NewEncoder(p.out).Encode(e)
		return
	}
	if p.text != nil {
		p.text(p.tw, e)
	}
}

// partyName names a call party for people: name and phone, else what it has.
func partyName(pt *callsignal.Party) string {
	if pt == nil {
		return "?"
	}
	ids := pt.Identifiers
	var parts []string
	if ids.Name != "" {
		parts = append(parts, ids.Name)
	}
	if ids.Phone != "" {
		parts = append(parts, ids.Phone)
	}
	if len(parts) == 0 && ids.UID != "" {
		parts = append(parts, ids.UID)
	}
	if len(parts) == 0 {
		return pt.Terminal
	}
	return strings.Join(parts, " ")
}

// legName says, in a conference, which party a line is about.
func legName(e client.Event) string {
	if e.Conference == "" || e.Peer == nil {
		return ""
	}
	return partyName(e.Peer) + ": "
}

// audioFor says since when no audio arrived, in a quality event.
func audioFor(e client.Event) string {
	if e.NoAudioMS > 0 {
		return fmt.Sprintf("none for %.0f s", e.NoAudioMS/1000)
	}
	return "still arriving"
}

// otherParty names an event's other party, or says "the other party".
func otherParty(e client.Event) string {
	if e.Peer == nil {
		return "the other party"
	}
	return partyName(e.Peer)
}

// eventText is the human form of an event, one line.
func eventText(w io.Writer, e client.Event) {
	switch e.Type {
	case client.EventSearching:
		fmt.Fprintf(w, "searching for %s…\n", e.Text)
	case client.EventFound:
		fmt.Fprintf(w, "found %s on node %s\n", partyName(e.Peer), shortID(e.Peer.Node))
	case client.EventRinging:
		fmt.Fprintln(w, "ringing…")
	case client.EventIncoming:
		fmt.Fprintf(w, "\aincoming call from %s\n", partyName(e.Peer))
	case client.EventConnected:
		fmt.Fprintf(w, "connected with %s (%s, %s, %.0f ms setup)\n", partyName(e.Peer), e.Route, e.Codec, e.SetupMS)
	case client.EventQuality:
		// Without packets loss cannot rise: a gone party is no perfect line.
		switch {
		case e.Disconnected:
			fmt.Fprintf(w, "  %sno answer from %s (connectivity checks fail, audio %s)  %s\n", legName(e), otherParty(e), audioFor(e), e.Route)
		case e.NoAudioMS > 0:
			fmt.Fprintf(w, "  %sno audio from %s for %.0f s (last rtt %.1f ms)  %s\n", legName(e), otherParty(e), e.NoAudioMS/1000, e.RTTMS, e.Route)
		default:
			fmt.Fprintf(w, "  %sloss %.1f%%  jitter %.1f ms  rtt %.1f ms  %s\n", legName(e), e.Loss*100, e.JitterMS, e.RTTMS, e.Route)
		}
	case client.EventRoute:
		fmt.Fprintf(w, "%sroute %s → %s (%s)\n", legName(e), e.From, e.To, e.Reason)
	case client.EventText:
		fmt.Fprintf(w, "text: %s\n", e.Text)
	case client.EventDTMF:
		fmt.Fprintf(w, "key %s (%d ms)\n", e.Digit, e.DurationMS)
	case client.EventWarning:
		fmt.Fprintf(w, "warning: %s\n", e.Reason)
	case client.EventRegistered:
		node := "?"
		if e.Self != nil {
			node = shortID(e.Self.Node)
		}
		fmt.Fprintf(w, "connection to the node restored (node %s)\n", node)
	case client.EventMoved:
		// The handle is the new node's (irmv share takes it there).
		fmt.Fprintf(w, "moved to node %s, registered there as %s\n", shortID(e.Self.Node), e.Self.Terminal)
	case client.EventSuperseded:
		fmt.Fprintf(w, "%s\n", e.Reason)
	case client.EventEnded:
		fmt.Fprintf(w, "%sended (%s)", legName(e), e.Reason)
		if e.Record != "" {
			fmt.Fprintf(w, ", recorded to %s", e.Record)
		}
		fmt.Fprintln(w)
	}
}

// recordNote says, when a call that connected ends with nothing recorded
// (the other side sent no audio, so no file was made), that --record
// wrote nothing: a missing file is otherwise a silent surprise.
type recordNote struct {
	on bool // --record was given
	pr *eventPrinter

	mu sync.Mutex
	up map[string]bool // calls that connected, by ID
}

func (r *recordNote) event(e client.Event) {
	if !r.on {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Type {
	case client.EventConnected:
		if r.up == nil {
			r.up = map[string]bool{}
		}
		r.up[e.Call] = true
	case client.EventEnded:
		if r.up[e.Call] && e.Record == "" {
			r.pr.print(client.Event{Type: client.EventWarning, Call: e.Call, Conference: e.Conference, Peer: e.Peer,
				Reason: "--record: nothing recorded, " + partyName(e.Peer) + " sent no audio"})
		}
		delete(r.up, e.Call)
	}
}

// stdinLines reads stdin lines for the answer prompt; closed at EOF.
func stdinLines(r io.Reader) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func runPhone(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("phone takes no arguments (got %q)", c.Args().First()), exitError)
	}
	reg := client.Registration{Name: c.String("name"), Phone: c.String("phone"), UID: c.String("uid"), IP: c.String("ip")}
	if reg.Name == "" && reg.Phone == "" && reg.UID == "" {
		return cli.Exit("give at least one of --name, --phone or --uid", exitError)
	}
	answer := c.String("answer")
	switch answer {
	case phone.AnswerAsk, phone.AnswerAuto, phone.AnswerReject:
	default:
		return cli.Exit(fmt.Sprintf("--answer %q: want ask, auto or reject", answer), exitError)
	}
	if err := checkHoldDown(c); err != nil {
		return err
	}
	if err := checkPlay(c.String("play")); err != nil {
		return err
	}
	if err := checkRecordDir(c.String("record")); err != nil {
		return err
	}
	log, err := phoneLogger(c)
	if err != nil {
		return err
	}
	key, err := loadOrCreateKey(c.String("key"))
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	nodes := c.StringSlice("node")
	nodeFile := c.String("node-file")
	fromFile := false // nodes came from nodeFile
	if nodeFile != "" {
		if l, err := readNodeFile(nodeFile); err != nil {
			return cli.Exit(err.Error(), exitError)
		} else if len(l) > 0 {
			nodes = l
			fromFile = true
		} else {
			fmt.Fprintf(c.App.ErrWriter, "--node-file %s names no node yet: registering at %s until it does\n", nodeFile, strings.Join(nodes, ", "))
		}
	}
	if len(nodes) == 0 {
		return cli.Exit("--node: give the URL of a node", exitError)
	}
	if d := c.Duration("failover-after"); d <= 0 {
		return cli.Exit(fmt.Sprintf("--failover-after %v: must be positive", d), exitError)
	}
	for _, u := range nodes {
		if _, err := client.New(u, ""); err != nil {
			if fromFile {
				return cli.Exit("--node-file "+nodeFile+": "+err.Error(), exitError)
			}
			return cli.Exit(err.Error(), exitError)
		}
	}
	cl, _ := client.New(nodes[0], "")
	ctx, stop := signalContext(c.Context)
	defer stop()

	jsonOut := c.Bool("json")
	pr := &eventPrinter{json: jsonOut, out: c.App.Writer, text: eventText, tw: c.App.Writer}
	kp := &keypad{live: map[string]bool{}, pr: pr}
	var started atomic.Bool // registered, and that printed
	rn := &recordNote{on: c.String("record") != "", pr: pr}
	var stdinEnded <-chan struct{}
	var linesOnce sync.Once
	startLines := func() { linesOnce.Do(func() { stdinEnded = kp.route(stdinLines(os.Stdin)) }) }
	ask := func(ctx context.Context, inv phone.Incoming) bool {
		startLines()
		pc := kp.prompt()
		defer kp.endPrompt(pc)
		pr.mu.Lock()
		fmt.Fprintf(c.App.ErrWriter, "\aincoming call from %s — answer? [y/N] ", partyName(&inv.From))
		pr.mu.Unlock()
		select {
		case <-stdinEnded:
			return false
		case l := <-pc.lines:
			l = strings.ToLower(strings.TrimSpace(l))
			return l == "y" || l == "yes"
		case <-ctx.Done():
			fmt.Fprintln(c.App.ErrWriter, "(caller gave up)")
			return false
		}
	}
	p, err := phone.Start(ctx, phone.Options{
		Client:        cl,
		Registration:  reg,
		Key:           key,
		Answer:        answer,
		Ask:           ask,
		Play:          c.String("play"),
		RecordDir:     c.String("record"),
		RelayOnly:     c.Bool("private"),
		MaxLoss:       c.Float64("max-loss") / 100,
		MaxJitter:     c.Duration("max-jitter"),
		MaxRTT:        c.Duration("max-rtt"),
		RouteHoldDown: c.Duration("route-hold-down"),
		// A phone that gets a new address moves its calls to it.
		WatchAddresses: true,
		OnEvent: func(e client.Event) {
			// A call that rings while none is up gets the answer
			// prompt, which names the caller (a new leg of a running
			// conference is taken at once, so it is printed).
			if e.Type == client.EventIncoming && answer == phone.AnswerAsk && !jsonOut && kp.idle() {
				return
			}
			kp.event(e)
			rn.event(e)
			// The first registration is printed below, from the ack;
			// a later one is the connection restored.
			if e.Type != client.EventRegistered || jsonOut || started.Load() {
				pr.print(e)
			}
		},
		Logger: log,
	})
	if h := regionHint(err, reg.Phone); h != "" {
		return cli.Exit(err.Error()+": "+h, exitError)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return apiExit(err)
	}
	if !jsonOut {
		ack := p.Ack()
		w := c.App.Writer
		pr.mu.Lock()
		fmt.Fprintf(w, "registered %s, kept registered while this runs (a heartbeat every %v; Ctrl-C removes it)\n", ack.Terminal, phone.PingInterval)
		printIdentifiers(w, ack.Identifiers.Name, ack.Identifiers.Phone, ack.Identifiers.UID, ack.Identifiers.IP)
		fmt.Fprintf(w, "  status   %s, record signed by %s\n", ack.Status, ack.Signer)
		fmt.Fprintf(w, "waiting for calls (answer: %s); Ctrl-C to quit\n", answer)
		pr.mu.Unlock()
	}
	started.Store(true)
	kp.setPhone(p)
	if isTerminal(os.Stdin) {
		startLines() // key presses typed during calls
	}
	if nodeFile != "" || len(nodes) > 1 {
		go followNodes(ctx, p, nodes, nodeFile, c.Duration("failover-after"), log)
	}
	select {
	case <-ctx.Done():
	case <-p.Done():
	}
	stopErr := p.Err()
	if err := p.Close(); err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if errors.Is(stopErr, phone.ErrReplaced) {
		return cli.Exit(fmt.Sprintf("phone: %v: stopping (give each phone its own --key; this one is %s)", stopErr, c.String("key")), exitError)
	}
	if stopErr != nil {
		return cli.Exit("phone: "+stopErr.Error()+": stopping", exitError)
	}
	return nil
}

// keypad presses keys typed on the terminal in the phone's calls: a line
// of keys (0-9 * # A-D), typed while a call is up and no answer prompt
// waits, is sent to every call that is up (DTMF).
type keypad struct {
	pr *eventPrinter

	mu     sync.Mutex
	p      *phone.Phone
	live   map[string]bool // calls up, by ID
	asking *answerPrompt   // the answer prompt that waits for a line, or nil
}

// answerPrompt is one answer prompt: it takes a line on lines until done
// closes, so a line typed as it gives up is not left for the next one.
type answerPrompt struct {
	lines chan string
	done  chan struct{}
}

// prompt begins an answer prompt; endPrompt ends it.
func (k *keypad) prompt() *answerPrompt {
	pc := &answerPrompt{lines: make(chan string), done: make(chan struct{})}
	k.mu.Lock()
	k.asking = pc
	k.mu.Unlock()
	return pc
}

func (k *keypad) endPrompt(pc *answerPrompt) {
	k.mu.Lock()
	if k.asking == pc {
		k.asking = nil
	}
	k.mu.Unlock()
	close(pc.done)
}

func (k *keypad) setPhone(p *phone.Phone) {
	k.mu.Lock()
	k.p = p
	k.mu.Unlock()
}

// idle reports whether no call is up.
func (k *keypad) idle() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.live) == 0
}

// event follows which calls are up.
func (k *keypad) event(e client.Event) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch e.Type {
	case client.EventConnected:
		k.live[e.Call] = true
	case client.EventEnded:
		delete(k.live, e.Call)
	}
}

// route passes the lines typed while the answer prompt waits on to it and
// presses the others as keys. A line that is no keys, or keys with no call
// up, is refused with a warning: held for the prompt it would block the
// keys typed after it and answer the next call. The channel it returns
// closes when in ends.
func (k *keypad) route(in <-chan string) <-chan struct{} {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for l := range in {
			k.mu.Lock()
			pc := k.asking
			k.mu.Unlock()
			if pc != nil {
				select {
				case pc.lines <- l:
					continue
				case <-pc.done: // the prompt gave up: the line is read as keys
				}
			}
			switch keys := strings.ToUpper(strings.TrimSpace(l)); {
			case keys == "":
			case !dtmfKeys(keys):
				k.pr.print(client.Event{Type: client.EventWarning, Reason: fmt.Sprintf("%q: not keys (type 0-9 * # A-D while a call is up)", l)})
			case !k.press(keys):
				k.pr.print(client.Event{Type: client.EventWarning, Reason: "keys " + keys + ": no call is up"})
			}
		}
	}()
	return ended
}

// press sends keys to the calls that are up; false when none is.
func (k *keypad) press(keys string) bool {
	k.mu.Lock()
	var calls []*phone.Call
	for id := range k.live {
		if c := k.p.CallByID(id); c != nil {
			calls = append(calls, c)
		}
	}
	k.mu.Unlock()
	for _, c := range calls {
		if err := c.SendDTMF(keys, 0); err != nil {
			k.pr.print(client.Event{Type: client.EventWarning, Call: c.ID(), Reason: "keys " + keys + ": " + err.Error()})
		}
	}
	return len(calls) > 0
}

// dtmfKeys reports whether s is one or more keys (0-9 * # A-D).
func dtmfKeys(s string) bool {
	for _, r := range s {
		if !strings.ContainsRune(media.DTMFDigits, r) {
			return false
		}
	}
	return s != ""
}

// readNodeFile reads the node URLs a --node-file names, one a line: none
// while the file is missing or empty.
func readNodeFile(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--node-file: %w", err)
	}
	return strings.Fields(string(data)), nil
}

// nodeFilePoll is how often followNodes reads the node file and looks at
// the phone's connection.
const nodeFilePoll = 200 * time.Millisecond

// followNodes moves the phone, until ctx ends: to the node the node file
// names first whenever that changes to another one (the phone joined
// another access point), and to the next node of the list (the file's,
// else nodes) when its node has been unreachable for failoverAfter. A
// failed move is tried again, a failover at the node after.
func followNodes(ctx context.Context, p *phone.Phone, nodes []string, nodeFile string, failoverAfter time.Duration, log *slog.Logger) {
	t := time.NewTicker(nodeFilePoll)
	defer t.Stop()
	var retryAt time.Time
	first := p.NodeURL() // the file's first node the phone went to
	skip := 0            // failovers that failed since the last move
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.Done():
			return
		case <-t.C:
		}
		if time.Now().Before(retryAt) {
			continue
		}
		list := nodes
		if nodeFile != "" {
			if l, err := readNodeFile(nodeFile); err == nil && len(l) > 0 {
				list = l
			}
		}
		var urls []string
		for _, u := range list {
			if cl, err := client.New(u, ""); err == nil {
				urls = append(urls, cl.Base)
			}
		}
		if len(urls) == 0 {
			log.Warn("Node file names no node URL", "file", nodeFile)
			retryAt = time.Now().Add(5 * time.Second)
			continue
		}
		cur := p.NodeURL()
		var target string
		switch {
		case nodeFile != "" && urls[0] != first:
			if urls[0] == cur {
				first = cur
				continue
			}
			target = urls[0]
		case len(urls) > 1 && p.Disconnected() >= failoverAfter:
			i := slices.Index(urls, cur) // -1: the phone is at none of them
			target = urls[(i+1+skip)%len(urls)]
			if target == cur {
				skip++
				continue
			}
			log.Warn("Node unreachable; failing over", "from", cur, "to", target)
		default:
			continue
		}
		cl, _ := client.New(target, "")
		if err := p.Move(ctx, cl); err != nil {
			log.Warn("Moving to another node failed", "node", target, "err", err)
			retryAt = time.Now().Add(2 * time.Second)
			if target != urls[0] || nodeFile == "" {
				skip++
			}
			continue
		}
		skip = 0
		if target == urls[0] {
			first = target
		}
	}
}
