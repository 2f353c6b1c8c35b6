//go:build !irmv_node_only

package main

import (
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/irmv/irmv/node/nodetest"
)

// TestPhoneKeysOnTTY: a line of keys typed on irmv phone's terminal while
// a call is up is pressed in the call: the caller (irmv call --json) gets
// a dtmf event for each key, in order. A line that is no keys says so and
// does not hold up the keys typed after it.
func TestPhoneKeysOnTTY(t *testing.T) {
	bin := buildIrmvForTest(t)
	n := nodetest.Start(t, nodetest.Options(t))
	cmd := exec.Command(bin, "phone", "--node", n.APIURL(), "--uid", "keypad", "--answer", "auto",
		"--key", t.TempDir()+"/key.pem")
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&screen, tty) // ends with EIO once irmv exits
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
	waitText := func(what string, b *syncBuffer, s string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !strings.Contains(b.String(), s); {
			if time.Now().After(deadline) {
				t.Fatalf("no %s (%q) within 60 s:\n%s", what, s, b.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitText("registration", &screen, "waiting for calls")

	out, hangup := startCall(t, "--node", n.APIURL(), "--json", "uid:keypad")
	waitText("connected event", out, `"type":"connected"`)
	if _, err := io.WriteString(tty, "hello\n"); err != nil {
		t.Fatal(err)
	}
	waitText("warning", &screen, "not keys")
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
