//go:build !irmv_node_only

package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// TestPhoneKeysOnTTY: a line of keys typed on irmv phone's terminal while
// a call is up is pressed in the call: the caller (irmv call --json) gets
// a dtmf event for each key, in order. A line that is no keys says so and
// does not hold up the keys typed after it.
func TestPhoneKeysOnTTY(t *testing.T) {
	bin := buildIrmvForTest(t)
	n := nodetest.Start(t, nodetest.Options(t))
	tty, screen := startPhoneOnTTY(t, bin, "--node", n.APIURL(), "--uid", "keypad", "--answer", "auto")
	waitText := func(what string, b *testenv.SyncBuffer, s string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !strings.Contains(b.String(), s); {
			if time.Now().After(deadline) {
				t.Fatalf("no %s (%q) within 60 s:\n%s", what, s, b.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitText("registration", screen, "waiting for calls")

	out, hangup := startCall(t, "--node", n.APIURL(), "--json", "uid:keypad")
	waitText("connected event", out, `"type":"connected"`)
	if _, err := io.WriteString(tty, "hello\n"); err != nil {
		t.Fatal(err)
	}
	waitText("warning", screen, "not keys")
	if _, err := io.WriteString(tty, "42#\n"); err != nil {
		t.Fatal(err)
	}
	waitText("key #", out, `"digit":"#"`)
	got := out.String()
	if i4, i2, ih := strings.Index(got, `"digit":"4"`), strings.Index(got, `"digit":"2"`), strings.Index(got, `"digit":"#"`); !(i4 >= 0 && i4 < i2 && i2 < ih) {
		t.Errorf("keys 4, 2, # not received in order:\n%s", got)
	}
	hangup()
}

// TestPhoneAnswerPromptOnTTY: irmv phone --answer ask asks on its
// terminal; "y" answers. A line typed after a prompt gave up (the caller
// hung up) is not kept to answer the next call: that one is refused by
// the "n" typed at its own prompt.
func TestPhoneAnswerPromptOnTTY(t *testing.T) {
	bin := buildIrmvForTest(t)
	n := nodetest.Start(t, nodetest.Options(t))
	tty, screen := startPhoneOnTTY(t, bin, "--node", n.APIURL(), "--uid", "asker", "--answer", "ask")
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 60 s:\n%s", what, screen.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	prompts := func() int { return strings.Count(screen.String(), "answer? [y/N]") }
	typeLine := func(l string) {
		t.Helper()
		if _, err := io.WriteString(tty, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("registration", func() bool { return strings.Contains(screen.String(), "waiting for calls") })

	// 1. Answered with "y".
	out, hangup := startCall(t, "--node", n.APIURL(), "--json", "uid:asker")
	waitFor("first prompt", func() bool { return prompts() == 1 })
	typeLine("y")
	waitFor("connected", func() bool { return strings.Contains(out.String(), `"type":"connected"`) })
	hangup()
	waitFor("the phone online again", func() bool {
		st := n.Registry().List()
		return len(st) == 1 && st[0].Status.String() == "online"
	})

	// 2. The caller gives up while the prompt waits; a "y" typed then is
	// no answer to anything.
	ctx, giveUp := context.WithCancel(context.Background())
	defer giveUp()
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	gaveUp := make(chan error, 1)
	go func() {
		gaveUp <- app.RunContext(ctx, []string{"irmv", "call", "--node", n.APIURL(), "--json", "uid:asker"})
	}()
	waitFor("second prompt", func() bool { return prompts() == 2 })
	giveUp()
	select {
	case <-gaveUp: // "cancelled"
	case <-time.After(60 * time.Second):
		t.Fatal("irmv call did not return after giving up")
	}
	waitFor("gave up", func() bool { return strings.Contains(screen.String(), "caller gave up") })
	typeLine("y")
	waitFor("the stray line refused", func() bool { return strings.Contains(screen.String(), "not keys") })

	// 3. The next call waits for its own answer: "n" refuses it.
	var stdout, stderr testenv.SyncBuffer
	app = newApp()
	app.Writer, app.ErrWriter = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- app.Run([]string{"irmv", "call", "--node", n.APIURL(), "--json", "uid:asker"}) }()
	waitFor("third prompt", func() bool { return prompts() == 3 })
	if strings.Contains(stdout.String(), `"type":"connected"`) {
		t.Fatalf("the third call was answered before its prompt got a line:\n%s", stdout.String())
	}
	typeLine("n")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(stdout.String()+stderr.String(), "rejected") {
			t.Errorf("third call: %v, want rejected\n%s%s", err, stdout.String(), stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the third call was not refused")
	}
	// Each call's caller is named once, in its prompt (the "incoming call
	// from" line was printed before the prompt said the same).
	if n, p := strings.Count(strings.ToLower(screen.String()), "incoming call from"), prompts(); n != p {
		t.Errorf("the caller was named %d times for %d prompts", n, p)
	}
}

// startPhoneOnTTY runs irmv phone with args (and a fresh key) on a
// pseudo-terminal, and returns the terminal and what irmv wrote to it.
// The phone is killed when the test ends; its screen is logged if the
// test failed.
func startPhoneOnTTY(t *testing.T, bin string, args ...string) (*os.File, *testenv.SyncBuffer) {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string{"phone"}, args...), "--key", t.TempDir()+"/key.pem")...)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	screen := &testenv.SyncBuffer{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(screen, tty) // ends with EIO once irmv exits
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		tty.Close()
		<-copied
		if t.Failed() {
			t.Logf("irmv phone's terminal:\n%s", screen.String())
		}
	})
	return tty, screen
}

// TestPhoneSaysReconnected: irmv phone whose node restarts says that the
// connection is lost and then that it is back; it said only "lost;
// reconnecting", and nothing once it was registered again.
func TestPhoneSaysReconnected(t *testing.T) {
	bin := buildIrmvForTest(t)
	o := nodetest.Options(t)
	n, err := node.New(o)
	if err != nil {
		t.Fatal(err)
	}
	_, screen := startPhoneOnTTY(t, bin, "--node", n.APIURL(), "--uid", "comes-back", "--answer", "auto")
	waitScreen := func(what, text string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !strings.Contains(screen.String(), text); {
			if time.Now().After(deadline) {
				t.Fatalf("no %s within 60 s:\n%s", what, screen.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitScreen("registration", "waiting for calls")
	o.API = n.APIAddr().String()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	waitScreen("word of the lost connection", "connection to the node lost")
	nodetest.Start(t, o) // the same data dir and API address
	waitScreen("word of the connection restored", "connection to the node restored")
	// Said once: the log's warning said it a second time, at the default
	// --log-level warn.
	if strings.Contains(screen.String(), "Node connection lost") {
		t.Errorf("the lost connection said twice:\n%s", screen.String())
	}
}
