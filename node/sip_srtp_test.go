//go:build !irmv_no_sip

package node_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/srtp/v3"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/sip/baresiptest"
)

// toneOgg is a sine tone as Ogg/Opus (opusenc), what an irmv phone plays.
func toneOgg(t *testing.T, hz, secs int) string {
	t.Helper()
	needTool(t, "opusenc", "opus-tools")
	wav := toneWAV(t, 48000, 1, hz, secs)
	out := filepath.Join(t.TempDir(), "tone.ogg")
	if b, err := exec.Command("opusenc", "--quiet", wav, out).CombinedOutput(); err != nil {
		t.Fatalf("opusenc: %v: %s", err, b)
	}
	return out
}

func needTool(t *testing.T, tool, pkg string) {
	t.Helper()
	testenv.Program(t, tool, pkg)
}

// srtpCall checks a finished SDES-SRTP call between baresip and an irmv
// phone: baresip says SRTP was on; the node protected and opened packets
// both ways and refused none.
func srtpCall(t *testing.T, n *node.Node, p *baresiptest.Phone) {
	t.Helper()
	if !strings.Contains(p.Output(), "SRTP is Enabled (cryptosuite=AES_CM_128_HMAC_SHA1_80)") {
		t.Errorf("baresip did not report SRTP; output:\n%s", p.Output())
	}
	if got := metric(t, n, "irmv_sip_srtp_calls_total"); got != 1 {
		t.Errorf("irmv_sip_srtp_calls_total %v, want 1", got)
	}
	for _, dir := range []string{"from_phone", "to_phone"} {
		if got := metric(t, n, `irmv_sip_srtp_packets_total{direction="`+dir+`"}`); got < 50 {
			t.Errorf("SRTP packets %s: %v, want ≥ 50 (a second)", dir, got)
		}
	}
	if got := metric(t, n, `irmv_sip_srtp_packets_total{direction="rejected"}`); got != 0 {
		t.Errorf("%v SRTP packets rejected, want none", got)
	}
	// baresip's RTCP comes to the port the bridge's a=rtcp names: its
	// reports as SRTCP; its pinhole "PING" before the keys and its
	// closing BYE in clear, which the bridge drops (rejected).
	if got := metric(t, n, `irmv_sip_rtcp_packets_total{result="srtcp"}`); got < 1 {
		t.Errorf("SRTCP packets from the phone: %v, want ≥ 1", got)
	}
	if got := metric(t, n, `irmv_sip_rtcp_packets_total{result="plain"}`); got != 0 {
		t.Errorf("%v RTCP packets taken in clear on an SRTP leg, want none", got)
	}
}

// On an SRTP phone leg, packets that do not authenticate with the phone's
// key (another key, a replay, plain RTP) are dropped and counted and do
// not move where the bridge sends; what the bridge sends opens only with
// the key its answer named.
func TestSRTPForgedPackets(t *testing.T) {
	n := sipNode(t, "127.0.0.0/8")
	_, bobEv := startGoPhone(t, n, client.Registration{Name: "Bob Secure", UID: "bob-secure"},
		phone.Options{Answer: phone.AnswerAuto, Play: longSpeech(t, time.Minute)})
	p := newSIPgoPhone(t, n, "srtpphone")
	find(t, n, "bob-secure", "bob-secure")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := newSRTPKey()
	sess, to, sd, err := p.call(ctx, "s1", "bob-secure", p.offer(key))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { sess.Bye(ctx); sess.Close() }()
	m := sd.MediaDescriptions[0]
	line, _ := m.Attribute("crypto")
	f := strings.Fields(line)
	if strings.Join(m.MediaName.Protos, "/") != "RTP/SAVP" || len(f) != 3 || f[0] != "1" || f[1] != "AES_CM_128_HMAC_SHA1_80" {
		t.Fatalf("answer %s/%q: want RTP/SAVP with a crypto line for tag 1", strings.Join(m.MediaName.Protos, "/"), line)
	}
	nodeKey, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(f[2], "inline:"))
	if err != nil || len(nodeKey) != 30 || bytes.Equal(nodeKey, key) {
		t.Fatalf("the node's key %q: want 30 bytes of its own", f[2])
	}

	// The phone talks until the call is over; its first packet is kept.
	enc := srtpContext(t, key)
	first := opusPacket(0, enc)
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		p.rtp.WriteTo(first, to)
		for seq := uint16(1); ctx.Err() == nil; seq++ {
			p.rtp.WriteTo(opusPacket(seq, enc), to)
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
	}()
	defer func() { cancel(); <-sending }()
	bobEv.wait(t, "connected", ofType(client.EventConnected))

	// What the bridge sends the phone: each must open with the node's key
	// (and not with the phone's own).
	var mu sync.Mutex
	opened, bad := 0, ""
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		dec := srtpContext(t, nodeKey, srtp.SRTPReplayProtection(128))
		other := srtpContext(t, key)
		buf := make([]byte, 1500)
		for {
			k, _, err := p.rtp.ReadFrom(buf)
			if err != nil {
				return
			}
			_, errOther := other.DecryptRTP(nil, buf[:k], nil)
			_, err = dec.DecryptRTP(nil, buf[:k], nil)
			mu.Lock()
			switch {
			case errOther == nil:
				bad = "a packet opened with the phone's own key"
			case err != nil:
				bad = "a packet does not open with the key the answer named: " + err.Error()
			default:
				opened++
			}
			mu.Unlock()
		}
	}()
	defer func() { p.rtp.Close(); <-reading }()
	got := func() int {
		mu.Lock()
		defer mu.Unlock()
		if bad != "" {
			t.Fatal(bad)
		}
		return opened
	}
	nodetest.WaitFor(t, "audio from the bridge", func() bool { return got() > 0 })

	attacker, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	stolen := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 1500)
		if _, _, err := attacker.ReadFrom(buf); err == nil {
			stolen <- struct{}{}
		}
	}()
	for _, pkt := range [][]byte{first, opusPacket(60000, srtpContext(t, newSRTPKey())), opusPacket(60001, nil)} {
		attacker.WriteTo(pkt, to)
	}
	rejected := func() float64 { return metric(t, n, `irmv_sip_srtp_packets_total{direction="rejected"}`) }
	nodetest.WaitFor(t, "forged packets rejected", func() bool { return rejected() >= 3 })
	// Another 10 packets (200 ms) after that still reach the phone: the
	// bridge's address for it did not move to the attacker.
	after := got() + 10
	nodetest.WaitFor(t, "audio after the forged packets", func() bool { return got() >= after })
	select {
	case <-stolen:
		t.Fatal("the attacker got the bridge's audio")
	default:
	}
	if got := rejected(); got != 3 {
		t.Errorf("%v packets rejected, want the 3 forged ones", got)
	}
}
