//go:build !irmv_no_sip

package node_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/sip/baresiptest"
)

// sipCase is one row of the real-client SIP call tests: what the baresip
// phone speaks and what happens during the call. Every row checks that
// the call is bridged with the codec, that each side records the other's
// tone (sox's dominant frequency), and that the call ends on both sides.
type sipCase struct {
	name  string
	codec string // the only codec the phone offers or accepts: opus, PCMU or PCMA
	srtp  string // baresip's mediaenc: "" (plain RTP), srtp or srtp-mand
	hold  bool   // the phone holds and resumes (re-INVITEs) mid-call
	dtmf  bool   // key presses (RFC 4733) go both ways
	// rtt: the irmv side's quality shows the phone leg's round trip
	// (sip_rtt_ms) from baresip's receiver reports.
	rtt bool
	// tls: the phone registers and calls over TLS (node A has --sip-tls
	// and SDES for TLS only); ca is A's certificate, set by nodes.
	tls bool
	ca  string
}

// nodes starts node A with the SIP side (and TLS for a tls row) and node
// B joined to it.
func (c *sipCase) nodes(t *testing.T) (a, b *node.Node) {
	t.Helper()
	if !c.tls {
		return sipNodes(t)
	}
	ns := nodetest.Chain(t, 2, func(i int, o *node.Options) {
		if i == 0 {
			o.SIP, o.SIPTLS, o.SIPSDESTLSOnly = "127.0.0.1:0", "127.0.0.1:0", true
			c.ca = filepath.Join(o.DataDir, "https.crt")
		}
	})
	return ns[0], ns[1]
}

// uri is sip:user@ the node, over TLS for a tls row.
func (c sipCase) uri(n *node.Node, user string) string {
	if c.tls {
		return fmt.Sprintf("sip:%s@127.0.0.1:%d;transport=tls", user, n.SIPTLSAddr().(*net.TCPAddr).Port)
	}
	return fmt.Sprintf("sip:%s@127.0.0.1:%d", user, n.SIP().Addr().(*net.UDPAddr).Port)
}

func (c sipCase) g711() bool { return c.codec != "opus" }

// bytesPerSecond is the size of a second of baresip's decoded recording.
func (c sipCase) bytesPerSecond() int64 {
	if c.g711() {
		return 16_000 // 8 kHz mono
	}
	return 192_000 // 48 kHz stereo
}

// baresip starts a phone registered at n as user, sending a tone of hz
// and recording what it hears into the returned directory.
func (c sipCase) baresip(t *testing.T, n *node.Node, user, pass string, hz int) (*baresiptest.Phone, string) {
	t.Helper()
	rec := t.TempDir()
	cfg := baresiptest.Config{IP: "127.0.0.1", Codecs: []string{"opus"}, Source: toneWAV(t, 48000, 2, hz, 30), Record: rec, MediaEnc: c.srtp != "",
		Account: fmt.Sprintf(`"%s Example" <%s>;auth_pass=%s;regint=600;answermode=auto`, user, c.uri(n, user), pass)}
	if c.tls {
		cfg.CAFile = c.ca
	}
	if c.g711() {
		cfg.Codecs, cfg.Source = []string{"g711"}, toneWAV(t, 8000, 1, hz, 30)
		cfg.Account += ";audio_codecs=" + c.codec
	}
	if c.srtp != "" {
		cfg.Account += ";mediaenc=" + c.srtp
	}
	p := baresiptest.Start(t, cfg)
	nodetest.WaitFor(t, user+" registered", func() bool { return len(n.SIP().Bindings()) == 1 })
	if b := n.SIP().Bindings()[0]; c.tls != (b.Transport == "TLS") {
		t.Fatalf("%s registered over %s (tls row: %t)", user, b.Transport, c.tls)
	}
	return p, rec
}

// irmvPhone starts an irmv phone on n that plays a tone of hz in the
// codec's file format (Ogg/Opus, or WAV, which the phone sends as G.711)
// and records what it hears.
func (c sipCase) irmvPhone(t *testing.T, n *node.Node, reg client.Registration, answer bool, hz int) (*phone.Phone, *phoneEvents) {
	t.Helper()
	o := phone.Options{RecordDir: t.TempDir(), Play: toneOgg(t, hz, 30)}
	if c.g711() {
		o.Play = toneWAV(t, 8000, 1, hz, 30)
	}
	if answer {
		o.Answer = phone.AnswerAuto
	}
	return startGoPhone(t, n, reg, o)
}

// connected checks the irmv side's connected event.
func (c sipCase) connected(t *testing.T, ev client.Event) {
	t.Helper()
	if ev.Codec != c.codec || !ev.Bridged {
		t.Errorf("connected with codec %q (bridged %t), want %s, bridged", ev.Codec, ev.Bridged, c.codec)
	}
}

// talk waits until both sides heard the other for two seconds, then
// holds and resumes and presses keys as the row says. irmv is the irmv
// phone's call.
func (c sipCase) talk(t *testing.T, n *node.Node, p *baresiptest.Phone, phoneRec string, irmv *phone.Call, irmvEv *phoneEvents) {
	t.Helper()
	nodetest.WaitFor(t, "audio recorded at both ends", func() bool {
		return irmv.Peer().Stats().PacketsReceived > 100 && decodedBytes(phoneRec) > 2*c.bytesPerSecond()
	})
	// baresip's first RTCP report comes some seconds into the call (to
	// the port the bridge's a=rtcp names), SRTCP on an SRTP leg.
	rtcp := `irmv_sip_rtcp_packets_total{result="plain"}`
	if c.srtp != "" {
		rtcp = `irmv_sip_rtcp_packets_total{result="srtcp"}`
	}
	nodetest.WaitFor(t, "RTCP from the phone", func() bool { return metric(t, n, rtcp) >= 1 })
	nodetest.WaitFor(t, "a Sender Report to the phone", func() bool { return metric(t, n, `irmv_sip_rtcp_sent_total{kind="sr"}`) >= 1 })
	if c.rtt {
		// On loopback: the machine's delays only.
		q := irmvEv.wait(t, "quality with the SIP leg's round trip", func(e client.Event) bool {
			return e.Type == client.EventQuality && e.SIPRTTMS != nil
		})
		if sip := *q.SIPRTTMS; sip < 0 || sip > 1000 {
			t.Errorf("quality %+v: sip_rtt_ms %.1f, want 0 to 1,000 ms on loopback", q, sip)
		}
		t.Logf("sip_rtt_ms %.2f, rtt_ms %.2f", *q.SIPRTTMS, q.RTTMS)
	}
	if c.hold {
		p.Command("/hold")
		nodetest.WaitFor(t, "hold answered", func() bool { return metric(t, n, "irmv_sip_reinvites_total") >= 1 })
		p.Command("/resume")
		nodetest.WaitFor(t, "resume answered", func() bool { return metric(t, n, "irmv_sip_reinvites_total") >= 2 })
		heard := irmv.Peer().Stats().PacketsReceived
		nodetest.WaitFor(t, "audio after resume", func() bool { return irmv.Peer().Stats().PacketsReceived > heard+50 })
		irmvEv.mu.Lock()
		for _, ev := range irmvEv.list {
			if ev.Type == client.EventEnded {
				t.Errorf("call ended by hold/resume: %+v", ev)
			}
		}
		irmvEv.mu.Unlock()
	}
	if c.dtmf {
		for _, k := range []string{"1", "#"} {
			p.Command(k + "\x04") // the key and its release (baresip's KEYCODE_REL)
			irmvEv.wait(t, "key "+k, func(e client.Event) bool { return e.Type == client.EventDTMF && e.Digit == k })
		}
		if err := irmv.SendDTMF("7", 0); err != nil {
			t.Fatal(err)
		}
		p.WaitOutput("received event: '7' (end=0)", 30*time.Second)
		p.WaitOutput("received event: '7' (end=1)", 30*time.Second)
	}
}

// finished checks a call once both sides hung up: the phone still runs,
// SRTP when the row has it, and each side's recording holds the other's
// tone.
func (c sipCase) finished(t *testing.T, n *node.Node, p *baresiptest.Phone, phoneRec string, phoneHz int, irmvRecord string, irmvHz int) {
	t.Helper()
	if err := p.Running(); err != nil {
		t.Error(err)
	}
	if c.srtp != "" {
		srtpCall(t, n, p)
	} else {
		if got := metric(t, n, "irmv_sip_srtp_calls_total"); got != 0 {
			t.Errorf("irmv_sip_srtp_calls_total %v on a plain RTP call", got)
		}
		if got := metric(t, n, `irmv_sip_rtcp_packets_total{result="plain"}`); got < 1 {
			t.Errorf("RTCP packets from the phone: %v, want ≥ 1", got)
		}
	}
	if c.g711() && !strings.Contains(p.Output(), c.codec) {
		t.Errorf("baresip did not use %s:\n%s", c.codec, p.Output())
	}
	// baresip keeps RTCP statistics from the bridge's Sender Reports.
	if sum := p.RTCPSummary(30 * time.Second); sum["PR"] == "" || sum["PR"] == "0" {
		t.Errorf("baresip's RTCP summary %v: no packets received", sum)
	}
	checkTone(t, one(t, filepath.Join(phoneRec, "*dec.wav")), irmvHz)
	checkTone(t, decodedWAV(t, irmvRecord), phoneHz)
}

// decodedWAV is an irmv phone's recording as WAV: Ogg/Opus decoded with
// opusdec, G.711 recordings are WAV already.
func decodedWAV(t *testing.T, path string) string {
	t.Helper()
	if !strings.HasSuffix(path, ".ogg") {
		if !strings.HasSuffix(path, ".wav") {
			t.Fatalf("the irmv phone's recording %q, want .ogg or .wav", path)
		}
		return path
	}
	needTool(t, "opusdec", "opus-tools")
	wav := filepath.Join(t.TempDir(), "rec.wav")
	if b, err := exec.Command("opusdec", "--quiet", path, wav).CombinedOutput(); err != nil {
		t.Fatalf("opusdec: %v: %s", err, b)
	}
	return wav
}

// A SIP phone at node A calls an irmv phone at node B by name; the node
// bridges what the phone speaks; the phone hangs up.
func TestBaresipCallsIrmvPhone(t *testing.T) {
	for _, c := range []sipCase{
		{name: "opus", codec: "opus", hold: true, rtt: true},
		{name: "PCMU", codec: "PCMU", dtmf: true},
		{name: "PCMA", codec: "PCMA", dtmf: true},
		{name: "SRTP", codec: "opus", srtp: "srtp-mand", hold: true},
		{name: "TLS-SRTP", codec: "opus", srtp: "srtp-mand", tls: true, hold: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			baresiptest.Need(t)
			a, b := c.nodes(t)
			if _, err := a.SIP().AddUser(client.SIPUser{User: "alice", Password: "s3cret"}); err != nil {
				t.Fatal(err)
			}
			bob, bobEv := c.irmvPhone(t, b, client.Registration{Name: "Bob Callee", UID: "bob-callee"}, true, 880)
			p, aliceRec := c.baresip(t, a, "alice", "s3cret", 440)
			find(t, a, "bob callee", "bob-callee")

			p.Command("/dial " + c.uri(a, "bob%20callee"))
			ev := bobEv.wait(t, "incoming call", ofType(client.EventIncoming))
			if ev.Peer == nil || ev.Peer.Identifiers.UID != "alice" || !ev.Bridged {
				t.Fatalf("incoming from %+v (bridged %t), want uid alice, bridged", ev.Peer, ev.Bridged)
			}
			ev = bobEv.wait(t, "connected", ofType(client.EventConnected))
			c.connected(t, ev)
			call := bob.CallByID(ev.Call)
			if call == nil {
				t.Fatal("bob's call is gone")
			}
			c.talk(t, a, p, aliceRec, call, bobEv)
			if c.tls {
				// The irmv side hangs up: the node's BYE goes back over
				// the phone's TLS connection (its Contact names its own
				// listener, which has no certificate).
				call.Hangup()
				p.WaitHungUp(30 * time.Second)
			} else {
				p.Command("/hangup")
			}
			ended := bobEv.wait(t, "ended", ofType(client.EventEnded))
			if !c.tls {
				p.WaitOutput("terminated", 30*time.Second)
			}
			c.finished(t, a, p, aliceRec, 440, ended.Record, 880)
		})
	}
}

// An irmv phone at node B calls a SIP phone registered at node A by its
// phone number; the bridge offers the phone Opus, PCMU and PCMA (and a
// key, RTP/SAVP when the phone refuses RTP/AVP) and answers the irmv
// side with what the phone took; the irmv side hangs up.
func TestIrmvPhoneCallsBaresip(t *testing.T) {
	for _, c := range []sipCase{
		{name: "opus", codec: "opus", rtt: true},
		{name: "PCMU", codec: "PCMU"},
		{name: "PCMA", codec: "PCMA", hold: true},
		{name: "SRTP", codec: "opus", srtp: "srtp"},
		{name: "SRTP-mandatory", codec: "opus", srtp: "srtp-mand"},
		{name: "TLS-SRTP", codec: "opus", srtp: "srtp", tls: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			baresiptest.Need(t)
			a, b := c.nodes(t)
			if _, err := a.SIP().AddUser(client.SIPUser{User: "alice", Password: "s3cret", Phone: "030 7654321"}); err != nil {
				t.Fatal(err)
			}
			p, aliceRec := c.baresip(t, a, "alice", "s3cret", 440)
			carol, carolEv := c.irmvPhone(t, b, client.Registration{Name: "Carol Caller", UID: "carol"}, false, 880)
			res := find(t, b, "+49 30 7654321", "alice")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			call, err := carol.Call(ctx, res, phone.CallOptions{})
			if err != nil {
				t.Fatalf("call alice: %v\nbaresip:\n%s", err, p.Output())
			}
			c.connected(t, carolEv.wait(t, "connected", ofType(client.EventConnected)))
			if !strings.Contains(p.Output(), "from sip:carol@") {
				t.Errorf("baresip did not show the caller as carol; output:\n%s", p.Output())
			}
			c.talk(t, a, p, aliceRec, call, carolEv)
			call.Hangup()
			p.WaitHungUp(30 * time.Second)
			ended := carolEv.wait(t, "ended", ofType(client.EventEnded))
			c.finished(t, a, p, aliceRec, 440, ended.Record, 880)
		})
	}
}

// Two SIP phones at two access points call each other across the irmv
// network, bridged at both nodes: each hears the other's tone, a key
// pressed on one is received by the other.
func TestBaresipCallsBaresip(t *testing.T) {
	for _, c := range []sipCase{
		{name: "opus", codec: "opus"},
		{name: "PCMU", codec: "PCMU", dtmf: true},
		{name: "PCMA", codec: "PCMA", dtmf: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			baresiptest.Need(t)
			ns := nodetest.Chain(t, 2, func(i int, o *node.Options) { o.SIP = "127.0.0.1:0" })
			ap1, ap2 := ns[0], ns[1]
			for _, n := range ns {
				for _, u := range []string{"alice", "dave"} {
					if _, err := n.SIP().AddUser(client.SIPUser{User: u, Password: "pw-" + u}); err != nil {
						t.Fatal(err)
					}
				}
			}
			alice, aliceRec := c.baresip(t, ap1, "alice", "pw-alice", 440)
			dave, daveRec := c.baresip(t, ap2, "dave", "pw-dave", 880)
			find(t, ap1, "dave", "dave")

			alice.Command(fmt.Sprintf("/dial sip:dave@127.0.0.1:%d", ap1.SIP().Addr().(*net.UDPAddr).Port))
			dave.WaitOutput("Call established", 30*time.Second)
			alice.WaitOutput("Call established", 30*time.Second)
			nodetest.WaitFor(t, "audio heard at both ends", func() bool {
				return decodedBytes(aliceRec) > 2*c.bytesPerSecond() && decodedBytes(daveRec) > 2*c.bytesPerSecond()
			})
			if c.dtmf {
				alice.Command("5\x04") // the key and its release (baresip's KEYCODE_REL)
				dave.WaitOutput("received event: '5' (end=0)", 30*time.Second)
				dave.WaitOutput("received event: '5' (end=1)", 30*time.Second)
				dave.Command("9\x04")
				alice.WaitOutput("received event: '9' (end=0)", 30*time.Second)
				alice.WaitOutput("received event: '9' (end=1)", 30*time.Second)
			}
			for _, n := range ns {
				nodetest.WaitFor(t, "a Sender Report to each phone", func() bool { return metric(t, n, `irmv_sip_rtcp_sent_total{kind="sr"}`) >= 1 })
			}
			dave.Command("/hangup")
			alice.WaitHungUp(30 * time.Second)
			dave.WaitOutput("terminated", 30*time.Second)
			for _, p := range []*baresiptest.Phone{alice, dave} {
				if err := p.Running(); err != nil {
					t.Error(err)
				}
				if sum := p.RTCPSummary(30 * time.Second); sum["PR"] == "" || sum["PR"] == "0" {
					t.Errorf("baresip's RTCP summary %v: no packets received", sum)
				}
				if c.g711() && !strings.Contains(p.Output(), c.codec) {
					t.Errorf("baresip did not use %s:\n%s", c.codec, p.Output())
				}
			}
			checkTone(t, one(t, filepath.Join(aliceRec, "*dec.wav")), 880)
			checkTone(t, one(t, filepath.Join(daveRec, "*dec.wav")), 440)
		})
	}
}

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
