//go:build !irmv_no_sip

package node_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/share"
	"github.com/irmv/irmv/sip"
	"github.com/irmv/irmv/sip/baresiptest"
)

// toneWAV writes a sine tone of hz for secs seconds at rate Hz with sox
// (baresip's Opus wants 2 channels).
func toneWAV(t *testing.T, rate, channels, hz, secs int) string {
	t.Helper()
	if _, err := exec.LookPath("sox"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sox is not installed (apt-get install sox)")
		}
		t.Skip("sox is not installed (apt-get install sox)")
	}
	path := filepath.Join(t.TempDir(), "tone.wav")
	out, err := exec.Command("sox", "-n", "-r", strconv.Itoa(rate), "-c", strconv.Itoa(channels), "-b", "16", path,
		"synth", strconv.Itoa(secs), "sine", strconv.Itoa(hz)).CombinedOutput()
	if err != nil {
		t.Fatalf("sox: %v: %s", err, out)
	}
	return path
}

// wavSeconds is a WAV file's length as sox reads it.
func wavSeconds(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("sox", "--i", "-D", path).Output()
	if err != nil {
		return 0
	}
	d, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	return d
}

// A SIP phone at node A calls an irmv phone at node B by name; the node
// bridges Opus both ways; the phone hangs up.
func TestBaresipCallsIrmvPhone(t *testing.T) {
	baresiptest.Need(t)
	tone := toneWAV(t, 48000, 2, 440, 30)
	a, b := sipNodes(t)
	if _, err := a.SIP().AddUser(sip.NewUser{User: "alice", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	bobRec := t.TempDir()
	_, bobEv := startGoPhone(t, b, share.Registration{Name: "Bob Callee", UID: "bob-callee"},
		phone.Options{Answer: phone.AnswerAuto, RecordDir: bobRec, Play: longSpeech(t, time.Minute)})

	port := a.SIP().Addr().(*net.UDPAddr).Port
	aliceRec := t.TempDir()
	p := baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1", Codecs: []string{"opus"}, Source: tone, Record: aliceRec,
		Account: fmt.Sprintf(`"Alice Example" <sip:alice@127.0.0.1:%d>;auth_pass=s3cret;regint=600;answermode=auto`, port)})
	nodetest.WaitFor(t, "baresip registered", func() bool { return len(a.SIP().Bindings()) == 1 })
	find(t, a, "bob callee", "bob-callee")

	p.Command(fmt.Sprintf("/dial sip:bob%%20callee@127.0.0.1:%d", port))
	ev := bobEv.wait(t, "incoming call", ofType(phone.EventIncoming))
	if ev.Peer == nil || ev.Peer.Identifiers.UID != "alice" {
		t.Fatalf("incoming from %+v, want uid alice", ev.Peer)
	}
	bobEv.wait(t, "connected", ofType(phone.EventConnected))
	// Each side hears the other for a while.
	nodetest.WaitFor(t, "audio recorded at both ends", func() bool {
		return dirBytes(bobRec) > 20_000 && dirBytes(aliceRec) > 100_000
	})
	p.Command("/hangup")
	bobEv.wait(t, "ended", ofType(phone.EventEnded))
	matches, _ := filepath.Glob(filepath.Join(aliceRec, "*dec.wav"))
	if len(matches) == 0 || wavSeconds(t, matches[0]) < 1 {
		t.Fatalf("baresip recorded %v, want ≥ 1 s of what bob sent", matches)
	}
}

func dirBytes(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}
