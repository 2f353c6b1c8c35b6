package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node/nodetest"
)

// TestCallAddsParty: `irmv call --conference` to one party, then a line
// "add IDENTIFIER" on stdin: the second party is looked up, rings and
// joins the running conference, and connects to the first one too. A
// party already in it is not called again ("already in the conference"),
// nor is a terminal named twice on the command line.
func TestCallAddsParty(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	cl, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	incoming := map[string]chan client.Event{}
	for _, uid := range []string{"conf-first", "conf-added"} {
		ch := make(chan client.Event, 64)
		incoming[uid] = ch
		p, err := phone.Start(context.Background(), phone.Options{
			Client:        cl,
			Registration:  client.Registration{Name: uid, UID: uid},
			Answer:        phone.AnswerAuto,
			SettingEngine: media.LoopbackSettingEngine(),
			OnEvent: func(e client.Event) {
				if e.Type == client.EventConnected {
					ch <- e
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		testenv.Close(t, "p", p)
	}

	stdin, typed := io.Pipe()
	defer typed.Close()
	var out, errw testenv.SyncBuffer
	app := newApp()
	app.Reader, app.Writer, app.ErrWriter = stdin, &out, &errw
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"irmv", "call", "--node", n.APIURL(), "--json", "--conference", "uid:conf-first"})
	}()
	connected := func(uid string) client.Event {
		t.Helper()
		select {
		case e := <-incoming[uid]:
			return e
		case err := <-done:
			t.Fatalf("irmv call ended: %v\nstdout: %s\nstderr: %s", err, out.String(), errw.String())
		case <-time.After(60 * time.Second):
			t.Fatalf("%s never connected\nstdout: %s", uid, out.String())
		}
		return client.Event{}
	}
	connected("conf-first")
	if _, err := io.WriteString(typed, "add uid:conf-added\n"); err != nil {
		t.Fatal(err)
	}
	// The added party connects twice: to the caller, then to the first
	// party, which learns of it from the conference roster.
	peers := map[string]bool{}
	for range 2 {
		e := connected("conf-added")
		if e.Peer != nil {
			peers[e.Peer.Identifiers.UID] = true
		}
	}
	if !peers["conf-first"] {
		t.Errorf("the added party connected to %v, not to the first party", peers)
	}
	if got := strings.Count(out.String(), `"type":"connected"`); got != 2 {
		t.Errorf("the caller printed %d connected events, want 2:\n%s", got, out.String())
	}
	if _, err := io.WriteString(typed, "add uid:conf-first\n"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "already in the conference"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("adding a party twice: no warning within 60 s:\n%s", out.String())
		}
	}
	if got := strings.Count(out.String(), `"type":"ringing"`); got != 2 {
		t.Errorf("%d ringing events after adding a party twice, want 2:\n%s", got, out.String())
	}
	// Said once: it said "add uid:conf-first: uid:conf-first: already …".
	if !strings.Contains(out.String(), `"add uid:conf-first: already in the conference"`) {
		t.Errorf("the warning names the party twice or not at all:\n%s", out.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("irmv call: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("irmv call did not return after cancel")
	}
	if code, _, stderr := runCLI("share", "add", "--node", n.APIURL(), "--uid", "named-twice"); code != exitOK {
		t.Fatalf("share add: exit %d: %s", code, stderr)
	}
	code, _, stderr := runCLI("call", "--node", n.APIURL(), "uid:named-twice", "named-twice")
	if code != exitError || !strings.Contains(stderr, "same terminal") {
		t.Errorf("a terminal named twice: exit %d, stderr %q", code, stderr)
	}
}
