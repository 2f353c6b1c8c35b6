package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node/nodetest"
)

// TestCLIUsageMessages: a mistyped command says "unknown command" with a
// suggestion and exits 2 (not 3, call's "busy"); a duration without a unit
// says so; an empty query names QUERY, not the API's parameter.
func TestCLIUsageMessages(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	node := "--node=" + n.APIURL()
	cases := []struct {
		args []string
		want []string // all in stderr
		env  string   // NAME=VALUE set for the case
	}{
		{[]string{"serch", "anna"}, []string{`unknown command "serch"`, `"search"`}, ""},
		{[]string{"share", "lst"}, []string{`unknown command "lst"`, `"list"`}, ""},
		{[]string{"search", node, "--timeout", "5", "anna"}, []string{"--timeout 5", "needs a unit", "5s"}, ""},
		{[]string{"search", node, "anna", "--timeout", "5"}, []string{"--timeout 5", "needs a unit"}, ""},
		{[]string{"call", node, "--timeout", "5", "anna"}, []string{"--timeout 5", "needs a unit"}, ""},
		{[]string{"call", node, "--hangup-after", "soon", "anna"}, []string{"--hangup-after", "not a duration"}, ""},
		{[]string{"call", node, "--hangup-after", "-1s", "anna"}, []string{"--hangup-after -1s", "want 0 (stay) or a positive duration"}, ""},
		{[]string{"call", node, "--ring-timeout", "0s", "anna"}, []string{"--ring-timeout 0s", "want a positive duration"}, ""},
		{[]string{"call", node, "--timeout", "0s", "anna"}, []string{"--timeout 0s", "want more than 0"}, ""},
		{[]string{"search", node, ""}, []string{"QUERY is empty"}, ""},
		{[]string{"search", node, "--via", "dns", "anna"}, []string{`--via "dns"`, "want auto, dht or flood"}, ""},
		{[]string{"call", node, " "}, []string{"IDENTIFIER is empty"}, ""},
		{[]string{"search", node, "--limit", "x", "anna"}, []string{`--limit "x"`, "not a whole number"}, ""},
		{[]string{"call", node, "--max-loss", "abc", "anna"}, []string{`--max-loss "abc"`, "not a number"}, ""},
		{[]string{"node", "--mdns=maybe"}, []string{`--mdns "maybe"`, "want true or false"}, ""},
		{[]string{"search", node, "anna"}, []string{"IRMV_TIMEOUT=5 (--timeout)", "needs a unit", "5s"}, "IRMV_TIMEOUT=5"},
		{[]string{"search", node, "anna"}, []string{`IRMV_LIMIT="abc" (--limit)`, "not a whole number"}, "IRMV_LIMIT=abc"},
		{[]string{"share", "add", node, "--uid", "x", "--ttl", "5s"}, []string{"--ttl 5s", "want 0 (the node's default) or 10s to 168h"}, ""},
	}
	for _, c := range cases {
		t.Run(c.env+" "+strings.Join(c.args, " "), func(t *testing.T) {
			if k, v, ok := strings.Cut(c.env, "="); ok {
				t.Setenv(k, v)
			}
			code, _, stderr := runCLI(c.args...)
			if code != exitError {
				t.Errorf("exit %d, want %d", code, exitError)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			for _, bad := range []string{"No help topic", "parse error", "missing q", "Incorrect Usage", "strconv", "--help lists the flags", "ttl out of range"} {
				if strings.Contains(stderr, bad) {
					t.Errorf("stderr says %q:\n%s", bad, stderr)
				}
			}
		})
	}
}

// TestCallChecksInputFirst: `irmv call --play speech.wav` (a 44.1 kHz WAV:
// neither Ogg/Opus nor the 8 kHz WAV that G.711 plays) or
// a --record file in a missing directory exits 2 before anyone is searched
// for or rung. The same call with a good file does ring and connect, and its
// quality events carry loss and jitter even when they are zero.
func TestCallChecksInputFirst(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	cl, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	incoming := make(chan client.Event, 16)
	p, err := phone.Start(context.Background(), phone.Options{
		Client:        cl,
		Registration:  client.Registration{Name: "Callee", UID: "first-hour"},
		Answer:        phone.AnswerAuto,
		SettingEngine: media.LoopbackSettingEngine(),
		OnEvent: func(e client.Event) {
			if e.Type == client.EventIncoming {
				incoming <- e
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "p", p)

	dir := t.TempDir()
	wav := filepath.Join(dir, "speech.wav")
	// A 44.1 kHz RIFF/WAVE header and a little silence: what a newcomer
	// has at hand.
	if err := os.WriteFile(wav, append([]byte("RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x44\xac\x00\x00\x88\x58\x01\x00\x02\x00\x10\x00data\x00\x08\x00\x00"), make([]byte, 2048)...), 0o644); err != nil {
		t.Fatal(err)
	}
	node := "--node=" + n.APIURL()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"wav to play", []string{"call", node, "--json", "--play", wav, "uid:first-hour"}, "G.711 wants 16-bit PCM at 8000 Hz"},
		{"missing play file", []string{"call", node, "--json", "--play", filepath.Join(dir, "none.ogg"), "uid:first-hour"}, "no such file"},
		{"record into a missing directory", []string{"call", node, "--json", "--record", filepath.Join(dir, "no", "call.ogg"), "uid:first-hour"}, "does not exist"},
		{"phone plays a wav", []string{"phone", node, "--uid", "other", "--play", wav}, "G.711 wants 16-bit PCM at 8000 Hz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(c.args...)
			if code != exitError || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitError, c.want)
			}
			if stdout != "" {
				t.Errorf("events before the input was checked:\n%s", stdout)
			}
		})
	}
	select {
	case e := <-incoming:
		t.Fatalf("the callee rang for a call with bad input: %+v", e)
	default:
	}

	// The control: a good file rings and connects.
	var out, errw testenv.SyncBuffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errw
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"irmv", "call", node, "--json", "--play", "../../call/media/testdata/speech.ogg", "uid:first-hour"})
	}()
	deadline := time.After(60 * time.Second)
	var quality map[string]any
	for quality == nil {
		select {
		case err := <-done:
			t.Fatalf("irmv call ended before a quality sample: %v\n%s\n%s", err, out.String(), errw.String())
		case <-deadline:
			t.Fatalf("no quality event:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		for _, line := range strings.Split(out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["type"] == client.EventQuality {
				quality = m
			}
		}
	}
	for _, k := range []string{"loss", "jitter_ms", "rtt_ms"} {
		if _, ok := quality[k]; !ok {
			t.Errorf("quality event lacks %q: %v", k, quality)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("irmv call: %v", err)
	}
	select {
	case <-incoming:
	default:
		t.Error("the good call never rang the callee")
	}
}

// TestShareAsWritten: the README's share commands as a newcomer types them.
// A national number on a node without --region says how to fix it; flags
// after TERMINAL apply (as they do for search and call); "rm" is remove;
// a uid where the handle belongs says what TERMINAL is. irmv phone and
// irmv call name --region too.
func TestShareAsWritten(t *testing.T) {
	o := nodetest.Options(t)
	o.Region = ""
	n := nodetest.Start(t, o)
	url := n.APIURL()
	code, _, stderr := runCLI("share", "add", "--node", url, "--name", "José Müller", "--phone", "030 1234567", "--uid", "desk-42")
	if code != exitError || !strings.Contains(stderr, "--region") || !strings.Contains(stderr, "+ and the country code") {
		t.Errorf("national number without --region: exit %d, stderr %q", code, stderr)
	}
	for _, args := range [][]string{
		{"phone", "--node", url, "--key", filepath.Join(t.TempDir(), "k.pem"), "--phone", "030 1234567"},
		{"call", "--node", url, "--phone", "030 1234567", "bob"},
	} {
		code, _, stderr := runCLI(args...)
		if code != exitError || !strings.Contains(stderr, "--region") {
			t.Errorf("%s with a national number, node without --region: exit %d, stderr %q", args[0], code, stderr)
		}
	}
	code, stdout, stderr := runCLI("share", "add", "--node", url, "--json", "--name", "José Müller", "--phone", "+49 30 1234567", "--uid", "desk-42")
	if code != exitOK {
		t.Fatalf("share add: exit %d: %s", code, stderr)
	}
	var ack client.Ack
	if err := json.Unmarshal([]byte(stdout), &ack); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI("share", "status", "desk-42", "busy", "--node", url)
	if code != exitError || !strings.Contains(stderr, "handle") {
		t.Errorf("status by uid: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr = runCLI("share", "status", ack.Terminal, "busy", "--node", url)
	if code != exitOK || !strings.Contains(stdout, "busy") {
		t.Errorf("status with --node after the arguments: exit %d, %q %q", code, stdout, stderr)
	}
	if st := n.Registry().List(); len(st) != 1 || st[0].Status.String() != "busy" {
		t.Errorf("after share status busy: %+v", st)
	}
	code, stdout, stderr = runCLI("share", "rm", ack.Terminal, "--node", url)
	if code != exitOK || !strings.Contains(stdout, "removed") {
		t.Errorf("share rm with --node after TERMINAL: exit %d, %q %q", code, stdout, stderr)
	}
	if st := n.Registry().List(); len(st) != 0 {
		t.Errorf("still registered after share rm: %+v", st)
	}
}

// TestNodeDataDirInUse: a second node on a running node's --data-dir says
// that the directory is in use (bbolt's lock), not only "timeout".
func TestNodeDataDirInUse(t *testing.T) {
	o := nodetest.Options(t)
	nodetest.Start(t, o)
	code, _, stderr := runCLI("node", "--data-dir", o.DataDir, "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0",
		"--turn", "off", "--mdns=false", "--log-level", "error")
	if code != exitError || !strings.Contains(stderr, "in use by another irmv node") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestCallSaysNothingRecorded: irmv call --record to a party that sends no
// audio makes no file (it is created with the first audio) and says so;
// it made no file and said nothing. A party that plays is recorded, with
// no such note.
func TestCallSaysNothingRecorded(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	cl, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []phone.Options{
		{Registration: client.Registration{UID: "silent-party"}},
		{Registration: client.Registration{UID: "talking-party"}, Play: "../../call/media/testdata/speech.ogg"},
	} {
		o.Client, o.Answer, o.SettingEngine = cl, phone.AnswerAuto, media.LoopbackSettingEngine()
		p, err := phone.Start(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, o.Registration.UID, p)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		uid    string
		silent bool
	}{{"silent-party", true}, {"talking-party", false}} {
		t.Run(c.uid, func(t *testing.T) {
			file := filepath.Join(dir, c.uid+".ogg")
			code, _, stderr := runCLI("call", "--node="+n.APIURL(), "--record", file, "--hangup-after", "3s", "uid:"+c.uid)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			_, statErr := os.Stat(file)
			said := strings.Contains(stderr, "--record: nothing recorded, "+c.uid+" sent no audio")
			switch {
			case c.silent && (statErr == nil || !said):
				t.Errorf("file made: %v, said so: %v; want no file and a note:\n%s", statErr == nil, said, stderr)
			case !c.silent && (statErr != nil || said):
				t.Errorf("file: %v, said nothing recorded: %v:\n%s", statErr, said, stderr)
			}
		})
	}
}

// TestNodeStartErrorsNameTheFlag: a node that cannot start on a port in use
// or with a region that is no country code names the flag to change, as
// --turn, --sip and --data-dir already did.
func TestNodeStartErrorsNameTheFlag(t *testing.T) {
	o := nodetest.Options(t)
	first := nodetest.Start(t, o)
	listen := strings.TrimSuffix(nodetest.LoopbackAddr(t, first), "/p2p/"+first.ID().String())
	api := first.APIAddr().String()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--api", api}, []string{"terminal API on " + api, "address already in use", "choose another with --api ADDR"}},
		{[]string{"--https", api}, []string{"https on " + api, "address already in use", "choose another with --https ADDR"}},
		{[]string{"--listen", listen}, []string{"listen on " + listen, "address already in use", "give each node on a machine its own --listen port"}},
		{[]string{"--region", "Germany"}, []string{`--region "Germany"`, "country code", "e.g. DE"}},
		{[]string{"--bootstrap", listen}, []string{"--bootstrap " + listen + ": needs the node's peer ID", listen + "/p2p/<peer-id>"}},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := []string{"node", "--data-dir", t.TempDir(), "--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0",
				"--turn", "off", "--mdns=false", "--log-level", "error"}
			code, _, stderr := runCLI(append(args, c.args...)...)
			if code != exitError {
				t.Errorf("exit %d, want %d", code, exitError)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}
}

// TestCallSaysKeysPressed: irmv call --dtmf says when its keys have gone
// out (it said nothing, so the caller could not tell them sent from
// lost), and the callee gets them.
func TestCallSaysKeysPressed(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	cl, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got string
	p, err := phone.Start(context.Background(), phone.Options{
		Client: cl, Registration: client.Registration{UID: "voice-menu"},
		Answer: phone.AnswerAuto, SettingEngine: media.LoopbackSettingEngine(),
		OnEvent: func(e client.Event) {
			if e.Type == client.EventDTMF {
				mu.Lock()
				got += e.Digit
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "p", p)
	code, _, stderr := runCLI("call", "--node="+n.APIURL(), "--dtmf", "12#", "--hangup-after", "3s", "uid:voice-menu")
	if code != 0 || !strings.Contains(stderr, "pressed 12#") {
		t.Errorf("exit %d; want 0 and 'pressed 12#':\n%s", code, stderr)
	}
	nodetest.WaitFor(t, "the keys at the callee", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got == "12#"
	})
}

// TestNodeHelpSaysWhatItOpens: irmv node --help names what a node opens
// (the TURN relay, the web page) and what a second node on one machine
// needs; it named neither, and a second node failed on the TURN port.
func TestNodeHelpSaysWhatItOpens(t *testing.T) {
	_, stdout, _ := runCLI("node", "--help")
	help := strings.Join(strings.Fields(stdout), " ")
	for _, w := range []string{"STUN/TURN relay for its terminals (--turn, UDP 3478)", "web page (--api, http://127.0.0.1:7370)",
		"A second node on the same machine needs its own --data-dir, --listen, --turn and --api"} {
		if !strings.Contains(help, w) {
			t.Errorf("irmv node --help lacks %q:\n%s", w, stdout)
		}
	}
}

// TestUnknownCommandHints: a command name far from every command gets no
// suggestion (it got `Did you mean ""?`, or "h"); a near one gets the
// command. In a node-only (firmware) build, phone, call, sim and demo say
// that the build leaves them out (it suggested "h"); scripts/firmware/test.sh
// checks that on the firmware binary.
func TestUnknownCommandHints(t *testing.T) {
	for _, c := range []struct {
		arg, want string
	}{{"x", ""}, {"zzz", ""}, {"phome", `Did you mean "phone"?`}, {"serch", `Did you mean "search"?`}} {
		code, _, stderr := runCLI(c.arg)
		if code != exitError || !strings.Contains(stderr, `unknown command "`+c.arg+`"`) {
			t.Errorf("irmv %s: exit %d:\n%s", c.arg, code, stderr)
		}
		if c.want == "" && strings.Contains(stderr, "Did you mean") || !strings.Contains(stderr, c.want) {
			t.Errorf("irmv %s: want suggestion %q:\n%s", c.arg, c.want, stderr)
		}
	}
	msg := unknownCommandMsg(newApp().Commands, "phone", "irmv", false)
	if !strings.Contains(msg, "irmv phone is not in this build") || strings.Contains(msg, "Did you mean") {
		t.Errorf("node-only build, irmv phone: %q", msg)
	}
}

// TestRegisteredSaysWhatKeepsIt: irmv share add says when the terminal
// expires and how to refresh it (irmv share refresh, which starts its TTL
// again), and irmv phone says that it keeps itself registered; both printed
// "registered X (expires TIME)", which for the phone was never true.
func TestRegisteredSaysWhatKeepsIt(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	url := n.APIURL()
	code, stdout, stderr := runCLI("share", "add", "--node", url, "--uid", "desk-7", "--ttl", "60s")
	if code != exitOK {
		t.Fatalf("share add: exit %d: %s", code, stderr)
	}
	ts := n.Registry().List()
	if len(ts) != 1 {
		t.Fatalf("registered: %+v", ts)
	}
	handle, first := ts[0].Terminal, ts[0].ExpiresAt
	if want := "unless refreshed: irmv share refresh " + handle; !strings.Contains(stdout, want) || strings.Contains(stdout, "(expires") {
		t.Errorf("share add says\n%s\nwant %q", stdout, want)
	}
	code, _, stderr = runCLI("share", "refresh", "desk-7", "--node", url)
	if code != exitError || !strings.Contains(stderr, "handle") {
		t.Errorf("refresh by uid: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr = runCLI("share", "refresh", "--node", url); code != exitError || !strings.Contains(stderr, "usage: irmv share refresh TERMINAL") {
		t.Errorf("refresh without TERMINAL: exit %d, stderr %q", code, stderr)
	}
	time.Sleep(5 * time.Millisecond) // expiry is kept in ms: let the clock pass one
	code, stdout, stderr = runCLI("share", "refresh", handle, "--node", url)
	if code != exitOK || !strings.Contains(stdout, "unless refreshed again") {
		t.Fatalf("share refresh: exit %d, %q %q", code, stdout, stderr)
	}
	if ts := n.Registry().List(); len(ts) != 1 || !ts[0].ExpiresAt.After(first) {
		t.Errorf("after share refresh, expires %v; before %v", ts, first)
	}

	ctx, cancel := context.WithCancel(context.Background())
	out := &testenv.SyncBuffer{}
	app := newApp()
	app.Writer, app.ErrWriter = out, out
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"irmv", "phone", "--node", url, "--uid", "roams", "--answer", "auto", "--key", filepath.Join(t.TempDir(), "k.pem")})
	}()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "waiting for calls"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("irmv phone did not register within 60 s:\n%s", out.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("irmv phone: %v", err)
	}
	if s := out.String(); !strings.Contains(s, "kept registered while this runs (a heartbeat every 10s") || strings.Contains(s, "expires") {
		t.Errorf("irmv phone says\n%s", s)
	}
}

// TestPhoneSameKey: two irmv phone with one --key (the default, on one
// machine) at one node: the second takes the terminal over and the first
// stops, exit 2, saying to give each phone its own --key. Both reconnected
// once a second, each taking the terminal from the other.
func TestPhoneSameKey(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	key := filepath.Join(t.TempDir(), "phone.key")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func(name string) (*testenv.SyncBuffer, chan error) {
		out := &testenv.SyncBuffer{}
		app := newApp()
		app.Writer, app.ErrWriter = out, out
		done := make(chan error, 1)
		go func() {
			done <- app.RunContext(ctx, []string{"irmv", "phone", "--node", n.APIURL(), "--name", name, "--answer", "auto", "--key", key})
		}()
		for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "waiting for calls"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("irmv phone %s did not register within 60 s:\n%s", name, out.String())
			}
		}
		return out, done
	}
	first, firstDone := run("Eve One")
	second, secondDone := run("Fay Two")
	select {
	case err := <-firstDone:
		ec, ok := err.(interface{ ExitCode() int })
		if !ok || ec.ExitCode() != exitError || !strings.Contains(err.Error(), "give each phone its own --key") {
			t.Errorf("first phone: %v\n%s", err, first.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the first phone did not stop:\n%s", first.String())
	}
	if !strings.Contains(first.String(), "another phone with this key connected to node") {
		t.Errorf("first phone says:\n%s", first.String())
	}
	cancel()
	if err := <-secondDone; err != nil {
		t.Errorf("second phone: %v\n%s", err, second.String())
	}
	if strings.Contains(second.String(), "connection to the node lost") {
		t.Errorf("second phone lost its connection:\n%s", second.String())
	}
}

// TestCallTerminalNamesNone: irmv call --terminal with a HANDLE@NODE that
// is none of the terminals found (a typo) calls nobody and says so, exit
// 1; it called the best match instead, someone the caller had not picked.
func TestCallTerminalNamesNone(t *testing.T) {
	n := nodeWith(t, "Anna Berg")
	for _, pick := range []string{"foo", "foo@bar"} {
		code, _, stderr := runCLI("call", "--node", n.APIURL(), "--terminal", pick, "anna")
		if code != exitNotFound || !strings.Contains(stderr, "--terminal "+pick+": not among the terminals found") {
			t.Errorf("--terminal %s: exit %d, stderr %q", pick, code, stderr)
		}
		if strings.Contains(stderr, "ringing") {
			t.Errorf("--terminal %s rang someone:\n%s", pick, stderr)
		}
	}
}

// TestHTTPSNodeNotTrusted: irmv search --node https://… at a node with its
// self-signed certificate says that the certificate is not trusted and how
// to trust it (SSL_CERT_FILE=<data-dir>/https.crt, which then works); it
// said "node unreachable … (is `irmv node` running?)" of a running node.
func TestHTTPSNodeNotTrusted(t *testing.T) {
	o := nodetest.Options(t)
	o.HTTPS = "127.0.0.1:0"
	n := nodetest.Start(t, o)
	code, _, stderr := runCLI("search", "--node", n.HTTPSURL(), "anna")
	if code != exitError || !strings.Contains(stderr, "SSL_CERT_FILE=<data-dir>/https.crt") || strings.Contains(stderr, "is `irmv node` running") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	// Go reads SSL_CERT_FILE once per process: the advice, as the user
	// follows it, runs the binary.
	cmd := exec.Command(buildIrmvForTest(t), "search", "--node", n.HTTPSURL(), "anna")
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+filepath.Join(o.DataDir, "https.crt"))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitNotFound {
		t.Errorf("with SSL_CERT_FILE: %v, %s", err, out)
	}
}

// TestPhoneSaysNewHandle: irmv phone that follows its --node-file to
// another node says the handle it has there (the one irmv share takes at
// that node); it said only "moved to node …".
func TestPhoneSaysNewHandle(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	file := filepath.Join(t.TempDir(), "node")
	if err := os.WriteFile(file, []byte(nodes[0].APIURL()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testenv.SyncBuffer{}
	app := newApp()
	app.Writer, app.ErrWriter = out, out
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"irmv", "phone", "--node-file", file, "--uid", "walks", "--answer", "auto", "--key", filepath.Join(t.TempDir(), "k.pem")})
	}()
	waitOut := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), what); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q within 60 s:\n%s", what, out.String())
			}
		}
	}
	waitOut("waiting for calls")
	if err := os.WriteFile(file, []byte(nodes[1].APIURL()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitOut("moved to node")
	ts := nodes[1].Registry().List()
	if len(ts) != 1 || !strings.Contains(out.String(), "registered there as "+ts[0].Terminal) {
		t.Errorf("at the new node %+v; irmv phone says:\n%s", ts, out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("irmv phone: %v", err)
	}
}
