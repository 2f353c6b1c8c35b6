//go:build !irmv_no_sip

package node_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/share"
	"github.com/irmv/irmv/sip"
	"github.com/irmv/irmv/sip/baresiptest"
)

// toneWAV writes a sine tone of hz for secs seconds at rate Hz with sox
// (baresip's Opus wants 2 channels).
func toneWAV(t *testing.T, rate, channels, hz, secs int) string {
	t.Helper()
	testenv.Program(t, "sox", "sox")
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
	if ev.Peer == nil || ev.Peer.Identifiers.UID != "alice" || !ev.Bridged {
		t.Fatalf("incoming from %+v (bridged %t), want uid alice, bridged", ev.Peer, ev.Bridged)
	}
	bobEv.wait(t, "connected", ofType(phone.EventConnected))
	// Each side hears the other for a while.
	nodetest.WaitFor(t, "audio recorded at both ends", func() bool {
		return dirBytes(bobRec) > 20_000 && decodedBytes(aliceRec) > 200_000
	})
	// Hold and resume (re-INVITEs) keep the call: bob still hears alice.
	p.Command("/hold")
	nodetest.WaitFor(t, "hold answered", func() bool { return metric(t, a, "irmv_sip_reinvites_total") >= 1 })
	p.Command("/resume")
	nodetest.WaitFor(t, "resume answered", func() bool { return metric(t, a, "irmv_sip_reinvites_total") >= 2 })
	heard := dirBytes(bobRec)
	nodetest.WaitFor(t, "audio after resume", func() bool { return dirBytes(bobRec) > heard+10_000 })
	bobEv.mu.Lock()
	for _, ev := range bobEv.list {
		if ev.Type == phone.EventEnded {
			t.Errorf("call ended by hold/resume: %+v", ev)
		}
	}
	bobEv.mu.Unlock()
	p.Command("/hangup")
	bobEv.wait(t, "ended", ofType(phone.EventEnded))
	p.WaitOutput("terminated", 30*time.Second)
	matches, _ := filepath.Glob(filepath.Join(aliceRec, "*dec.wav"))
	if len(matches) == 0 || wavSeconds(t, matches[0]) < 1 {
		t.Fatalf("baresip recorded %v, want ≥ 1 s of what bob sent", matches)
	}
}

// decodedBytes is the size of what baresip recorded hearing (sndfile's
// *-dec.wav; 192 kB a second at 48 kHz stereo).
func decodedBytes(dir string) int64 {
	matches, _ := filepath.Glob(filepath.Join(dir, "*dec.wav"))
	var n int64
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// metric reads one unlabelled metric from a node's /metrics.
func metric(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	res, err := http.Get(n.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
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

// An irmv phone at node B calls a SIP phone registered at node A by its
// uid; the SIP phone answers; the irmv side hangs up.
func TestIrmvPhoneCallsBaresip(t *testing.T) {
	baresiptest.Need(t)
	tone := toneWAV(t, 48000, 2, 440, 30)
	a, b := sipNodes(t)
	if _, err := a.SIP().AddUser(sip.NewUser{User: "alice", Password: "s3cret", Phone: "030 7654321"}); err != nil {
		t.Fatal(err)
	}
	port := a.SIP().Addr().(*net.UDPAddr).Port
	aliceRec := t.TempDir()
	p := baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1", Codecs: []string{"opus"}, Source: tone, Record: aliceRec,
		Account: fmt.Sprintf(`"Alice Example" <sip:alice@127.0.0.1:%d>;auth_pass=s3cret;regint=600;answermode=auto`, port)})
	nodetest.WaitFor(t, "baresip registered", func() bool { return len(a.SIP().Bindings()) == 1 })

	carolRec := t.TempDir()
	carol, carolEv := startGoPhone(t, b, share.Registration{Name: "Carol Caller", UID: "carol"},
		phone.Options{RecordDir: carolRec, Play: longSpeech(t, time.Minute)})
	res := find(t, b, "+49 30 7654321", "alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := carol.Call(ctx, res, phone.CallOptions{})
	if err != nil {
		t.Fatalf("call alice: %v\nbaresip:\n%s", err, p.Output())
	}
	if ev := carolEv.wait(t, "connected", ofType(phone.EventConnected)); !ev.Bridged {
		t.Errorf("carol's call to a SIP phone is not marked bridged: %+v", ev)
	}
	if !strings.Contains(p.Output(), "from sip:carol@") {
		t.Errorf("baresip did not show the caller as carol; output:\n%s", p.Output())
	}
	nodetest.WaitFor(t, "audio recorded at both ends", func() bool {
		return dirBytes(carolRec) > 20_000 && decodedBytes(aliceRec) > 200_000
	})
	c.Hangup()
	p.WaitOutput("terminated", 30*time.Second)
	matches, _ := filepath.Glob(filepath.Join(aliceRec, "*dec.wav"))
	if len(matches) == 0 || wavSeconds(t, matches[0]) < 1 {
		t.Fatalf("baresip recorded %v, want ≥ 1 s of what carol sent", matches)
	}
}

// Two SIP phones at two access points call each other across the irmv
// network: bridged at both nodes.
func TestBaresipCallsBaresip(t *testing.T) {
	baresiptest.Need(t)
	ns := nodetest.Chain(t, 2, func(i int, o *node.Options) { o.SIP = "127.0.0.1:0" })
	ap1, ap2 := ns[0], ns[1]
	for _, n := range ns {
		for _, u := range []string{"alice", "dave"} {
			if _, err := n.SIP().AddUser(sip.NewUser{User: u, Password: "pw-" + u}); err != nil {
				t.Fatal(err)
			}
		}
	}
	start := func(n *node.Node, user, tone string) (*baresiptest.Phone, string) {
		rec := t.TempDir()
		port := n.SIP().Addr().(*net.UDPAddr).Port
		p := baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1", Codecs: []string{"opus"}, Source: tone, Record: rec,
			Account: fmt.Sprintf(`<sip:%s@127.0.0.1:%d>;auth_pass=pw-%s;regint=600;answermode=auto`, user, port, user)})
		nodetest.WaitFor(t, user+" registered", func() bool { return len(n.SIP().Bindings()) == 1 })
		return p, rec
	}
	alice, aliceRec := start(ap1, "alice", toneWAV(t, 48000, 2, 440, 30))
	dave, daveRec := start(ap2, "dave", toneWAV(t, 48000, 2, 880, 30))
	find(t, ap1, "dave", "dave")

	alice.Command(fmt.Sprintf("/dial sip:dave@127.0.0.1:%d", ap1.SIP().Addr().(*net.UDPAddr).Port))
	dave.WaitOutput("Call established", 30*time.Second)
	nodetest.WaitFor(t, "audio heard at both ends", func() bool {
		return decodedBytes(aliceRec) > 200_000 && decodedBytes(daveRec) > 200_000
	})
	dave.Command("/hangup")
	alice.WaitOutput("terminated", 30*time.Second)
	dave.WaitOutput("terminated", 30*time.Second)
	for _, c := range []struct {
		dir  string
		want int
	}{{aliceRec, 880}, {daveRec, 440}} {
		matches, _ := filepath.Glob(filepath.Join(c.dir, "*dec.wav"))
		if len(matches) == 0 {
			t.Fatalf("nothing recorded in %s", c.dir)
		}
		if hz := dominantHz(t, matches[0]); hz < c.want-20 || hz > c.want+20 {
			t.Errorf("%s: dominant frequency %d Hz, want the other phone's %d Hz", matches[0], hz, c.want)
		}
	}
}

// dominantHz is a recording's strongest frequency as sox's stat reads it
// ("Rough frequency").
func dominantHz(t *testing.T, path string) int {
	t.Helper()
	out, _ := exec.Command("sox", path, "-n", "remix", "1", "trim", "0.5", "stat").CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Rough   frequency:"); ok {
			hz, _ := strconv.Atoi(strings.TrimSpace(v))
			return hz
		}
	}
	t.Logf("sox stat: %s", out)
	return 0
}

// SIPp calls an irmv phone that rings and cancels: the irmv call ends.
func TestSIPpCancelWhileRinging(t *testing.T) {
	testenv.Program(t, "sipp", "sip-tester")
	n := nodetest.Start(t, func() node.Options {
		o := nodetest.Options(t)
		o.SIP, o.SIPOpen = "127.0.0.1:0", []string{"127.0.0.0/8"}
		return o
	}())
	// bob rings until the caller gives up.
	_, bobEv := startGoPhone(t, n, share.Registration{Name: "Bob Ringing", UID: "bob-ringing"},
		phone.Options{Answer: phone.AnswerAsk, Ask: func(ctx context.Context, _ phone.Incoming) bool {
			<-ctx.Done()
			return false
		}})
	find(t, n, "bob-ringing", "bob-ringing")
	sf, _ := filepath.Abs("../sip/testdata/sipp/cancel.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", "127.0.0.1:"+strconv.Itoa(n.SIP().Addr().(*net.UDPAddr).Port),
		"-sf", sf, "-m", "1", "-i", "127.0.0.1", "-s", "bob-ringing", "-nostdin", "-timeout", "30s", "-timeout_error")
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sipp cancel.xml: %v\n%s", err, out)
	}
	bobEv.wait(t, "incoming", ofType(phone.EventIncoming))
	ev := bobEv.wait(t, "ended", ofType(phone.EventEnded))
	t.Logf("bob's call ended: %s", ev.Reason)
}
