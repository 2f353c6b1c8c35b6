//go:build !irmv_node_only

package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// rejecter is a registered terminal that counts how often it rang and
// rejects every call.
type rejecter struct {
	p    *phone.Phone
	rang atomic.Int32
}

func startRejecter(t *testing.T, n *node.Node, reg client.Registration) *rejecter {
	t.Helper()
	cl, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	r := &rejecter{}
	r.p, err = phone.Start(context.Background(), phone.Options{
		Client:        cl,
		Registration:  reg,
		Answer:        phone.AnswerAsk,
		SettingEngine: media.LoopbackSettingEngine(),
		Ask: func(context.Context, phone.Incoming) bool {
			r.rang.Add(1)
			return false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "r.p", r.p)
	return r
}

// TestCallResolves: "irmv call" rings only the one terminal a query means
// best; when several match equally well it rings nobody, lists them and
// exits 7; --terminal HANDLE@NODE picks one of them. The terminals sit on
// a second node, so every answer crosses the network.
func TestCallResolves(t *testing.T) {
	nodes := nodetest.Chain(t, 2, func(i int, o *node.Options) {
		if i == 1 {
			o.Region = "SE"
		}
	})
	asker, host := nodes[0], nodes[1]
	calleeB := startRejecter(t, host, client.Registration{Name: "Callee b", UID: "callee-b"})
	calleeC := startRejecter(t, host, client.Registration{Name: "Callee c", UID: "callee-c"})
	kim1 := startRejecter(t, host, client.Registration{Name: "Kim Berg", UID: "kim-1"})
	kim2 := startRejecter(t, host, client.Registration{Name: "Kim Berg", UID: "kim-2", Phone: "08-123 45 67"})
	rang := func() [4]int32 {
		return [4]int32{calleeB.rang.Load(), calleeC.rang.Load(), kim1.rang.Load(), kim2.rang.Load()}
	}
	// Announced once the asking node finds all four.
	nodetest.WaitFor(t, "terminals announced", func() bool {
		ch, err := asker.Search().Search(context.Background(), client.Query{Text: "callee", Via: client.ViaDHT, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range ch {
			n++
		}
		ch, _ = asker.Search().Search(context.Background(), client.Query{Text: "kim berg", Via: client.ViaDHT, Timeout: time.Second})
		for range ch {
			n++
		}
		return n == 4
	})
	api := asker.APIURL()

	t.Run("exact", func(t *testing.T) {
		// "callee-c" is Callee c's unique ID and, as a name, "Callee c";
		// Callee b does not match ("c" is no word of "Callee b").
		code, out, errw := runCLI("call", "--node", api, "--json", "--timeout", "3s", "callee-c")
		if code != exitRejected {
			t.Fatalf("exit %d, want %d (rejected)\nstdout: %s\nstderr: %s", code, exitRejected, out, errw)
		}
		if got := rang(); got != [4]int32{0, 1, 0, 0} {
			t.Fatalf("rang %v, want only Callee c", got)
		}
		if !strings.Contains(out, `"type":"found"`) || !strings.Contains(out, `"reason":"exact"`) {
			t.Errorf("no exact found event:\n%s", out)
		}
	})

	t.Run("ambiguous", func(t *testing.T) {
		before := rang()
		code, out, errw := runCLI("call", "--node", api, "--json", "--timeout", "3s", "Kim Berg")
		if code != exitAmbiguous {
			t.Fatalf("exit %d, want %d (ambiguous)\nstdout: %s\nstderr: %s", code, exitAmbiguous, out, errw)
		}
		if got := rang(); got != before {
			t.Fatalf("rang %v after an ambiguous call, was %v", got, before)
		}
		var picks []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var e client.Event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if e.Type == eventCandidate {
				if e.Reason != "exact" || e.Peer == nil || e.Peer.Node != host.ID().String() {
					t.Errorf("candidate %+v", e)
				}
				picks = append(picks, e.Text)
			}
		}
		if len(picks) != 2 || !strings.Contains(out, `"reason":"ambiguous"`) {
			t.Fatalf("want two candidates and an ambiguous end:\n%s", out)
		}
		// Without --json: the list on stdout, the reason on stderr.
		code, out, errw = runCLI("call", "--node", api, "--timeout", "3s", "kim berg")
		if code != exitAmbiguous || !strings.Contains(errw, "--terminal") {
			t.Fatalf("exit %d\nstderr: %s", code, errw)
		}
		for _, p := range picks {
			if !strings.Contains(out, p) {
				t.Errorf("list lacks %s:\n%s", p, out)
			}
		}
		if got := rang(); got != before {
			t.Fatalf("rang %v after an ambiguous call, was %v", got, before)
		}
	})

	t.Run("pick", func(t *testing.T) {
		before := rang()
		pick := kim2.p.Ack().Terminal + "@" + host.ID().String()
		code, out, errw := runCLI("call", "--node", api, "--json", "--timeout", "3s", "--terminal", pick, "Kim Berg")
		if code != exitRejected {
			t.Fatalf("exit %d, want %d (rejected)\nstdout: %s\nstderr: %s", code, exitRejected, out, errw)
		}
		if got := rang(); got != [4]int32{before[0], before[1], before[2], before[3] + 1} {
			t.Fatalf("rang %v (was %v), want only kim-2", got, before)
		}
		// kim-2's Swedish number, registered nationally at the Swedish
		// node, is found from the German one written internationally.
		before = rang()
		code, out, errw = runCLI("call", "--node", api, "--json", "--timeout", "3s", "+46 (0)8-123 45 67")
		if code != exitRejected || rang()[3] != before[3]+1 {
			t.Fatalf("exit %d, rang %v (was %v)\nstdout: %s\nstderr: %s", code, rang(), before, out, errw)
		}
	})
}

// TestAskWhich: on an interactive terminal, the person picks one of the
// listed terminals by its number; anything else picks nobody; the answer's
// line is all that is read, so later "add" lines stay on stdin.
func TestAskWhich(t *testing.T) {
	rs := []client.Result{{Terminal: "a", Node: "n1"}, {Terminal: "b", Node: "n2"}}
	for _, tc := range []struct {
		in, want, rest string
	}{
		{"2\nadd carol\n", "b", "add carol\n"},
		{" 1 \n", "a", ""},
		{"\n", "", ""},
		{"3\n", "", ""},
		{"x\n", "", ""},
		{"", "", ""},
	} {
		app := newApp()
		in := strings.NewReader(tc.in)
		var errw strings.Builder
		app.Reader, app.ErrWriter = in, &errw
		got := askWhich(cli.NewContext(app, nil, nil), "kim", rs)
		if (got == nil) != (tc.want == "") || (got != nil && got.Terminal != tc.want) {
			t.Errorf("answer %q: picked %+v, want %q", tc.in, got, tc.want)
		}
		rest, _ := io.ReadAll(in)
		if string(rest) != tc.rest {
			t.Errorf("answer %q: left %q on stdin, want %q", tc.in, rest, tc.rest)
		}
		if !strings.Contains(errw.String(), "1) ") || !strings.Contains(errw.String(), "2) ") || !strings.Contains(errw.String(), "b@n2") {
			t.Errorf("prompt lacks the numbered list:\n%s", errw.String())
		}
	}
}

func TestAddCommand(t *testing.T) {
	for _, tc := range []struct {
		line, target string
		picks        []string
		ok           bool
	}{
		{"add carol", "carol", nil, true},
		{"add Kim Berg", "Kim Berg", nil, true},
		{"add Kim Berg --terminal t1@node", "Kim Berg", []string{"t1@node"}, true},
		{"add --terminal=t1@node Kim", "Kim", []string{"t1@node"}, true},
		{"add --terminal t1@node", "", nil, false},
		{"add", "", nil, false},
		{"hello carol", "", nil, false},
	} {
		target, picks, ok := addCommand(tc.line)
		if target != tc.target || ok != tc.ok || strings.Join(picks, ",") != strings.Join(tc.picks, ",") {
			t.Errorf("addCommand(%q) = %q, %q, %v; want %q, %q, %v", tc.line, target, picks, ok, tc.target, tc.picks, tc.ok)
		}
	}
}
