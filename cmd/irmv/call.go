//go:build !irmv_node_only

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/irmv/irmv/call/phone"
	callsignal "github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/internal/client"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/share"
	"github.com/irmv/irmv/share/record"
	"github.com/urfave/cli/v2"
)

func callCommand() *cli.Command {
	flags := append(identifierFlags(),
		&cli.StringFlag{Name: "play", Usage: "Ogg/Opus `FILE` to play into the call (default: send no audio)", EnvVars: []string{"IRMV_PLAY"}},
		&cli.StringFlag{Name: "record", Usage: "Ogg/Opus `FILE` to record the call into", EnvVars: []string{"IRMV_RECORD"}},
		&cli.DurationFlag{Name: "hangup-after", Usage: "hang up this long after the call connected (0: stay until Ctrl-C or the other side hangs up)", EnvVars: []string{"IRMV_HANGUP_AFTER"}},
		&cli.DurationFlag{Name: "timeout", Usage: "how long the lookup may take", Value: 5 * time.Second, EnvVars: []string{"IRMV_TIMEOUT"}},
		&cli.DurationFlag{Name: "ring-timeout", Usage: "how long the callee may ring", Value: phone.RingTimeout, EnvVars: []string{"IRMV_RING_TIMEOUT"}},
		&cli.BoolFlag{Name: "conference", Usage: "make even a call to one party a conference, so that more can be added (lines \"add IDENTIFIER\" on stdin)", EnvVars: []string{"IRMV_CONFERENCE"}},
		&cli.StringFlag{Name: "relay", Usage: "auto (direct where possible) or always (media through TURN; hides this address)", Value: "auto", EnvVars: []string{"IRMV_RELAY"}},
		&cli.StringFlag{Name: "key", Usage: "Ed25519 key (PEM) to call with (default: a fresh one for this call)", EnvVars: []string{"IRMV_KEY"}},
		&cli.StringFlag{Name: "known-keys", Usage: "JSON file of callee keys to check (\"\": don't remember)", Value: defaultKeyFile("known_keys.json"), EnvVars: []string{"IRMV_KNOWN_KEYS"}},
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
are given), looks IDENTIFIER up through the node, calls the first result that is
online or idle, plays --play and records --record. Progress goes to stderr;
with --json one event per line goes to stdout (searching, found, ringing,
connected with setup_ms, quality with loss/jitter_ms/rtt_ms, route with
from/to/reason, ended). Ctrl-C hangs up. Several identifiers start a
conference (up to 6 parties, a mesh: every party connects to every other);
with --record FILE each other party goes to FILE-<party>.ogg. While a
conference runs (several identifiers, or --conference), a line
"add IDENTIFIER" on stdin looks another party up and invites it. When loss, jitter
or round-trip time stay over --max-loss, --max-jitter or --max-rtt for 3 s,
the call moves to another route without hanging up (a second connection is
brought up beside the first, then the first is closed): direct → through this
node's relay (relayed) → through the other node's relay (relayed-peer) →
direct, skipping a route left less than --route-hold-down (30 s) ago.
Exit status: 0 the call connected and ended, 1 not found, 2 error, 3 busy,
4 rejected, 5 no answer or unavailable, 6 failed, 130 cancelled (Ctrl-C
before the call was made).`,
		Flags:  flags,
		Action: runCall,
	}
}

// errStopSearch ends a search once a callable result is in.
var errStopSearch = errors.New("found")

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
	if err := checkRecordFile(c.String("record")); err != nil {
		return err
	}
	reg := share.Registration{Name: c.String("name"), Phone: c.String("phone"), UID: c.String("uid"), IP: c.String("ip")}
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
	p, err := phone.Start(ctx, phone.Options{
		Client:        cl,
		Registration:  reg,
		Key:           key,
		Answer:        phone.AnswerReject,
		KnownKeysFile: c.String("known-keys"),
		RouteHoldDown: c.Duration("route-hold-down"),
		OnEvent: func(e phone.Event) {
			if e.Type != phone.EventRegistered {
				pr.print(e)
			}
		},
		Logger: log,
	})
	if err != nil {
		if ctx.Err() != nil {
			return cli.Exit("cancelled", exitCancelled)
		}
		return cli.Exit(err.Error(), exitError)
	}
	defer p.Close()
	self := p.Ack()

	var results []search.Result
	for _, target := range args {
		found, err := lookup(ctx, c, cl, pr, self.Terminal, target, false)
		if err != nil {
			return err
		}
		results = append(results, *found)
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
			target, isAdd := addCommand(line)
			if !isAdd {
				if strings.TrimSpace(line) != "" {
					pr.print(phone.Event{Type: phone.EventWarning, Reason: fmt.Sprintf("%q: type add IDENTIFIER to invite another party", line)})
				}
				continue
			}
			found, err := lookup(ctx, c, cl, pr, self.Terminal, target, true)
			if err != nil {
				pr.print(phone.Event{Type: phone.EventWarning, Reason: "add " + target + ": " + err.Error()})
				continue
			}
			go func() {
				if _, err := conf.Add(ctx, *found); err != nil && ctx.Err() == nil {
					pr.print(phone.Event{Type: phone.EventWarning, Reason: "add " + target + ": " + err.Error()})
				}
			}()
		}
	}
}

// addCommand parses "add IDENTIFIER" (the identifier may contain spaces).
func addCommand(line string) (target string, ok bool) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "add" {
		return "", false
	}
	return strings.Join(f[1:], " "), true
}

// lookup finds a callable terminal for target, or returns the exit error.
// While adding a party to a running conference, a failed lookup prints no
// "ended" event: the conference goes on.
func lookup(ctx context.Context, c *cli.Context, cl *client.Client, pr *eventPrinter, self, target string, adding bool) (*search.Result, error) {
	// Look the callee up.
	pr.print(phone.Event{Type: phone.EventSearching, Text: target})
	var found *search.Result
	var busy, offline bool
	sctx, cancel := context.WithTimeout(ctx, c.Duration("timeout")+time.Second)
	err := cl.Search(sctx, search.Query{Text: target, Timeout: c.Duration("timeout")}, func(r search.Result) error {
		if r.Terminal == self {
			return nil // ourselves, when an identifier flag matches
		}
		switch {
		case r.Status.Callable():
			found = &r
			return errStopSearch
		case r.Status == record.StatusBusy:
			busy = true
		default:
			offline = true
		}
		return nil
	})
	cancel()
	if err != nil && !errors.Is(err, errStopSearch) && !errors.Is(err, context.DeadlineExceeded) {
		if ctx.Err() != nil {
			return nil, cli.Exit("cancelled", exitCancelled)
		}
		return nil, apiExit(err)
	}
	if found == nil {
		ended := func(reason string) {
			if !adding {
				pr.print(phone.Event{Type: phone.EventEnded, Reason: reason})
			}
		}
		switch {
		case busy:
			ended("busy")
			return nil, cli.Exit(target+" is busy", exitBusy)
		case offline:
			ended("unavailable")
			return nil, cli.Exit(target+" is offline", exitNoAnswer)
		}
		ended("not found")
		return nil, cli.Exit(target+": not found", exitNotFound)
	}
	pr.print(phone.Event{Type: phone.EventFound, Peer: &callsignal.Party{
		Node: found.Node, Terminal: found.Terminal, Identifiers: found.Identifiers, Key: found.Key, Private: found.Private,
	}})

	return found, nil
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
