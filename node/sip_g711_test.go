//go:build !irmv_no_sip

package node_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/share"
	"github.com/irmv/irmv/sip"
	"github.com/irmv/irmv/sip/baresiptest"
)

// checkTone checks that the recording at path holds the tone of hz.
func checkTone(t *testing.T, path string, hz int) {
	t.Helper()
	if got := dominantHz(t, path); got < hz-20 || got > hz+20 {
		t.Errorf("%s: dominant frequency %d Hz, want %d Hz", path, got, hz)
	}
}

// one finds the single file matching pattern.
func one(t *testing.T, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) != 1 {
		t.Fatalf("%s: found %v, want one file", pattern, m)
	}
	return m[0]
}

// A SIP phone with G.711 only (PCMU) calls an irmv phone: the WebRTC leg
// negotiates PCMU, the RTP passes through, each side records the other's
// tone; the phone's key presses (RFC 4733) reach the irmv phone as dtmf
// events, and the irmv phone's reach the SIP phone.
func TestBaresipCallsIrmvPhonePCMU(t *testing.T) {
	baresiptest.Need(t)
	a, b := sipNodes(t)
	if _, err := a.SIP().AddUser(sip.NewUser{User: "alice", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	bobRec := t.TempDir()
	bob, bobEv := startGoPhone(t, b, share.Registration{Name: "Bob Callee", UID: "bob-callee"},
		phone.Options{Answer: phone.AnswerAuto, RecordDir: bobRec, Play: toneWAV(t, 8000, 1, 880, 30)})

	port := a.SIP().Addr().(*net.UDPAddr).Port
	aliceRec := t.TempDir()
	p := baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1", Codecs: []string{"g711"}, Source: toneWAV(t, 8000, 1, 440, 30), Record: aliceRec,
		Account: fmt.Sprintf(`"Alice Example" <sip:alice@127.0.0.1:%d>;auth_pass=s3cret;regint=600;answermode=auto;audio_codecs=PCMU`, port)})
	nodetest.WaitFor(t, "baresip registered", func() bool { return len(a.SIP().Bindings()) == 1 })
	find(t, a, "bob callee", "bob-callee")

	p.Command(fmt.Sprintf("/dial sip:bob%%20callee@127.0.0.1:%d", port))
	if ev := bobEv.wait(t, "connected", ofType(phone.EventConnected)); ev.Codec != "PCMU" || !ev.Bridged {
		t.Fatalf("connected with codec %q (bridged %t), want PCMU, bridged", ev.Codec, ev.Bridged)
	}
	nodetest.WaitFor(t, "audio recorded at both ends", func() bool {
		return dirBytes(bobRec) > 40_000 && decodedBytes(aliceRec) > 40_000 // 16 kB a second at 8 kHz
	})

	// Key presses, both ways.
	for _, k := range []string{"1", "#"} {
		p.Command(k + "\x04") // the key and its release (baresip's KEYCODE_REL)
		bobEv.wait(t, "key "+k, func(e phone.Event) bool { return e.Type == phone.EventDTMF && e.Digit == k })
	}
	c := bob.CallByID(bobEv.wait(t, "connected", ofType(phone.EventConnected)).Call)
	if c == nil {
		t.Fatal("bob's call is gone")
	}
	if err := c.SendDTMF("7", 0); err != nil {
		t.Fatal(err)
	}
	p.WaitOutput("received event: '7' (end=0)", 30*time.Second)
	p.WaitOutput("received event: '7' (end=1)", 30*time.Second)

	p.Command("/hangup")
	ended := bobEv.wait(t, "ended", ofType(phone.EventEnded))
	p.WaitOutput("terminated", 30*time.Second)
	if !strings.HasSuffix(ended.Record, ".wav") {
		t.Fatalf("bob's recording %q, want a .wav", ended.Record)
	}
	checkTone(t, ended.Record, 440)
	checkTone(t, one(t, filepath.Join(aliceRec, "*dec.wav")), 880)
}

// An irmv phone calls a SIP phone with G.711 only: the bridge offers the
// phone Opus, PCMU and PCMA and answers the irmv side with PCMU.
func TestIrmvPhoneCallsBaresipPCMU(t *testing.T) {
	baresiptest.Need(t)
	a, b := sipNodes(t)
	if _, err := a.SIP().AddUser(sip.NewUser{User: "alice", Password: "s3cret", Phone: "030 7654321"}); err != nil {
		t.Fatal(err)
	}
	port := a.SIP().Addr().(*net.UDPAddr).Port
	aliceRec := t.TempDir()
	p := baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1", Codecs: []string{"g711"}, Source: toneWAV(t, 8000, 1, 440, 30), Record: aliceRec,
		Account: fmt.Sprintf(`"Alice Example" <sip:alice@127.0.0.1:%d>;auth_pass=s3cret;regint=600;answermode=auto;audio_codecs=PCMU`, port)})
	nodetest.WaitFor(t, "baresip registered", func() bool { return len(a.SIP().Bindings()) == 1 })

	carolRec := t.TempDir()
	carol, carolEv := startGoPhone(t, b, share.Registration{Name: "Carol Caller", UID: "carol"},
		phone.Options{RecordDir: carolRec, Play: toneWAV(t, 8000, 1, 880, 30)})
	res := find(t, b, "+49 30 7654321", "alice")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := carol.Call(ctx, res, phone.CallOptions{})
	if err != nil {
		t.Fatalf("call alice: %v\nbaresip:\n%s", err, p.Output())
	}
	if ev := carolEv.wait(t, "connected", ofType(phone.EventConnected)); ev.Codec != "PCMU" || !ev.Bridged {
		t.Errorf("connected with codec %q (bridged %t), want PCMU, bridged", ev.Codec, ev.Bridged)
	}
	nodetest.WaitFor(t, "audio recorded at both ends", func() bool {
		return dirBytes(carolRec) > 40_000 && decodedBytes(aliceRec) > 40_000
	})
	c.Hangup()
	p.WaitOutput("terminated", 30*time.Second)
	ended := carolEv.wait(t, "ended", ofType(phone.EventEnded))
	checkTone(t, ended.Record, 440)
	checkTone(t, one(t, filepath.Join(aliceRec, "*dec.wav")), 880)
}

// Two SIP phones with PCMU only at two access points: the two bridges'
// WebRTC leg carries PCMU, each phone hears the other's tone, and a key
// pressed on one is received by the other.
func TestBaresipCallsBaresipPCMU(t *testing.T) {
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
	start := func(n *node.Node, user string, hz int) (*baresiptest.Phone, string) {
		rec := t.TempDir()
		port := n.SIP().Addr().(*net.UDPAddr).Port
		p := baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1", Codecs: []string{"g711"}, Source: toneWAV(t, 8000, 1, hz, 30), Record: rec,
			Account: fmt.Sprintf(`<sip:%s@127.0.0.1:%d>;auth_pass=pw-%s;regint=600;answermode=auto;audio_codecs=PCMU`, user, port, user)})
		nodetest.WaitFor(t, user+" registered", func() bool { return len(n.SIP().Bindings()) == 1 })
		return p, rec
	}
	alice, aliceRec := start(ap1, "alice", 440)
	dave, daveRec := start(ap2, "dave", 880)
	find(t, ap1, "dave", "dave")

	alice.Command(fmt.Sprintf("/dial sip:dave@127.0.0.1:%d", ap1.SIP().Addr().(*net.UDPAddr).Port))
	dave.WaitOutput("Call established", 30*time.Second)
	alice.WaitOutput("Call established", 30*time.Second)
	nodetest.WaitFor(t, "audio heard at both ends", func() bool {
		return decodedBytes(aliceRec) > 40_000 && decodedBytes(daveRec) > 40_000
	})
	alice.Command("5\x04") // the key and its release (baresip's KEYCODE_REL)
	dave.WaitOutput("received event: '5' (end=0)", 30*time.Second)
	dave.WaitOutput("received event: '5' (end=1)", 30*time.Second)
	dave.Command("9\x04")
	alice.WaitOutput("received event: '9' (end=0)", 30*time.Second)
	alice.WaitOutput("received event: '9' (end=1)", 30*time.Second)
	dave.Command("/hangup")
	alice.WaitOutput("terminated", 30*time.Second)
	dave.WaitOutput("terminated", 30*time.Second)
	for _, p := range []*baresiptest.Phone{alice, dave} {
		if !strings.Contains(p.Output(), "PCMU") {
			t.Errorf("baresip did not use PCMU:\n%s", p.Output())
		}
	}
	checkTone(t, one(t, filepath.Join(aliceRec, "*dec.wav")), 880)
	checkTone(t, one(t, filepath.Join(daveRec, "*dec.wav")), 440)
}
