//go:build !irmv_no_sip && !irmv_node_only

package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/sip/baresiptest"
)

// TestCallDTMF: irmv call --dtmf calls a SIP phone (baresip, through the
// node's bridge) and, once it answered, presses the keys: the phone
// receives each once, with its end, in order. Without --play the irmv
// side sends no audio and the bridge keeps the phone's stream flowing
// with silence (baresip's jitter buffer holds the last key's end packets
// until more come); with --play the keys go into the tone's stream.
func TestCallDTMF(t *testing.T) {
	baresiptest.Need(t)
	testenv.Program(t, "sox", "sox")
	tone := filepath.Join(t.TempDir(), "tone.wav")
	if b, err := exec.Command("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", tone, "synth", "30", "sine", "440").CombinedOutput(); err != nil {
		t.Fatalf("sox: %v: %s", err, b)
	}
	for _, tc := range []struct {
		name  string
		codec string // baresip's
		play  []string
	}{
		{"silent PCMU", "PCMU", nil},
		{"silent opus", "opus", nil},
		{"tone PCMU", "PCMU", []string{"--play", tone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := nodetest.Start(t, func() node.Options {
				o := nodetest.Options(t)
				o.SIP = "127.0.0.1:0"
				return o
			}())
			if _, err := n.SIP().AddUser(client.SIPUser{User: "menu", Password: "s3cret"}); err != nil {
				t.Fatal(err)
			}
			mods := []string{"g711"}
			if tc.codec == "opus" {
				mods = []string{"opus"}
			}
			p := baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1", Codecs: mods,
				Account: fmt.Sprintf(`<sip:menu@127.0.0.1:%d>;auth_pass=s3cret;regint=600;answermode=auto;audio_codecs=%s`,
					n.SIP().Addr().(*net.UDPAddr).Port, tc.codec)})
			nodetest.WaitFor(t, "baresip registered", func() bool { return len(n.SIP().Bindings()) == 1 })

			args := append([]string{"--node", n.APIURL(), "--json", "--dtmf", "12#"}, tc.play...)
			out, hangup := startCall(t, append(args, "uid:menu")...)
			for _, k := range []string{"1", "2", "#"} {
				p.WaitOutput(fmt.Sprintf("received event: '%s' (end=1)", k), 60*time.Second)
			}
			// In the order pressed, each once.
			got := p.Output()
			if i1, i2, i3 := strings.Index(got, "'1' (end=1)"), strings.Index(got, "'2' (end=1)"), strings.Index(got, "'#' (end=1)"); !(i1 < i2 && i2 < i3) {
				t.Errorf("keys out of order:\n%s", got)
			}
			for _, k := range []string{"1", "2", "#"} {
				if c := strings.Count(got, "'"+k+"' (end=1)"); c != 1 {
					t.Errorf("key %s received %d times, want once:\n%s", k, c, got)
				}
			}
			hangup()
			if !strings.Contains(out.String(), `"connected"`) {
				t.Errorf("no connected event:\n%s", out.String())
			}
			p.WaitHungUp(30 * time.Second)
		})
	}
}

// startCall runs irmv call with args in the background; hangup ends it
// (as Ctrl-C does) and fails the test unless it then exits 0.
func startCall(t *testing.T, args ...string) (out *testenv.SyncBuffer, hangup func()) {
	t.Helper()
	var stdout, stderr testenv.SyncBuffer
	app := newApp()
	app.Writer, app.ErrWriter = &stdout, &stderr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.RunContext(ctx, append([]string{"irmv", "call"}, args...)) }()
	stopped := false
	hangup = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("irmv call: %v\nstderr: %s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("irmv call did not return after hanging up")
		}
	}
	t.Cleanup(hangup)
	return &stdout, hangup
}
