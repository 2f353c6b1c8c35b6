//go:build !irmv_node_only

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	callsignal "github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search"
)

func callCommand() *cli.Command {
	flags := append(identifierFlags(),
		&cli.StringFlag{Name: "play", Usage: "`FILE` to play into the call: Ogg/Opus for Opus calls, WAV (8 kHz, 16-bit) for G.711 calls, which it then prefers (default: send no audio)", EnvVars: []string{"IRMV_PLAY"}},
		&cli.StringFlag{Name: "record", Usage: "`FILE` to record the call into: Ogg/Opus, or WAV for a G.711 call (a .ogg name then becomes .wav)", EnvVars: []string{"IRMV_RECORD"}},
		&cli.StringFlag{Name: "dtmf", Usage: "key presses to send once the call is answered, e.g. for a voice menu: `KEYS` of 0-9 * # A-D (a SIP phone behind a bridge gets them as RFC 4733 events)", EnvVars: []string{"IRMV_DTMF"}},
		&cli.DurationFlag{Name: "hangup-after", Usage: "hang up this long after the call connected (0: stay until Ctrl-C or the other side hangs up)", EnvVars: []string{"IRMV_HANGUP_AFTER"}},
		&cli.DurationFlag{Name: "timeout", Usage: "how long the lookup may take", Value: 5 * time.Second, EnvVars: []string{"IRMV_TIMEOUT"}},
		&cli.DurationFlag{Name: "ring-timeout", Usage: "how long the callee may ring", Value: phone.RingTimeout, EnvVars: []string{"IRMV_RING_TIMEOUT"}},
		&cli.BoolFlag{Name: "conference", Usage: "make even a call to one party a conference, so that more can be added (lines \"add IDENTIFIER\" on stdin)", EnvVars: []string{"IRMV_CONFERENCE"}},
		&cli.StringFlag{Name: "relay", Usage: "auto (direct where possible) or always (media through TURN; hides this address)", Value: "auto", EnvVars: []string{"IRMV_RELAY"}},
		&cli.StringFlag{Name: "key", Usage: "Ed25519 key (PEM) to call with (default: a fresh one for this call)", EnvVars: []string{"IRMV_KEY"}},
		&cli.StringFlag{Name: "known-keys", Usage: "JSON file of callee keys to check (\"\": don't remember)", Value: defaultKeyFile("known_keys.json"), EnvVars: []string{"IRMV_KNOWN_KEYS"}},
		&cli.StringSliceFlag{Name: "terminal", Usage: "call this one of several terminals that match equally well: `HANDLE@NODE` as irmv search shows it (repeat for a conference)", EnvVars: []string{"IRMV_TERMINAL"}},
		nodeFlag,
		jsonFlag,
		&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error (logs go to stderr)", Value: "warn", EnvVars: []string{"IRMV_LOG_LEVEL"}},
	)
	flags = append(flags, qualityFlags()...)
	return &cli.Command{
		Name:      "call",
		Usage:     "look a terminal up and call it; several: a conference",
		ArgsUsage: "IDENTIFIER...",
		Description: `Registers a transient terminal (uid irmv-call-<random> unless identifier flags
are given), looks IDENTIFIER up through the node (as irmv search does, to the
search's end) and calls the one terminal that matches best: an exact identifier
beats all of a name's words, which beat words by prefix. When several terminals
match equally well it calls nobody: on an interactive terminal it lists them,
numbered, and asks; otherwise it prints them (with --json, one "candidate"
event each) and exits 7. --terminal HANDLE@NODE picks one of them. Then it
plays --play and records --record, and sends the key presses --dtmf (a call to
one party). Progress goes to stderr;
with --json one event per line goes to stdout (searching, found, ringing,
connected with setup_ms, quality with loss/jitter_ms/rtt_ms (and sip_rtt_ms,
the phone leg's, when the other party is a SIP phone), route with
from/to/reason, ended). Ctrl-C hangs up. Several identifiers start a
conference (up to 6 parties, a mesh: every party connects to every other);
with --record FILE each other party goes to FILE-<party>.ogg. While a
conference runs (several identifiers, or --conference), a line
"add IDENTIFIER" on stdin looks another party up and invites it (resolved the same
way; "add IDENTIFIER --terminal HANDLE@NODE" picks one). When loss, jitter
or round-trip time stay over --max-loss, --max-jitter or --max-rtt for 3 s,
the call moves to another route without hanging up (a second connection is
brought up beside the first, then the first is closed): direct → through this
node's relay (relayed) → through the other node's relay (relayed-peer) →
direct, skipping a route left less than --route-hold-down (30 s) ago.
Exit status: 0 the call connected and ended, 1 not found, 2 error, 3 busy,
4 rejected, 5 no answer or unavailable, 6 failed, 7 ambiguous (several
terminals match equally well; nobody was called), 130 cancelled (Ctrl-C
before the call was made).`,
		Flags:  flags,
		Action: runCall,
	}
}

func runCall(c *cli.Context) error {
	args, err := interspersedArgs(c)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if len(args) == 0 {
		return cli.Exit("call what? give an identifier: a name, phone number, uid or IP address", exitError)
	}
	if len(args)+1 > phone.MaxParties {
		return cli.Exit(fmt.Sprintf("a conference takes at most %d parties", phone.MaxParties), exitError)
	}
	relayOnly := false
	switch c.String("relay") {
	case "auto":
	case "always":
		relayOnly = true
	default:
		return cli.Exit(fmt.Sprintf("--relay %q: want auto or always", c.String("relay")), exitError)
	}
	if err := checkHoldDown(c); err != nil {
		return err
	}
	for _, a := range args {
		if strings.TrimSpace(a) == "" {
			return cli.Exit("call what? an IDENTIFIER is empty: give a name, phone number, uid or IP address", exitError)
		}
	}
	if err := checkPlay(c.String("play")); err != nil {
		return err
	}
	// 0 or less meant the default for the ring timeout and forever for
	// the hang-up, silently.
	if d := c.Duration("timeout"); d <= 0 || d > search.MaxTimeout {
		return cli.Exit(fmt.Sprintf("--timeout %s: want more than 0 and at most %s", d, search.MaxTimeout), exitError)
	}
	if d := c.Duration("ring-timeout"); d <= 0 {
		return cli.Exit(fmt.Sprintf("--ring-timeout %s: want a positive duration, e.g. 30s", d), exitError)
	}
	if d := c.Duration("hangup-after"); d < 0 {
		return cli.Exit(fmt.Sprintf("--hangup-after %s: want 0 (stay) or a positive duration, e.g. 30s", d), exitError)
	}
	keys := strings.ToUpper(c.String("dtmf"))
	if keys != "" && (len(args) > 1 || c.Bool("conference")) {
		return cli.Exit("--dtmf: key presses go to a call to one party, not a conference", exitError)
	}
	for _, k := range c.String("dtmf") {
		if !strings.ContainsRune(media.DTMFDigits, unicode.ToUpper(k)) {
			return cli.Exit(fmt.Sprintf("--dtmf %q: %q is not a key; want 0-9 * # A-D", c.String("dtmf"), string(k)), exitError)
		}
	}
	if err := checkRecordFile(c.String("record")); err != nil {
		return err
	}
	reg := client.Registration{Name: c.String("name"), Phone: c.String("phone"), UID: c.String("uid"), IP: c.String("ip")}
	if reg.Name == "" && reg.Phone == "" && reg.UID == "" {
		var b [8]byte
		rand.Read(b[:])
		reg.UID = "irmv-call-" + hex.EncodeToString(b[:])
	}
	log, err := phoneLogger(c)
	if err != nil {
		return err
	}
	var key []byte
	if path := c.String("key"); path != "" {
		if key, err = loadOrCreateKey(path); err != nil {
			return cli.Exit(err.Error(), exitError)
		}
	}
	cl, err := client.New(c.String("node"), "")
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	ctx, stop := signalContext(c.Context)
	defer stop()

	jsonOut := c.Bool("json")
	pr := &eventPrinter{json: jsonOut, out: c.App.Writer, text: eventText, tw: c.App.ErrWriter}
	rn := &recordNote{on: c.String("record") != "", pr: pr}
	p, err := phone.Start(ctx, phone.Options{
		Client:        cl,
		Registration:  reg,
		Key:           key,
		Answer:        phone.AnswerReject,
		KnownKeysFile: c.String("known-keys"),
		RouteHoldDown: c.Duration("route-hold-down"),
		OnEvent: func(e client.Event) {
			rn.event(e)
			if e.Type != client.EventRegistered {
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
			return cli.Exit("cancelled", exitCancelled)
		}
		return apiExit(err)
	}
	defer p.Close()
	self := p.Ack()

	var results []client.Result
	for i, target := range args {
		found, err := lookup(ctx, c, cl, pr, self.Terminal, target, c.StringSlice("terminal"), nil)
		if err != nil {
			return err
		}
		for j, r := range results {
			if r.Node == found.Node && r.Terminal == found.Terminal {
				return cli.Exit(fmt.Sprintf("%s and %s are the same terminal (%s@%s): a conference calls each party once", args[j], args[i], r.Terminal, r.Node), exitError)
			}
		}
		results = append(results, *found)
	}
	if err := checkPicks(pr, results, c.StringSlice("terminal")); err != nil {
		return err
	}
	opts := phone.CallOptions{
		Play:        c.String("play"),
		Record:      c.String("record"),
		HangupAfter: c.Duration("hangup-after"),
		RelayOnly:   relayOnly,
		RingTimeout: c.Duration("ring-timeout"),
		MaxLoss:     c.Float64("max-loss") / 100,
		MaxJitter:   c.Duration("max-jitter"),
		MaxRTT:      c.Duration("max-rtt"),
	}
	if len(results) == 1 && !c.Bool("conference") {
		call, err := p.Call(ctx, results[0], opts)
		if err != nil {
			if ctx.Err() != nil {
				return cli.Exit("cancelled", exitCancelled)
			}
			return cli.Exit(err.Error(), callExitCode(err))
		}
		if keys != "" {
			sendKeys(ctx, call, keys, pr)
		}
		select {
		case <-call.Done():
		case <-ctx.Done():
			call.Hangup()
		}
		return nil
	}
	conf, err := p.Conference(ctx, results, opts)
	if err != nil {
		if ctx.Err() != nil {
			return cli.Exit("cancelled", exitCancelled)
		}
		return cli.Exit(err.Error(), callExitCode(err))
	}
	var after <-chan time.Time
	if d := opts.HangupAfter; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		after = t.C
	}
	// "add IDENTIFIER" lines on stdin invite another party.
	lines := stdinLines(c.App.Reader)
	for {
		select {
		case <-conf.Done():
			return nil
		case <-ctx.Done():
			conf.Hangup()
			return nil
		case <-after:
			conf.Hangup()
			return nil
		case line, ok := <-lines:
			if !ok {
				lines = nil // stdin closed: the conference goes on
				continue
			}
			target, picks, isAdd := addCommand(line)
			if !isAdd {
				if strings.TrimSpace(line) != "" {
					pr.print(client.Event{Type: client.EventWarning, Reason: fmt.Sprintf("%q: type add IDENTIFIER to invite another party", line)})
				}
				continue
			}
			found, err := lookup(ctx, c, cl, pr, self.Terminal, target, picks, conf)
			if err != nil {
				// Most of lookup's errors name the party first already.
				msg := err.Error()
				if !strings.HasPrefix(msg, target+": ") {
					msg = target + ": " + msg
				}
				pr.print(client.Event{Type: client.EventWarning, Reason: "add " + msg})
				continue
			}
			go func() {
				if _, err := conf.Add(ctx, *found); err != nil && ctx.Err() == nil {
					pr.print(client.Event{Type: client.EventWarning, Reason: "add " + target + ": " + err.Error()})
				}
			}()
		}
	}
}

// inConference reports whether r is a party of conf already.
func inConference(conf *phone.Conference, r client.Result) bool {
	for _, c := range conf.Calls() {
		if p := c.Remote(); p.Node == r.Node && p.Terminal == r.Terminal {
			return true
		}
	}
	return false
}

// addCommand parses "add IDENTIFIER [--terminal HANDLE@NODE]" (the
// identifier may contain spaces).
func addCommand(line string) (target string, picks []string, ok bool) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "add" {
		return "", nil, false
	}
	var words []string
	for i := 1; i < len(f); i++ {
		if f[i] == "--terminal" && i+1 < len(f) {
			picks = append(picks, f[i+1])
			i++
			continue
		}
		if v, ok := strings.CutPrefix(f[i], "--terminal="); ok {
			picks = append(picks, v)
			continue
		}
		words = append(words, f[i])
	}
	if len(words) == 0 {
		return "", nil, false
	}
	return strings.Join(words, " "), picks, true
}

// eventCandidate (irmv call --json) is one of the terminals an ambiguous
// identifier matches equally well: Peer, Text its HANDLE@NODE, Reason its
// match.
const eventCandidate = "candidate"

// lookup finds the one terminal target means, or returns the exit error:
// the search runs to its end, and only a single best match is called
// (search.Best). When several terminals match equally well, a --terminal
// HANDLE@NODE among them picks one; otherwise an interactive terminal is
// asked, and anything else gets the list and exitAmbiguous. While adding a
// party to a running conference, a failed lookup prints no "ended" event:
// the conference goes on.
// lookup finds the one terminal target means; adding to conf (nil: not
// adding to a running conference) it refuses a party of conf.
func lookup(ctx context.Context, c *cli.Context, cl *client.Client, pr *eventPrinter, self, target string, picks []string, conf *phone.Conference) (*client.Result, error) {
	adding := conf != nil
	pr.print(client.Event{Type: client.EventSearching, Text: target})
	ended := func(reason string) {
		if !adding {
			pr.print(client.Event{Type: client.EventEnded, Reason: reason})
		}
	}
	var all []client.Result
	sctx, cancel := context.WithTimeout(ctx, c.Duration("timeout")+10*time.Second)
	err := cl.Search(sctx, client.Query{Text: target, Timeout: c.Duration("timeout")}, func(r client.Result) error {
		if r.Terminal != self { // ourselves, when an identifier flag matches
			all = append(all, r)
		}
		return nil
	})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, cli.Exit("cancelled", exitCancelled)
		}
		return nil, apiExit(err)
	}
	if picked := pickTerminal(all, picks); picked != nil {
		all = []client.Result{*picked}
	}
	found, tied, err := search.Best(all)
	switch {
	case errors.Is(err, search.ErrNotFound):
		ended("not found")
		return nil, cli.Exit(target+": not found", exitNotFound)
	case errors.Is(err, search.ErrAmbiguous):
		if !adding && !c.Bool("json") && isInteractive(c) {
			if chosen := askWhich(c, target, tied); chosen != nil {
				found = *chosen
				break
			}
		}
		for _, r := range tied {
			pr.print(client.Event{Type: eventCandidate, Peer: partyOf(r), Text: pickOf(r), Reason: r.Match.String()})
		}
		if !c.Bool("json") && !adding {
			printResults(c.App.Writer, tied, true)
		}
		ended("ambiguous")
		how := "--terminal HANDLE@NODE (the TERMINAL column)"
		if adding {
			var names []string
			for _, r := range tied {
				names = append(names, pickOf(r))
			}
			how = "add " + target + " --terminal HANDLE@NODE, one of " + strings.Join(names, ", ")
		}
		return nil, cli.Exit(fmt.Sprintf("%s: %d terminals match equally well (%s), so nobody was called; pick one with %s", target, len(tied), tied[0].Match, how), exitAmbiguous)
	}
	switch {
	case adding && inConference(conf, found):
		return nil, cli.Exit(target+": already in the conference", exitError)
	case found.Status == record.StatusBusy:
		ended("busy")
		return nil, cli.Exit(target+" is busy", exitBusy)
	case !found.Status.Callable():
		ended("unavailable")
		return nil, cli.Exit(target+" is offline", exitNoAnswer)
	}
	pr.print(client.Event{Type: client.EventFound, Peer: partyOf(found), Reason: found.Match.String()})
	return &found, nil
}

func partyOf(r client.Result) *callsignal.Party {
	return &callsignal.Party{Node: r.Node, Terminal: r.Terminal, Identifiers: r.Identifiers, Key: r.Key, Private: r.Private}
}

// pickTerminal returns the one result that a --terminal value names:
// HANDLE@NODE, where NODE may be the end of the peer ID (as tables show
// it), or HANDLE alone.
func pickTerminal(rs []client.Result, picks []string) *client.Result {
	var hit *client.Result
	for i, r := range rs {
		for _, p := range picks {
			handle, node, _ := strings.Cut(p, "@")
			node = strings.TrimPrefix(node, "…")
			if handle == r.Terminal && (node == "" || r.Node == node || (len(node) >= 6 && strings.HasSuffix(r.Node, node))) {
				if hit != nil && hit != &rs[i] {
					return nil // names more than one: no pick
				}
				hit = &rs[i]
			}
		}
	}
	return hit
}

// checkPicks refuses the call when a --terminal names none of the
// terminals about to be called (a typo, or one that left): the best match
// would be called in its place, someone the caller did not pick.
func checkPicks(pr *eventPrinter, results []client.Result, picks []string) error {
	for _, p := range picks {
		if pickTerminal(results, []string{p}) != nil {
			continue
		}
		var found []string
		for _, r := range results {
			found = append(found, pickOf(r))
		}
		pr.print(client.Event{Type: client.EventEnded, Reason: "not found"})
		return cli.Exit(fmt.Sprintf("--terminal %s: not among the terminals found (%s), so nobody was called", p, strings.Join(found, ", ")), exitNotFound)
	}
	return nil
}

// sendKeys sends the key presses keys once the call's chat channel (which
// carries them) is open; a failure is a warning, the call goes on.
func sendKeys(ctx context.Context, call *phone.Call, keys string, pr *eventPrinter) {
	select {
	case <-call.Peer().ChatReady():
	case <-call.Done():
		return
	case <-ctx.Done():
		return
	}
	if err := call.SendDTMF(keys, 0); err != nil {
		pr.print(client.Event{Type: client.EventWarning, Reason: "--dtmf: " + err.Error()})
		return
	}
	if !pr.json {
		pr.mu.Lock()
		fmt.Fprintf(pr.tw, "pressed %s\n", keys)
		pr.mu.Unlock()
	}
}

// isInteractive reports whether the person at stdin and stderr can be
// asked.
func isInteractive(c *cli.Context) bool {
	in, ok1 := c.App.Reader.(*os.File)
	errw, ok2 := c.App.ErrWriter.(*os.File)
	return ok1 && ok2 && isTerminal(in) && isTerminal(errw)
}

// askWhich lists the terminals that match equally well, numbered, and
// asks which to call; nil when the answer is none of them.
func askWhich(c *cli.Context, target string, rs []client.Result) *client.Result {
	w := c.App.ErrWriter
	fmt.Fprintf(w, "%d terminals match %q equally well:\n", len(rs), target)
	for i, r := range rs {
		fmt.Fprintf(w, "  %d) %s  %s  %s  %s\n", i+1, dash(r.Identifiers.Name), dash(r.Identifiers.Phone), r.Status, pickOf(r))
	}
	fmt.Fprintf(w, "call which? [1-%d, Enter: nobody] ", len(rs))
	// One byte at a time: what follows the line stays for "add" lines.
	var line []byte
	var b [1]byte
	for {
		n, err := c.App.Reader.Read(b[:])
		if n == 0 || err != nil || b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	i, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil || i < 1 || i > len(rs) {
		return nil
	}
	return &rs[i-1]
}

// callExitCode maps a call error to the exit status.
func callExitCode(err error) int {
	switch {
	case errors.Is(err, phone.ErrBusy):
		return exitBusy
	case errors.Is(err, phone.ErrRejected):
		return exitRejected
	case errors.Is(err, phone.ErrNoAnswer), errors.Is(err, phone.ErrUnavailable),
		errors.Is(err, context.Canceled):
		return exitNoAnswer
	}
	return exitFailed
}
