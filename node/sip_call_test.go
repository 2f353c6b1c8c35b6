//go:build !irmv_no_sip

package node_test

import (
	"context"
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
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
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
	n := sipNode(t, "127.0.0.0/8")
	// bob rings until the caller gives up.
	_, bobEv := startGoPhone(t, n, client.Registration{Name: "Bob Ringing", UID: "bob-ringing"},
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
	bobEv.wait(t, "incoming", ofType(client.EventIncoming))
	ev := bobEv.wait(t, "ended", ofType(client.EventEnded))
	t.Logf("bob's call ended: %s", ev.Reason)
}
