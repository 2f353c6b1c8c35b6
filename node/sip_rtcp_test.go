//go:build !irmv_no_sip

package node_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// A SIP phone (sipgo, RTP and RTCP multiplexed: a=rtcp-mux) calls an irmv
// phone through the bridge. The bridge's RTCP comes to the phone's RTP
// port: Sender Reports whose packet count is what the phone got, with a
// block of the phone's stream. The phone's receiver report of the
// bridge's stream (a quarter lost, 30 ms jitter) shows in the irmv
// side's quality events.
func TestSIPPhoneRTCPQuality(t *testing.T) {
	p, to, ev, sess, ctx := rtcpCall(t, "quality-callee")

	// Read until the bridge's second Sender Report (its first block may
	// come before the phone's first packets were counted).
	p.rtp.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 1500)
	got, srs := 0, 0
	var sr *rtcp.SenderReport
	for srs < 2 {
		k, _, err := p.rtp.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no Sender Report from the bridge (%d RTP packets): %v", got, err)
		}
		if !isRTCPPacket(buf[:k]) {
			var pkt rtp.Packet
			if pkt.Unmarshal(buf[:k]) == nil {
				got++
			}
			continue
		}
		pkts, err := rtcp.Unmarshal(buf[:k])
		if err != nil {
			t.Fatalf("the bridge's RTCP does not parse: %v", err)
		}
		if s, ok := pkts[0].(*rtcp.SenderReport); ok {
			srs++
			sr = s
			// Counted as it is sent: at most a few in flight.
			if int(s.PacketCount) < got || int(s.PacketCount) > got+5 {
				t.Errorf("Sender Report counts %d packets, the phone got %d", s.PacketCount, got)
			}
			if len(s.Reports) != 1 || s.Reports[0].SSRC != 42 || s.Reports[0].LastSequenceNumber == 0 {
				t.Errorf("Sender Report's blocks %+v, want one of the phone's stream (SSRC 42)", s.Reports)
			}
		}
	}
	ev.mu.Lock()
	for _, e := range ev.list {
		if e.Type == client.EventQuality && e.Loss >= 0.2 {
			t.Errorf("quality %+v before the phone reported loss", e)
		}
	}
	ev.mu.Unlock()

	// The phone reports a quarter of the bridge's stream lost, 30 ms of
	// jitter, every second until the irmv side shows it.
	rr, _ := rtcp.CompoundPacket{&rtcp.ReceiverReport{SSRC: 42, Reports: []rtcp.ReceptionReport{{SSRC: sr.SSRC,
		FractionLost: 64, TotalLost: 40, LastSequenceNumber: 1000, Jitter: 30 * 48, LastSenderReport: uint32(sr.NTPTime >> 16)}}},
		rtcp.NewCNAMESourceDescription(42, "rtcpphone")}.Marshal()
	report := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			p.rtp.WriteTo(rr, to)
			select {
			case <-report:
				return
			case <-tick.C:
			}
		}
	}()
	q := ev.wait(t, "quality with the phone's loss", func(e client.Event) bool {
		return e.Type == client.EventQuality && e.Loss >= 0.24
	})
	close(report)
	if q.Loss > 0.26 || q.JitterMS < 29 {
		t.Errorf("quality %+v, want the phone's loss 0.25 and jitter 30 ms", q)
	}
	sess.Bye(ctx)
}

// rtcpCall is a SIP phone (sipgo, RTP and RTCP multiplexed: a=rtcp-mux)
// in a call with an irmv phone (uid) through the bridge, sending audio
// every 20 ms until the test ends; the irmv phone's events, the phone's
// dialog and a context for it.
func rtcpCall(t *testing.T, uid string) (*sipgoPhone, *net.UDPAddr, *phoneEvents, *sipgo.DialogClientSession, context.Context) {
	n := nodetest.Start(t, func() node.Options {
		o := nodetest.Options(t)
		o.SIP, o.SIPOpen = "127.0.0.1:0", []string{"127.0.0.0/8"}
		return o
	}())
	_, ev := startGoPhone(t, n, client.Registration{Name: "Quality Callee", UID: uid}, phone.Options{Answer: phone.AnswerAuto, Play: toneOgg(t, 440, 30)})
	p := newSIPgoPhone(t, n, "rtcpphone")
	find(t, n, "quality callee", uid)
	offer := strings.Replace(p.offer(nil), "a=sendrecv", "a=rtcp-mux\r\na=sendrecv", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	sess, to, sd, err := p.call(ctx, "q1", uid, offer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	if _, ok := sd.MediaDescriptions[0].Attribute("rtcp-mux"); !ok {
		t.Errorf("answer without a=rtcp-mux: %s", sess.InviteResponse.Body())
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			p.rtp.WriteTo(opusPacket(seq, nil), to)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	ev.wait(t, "connected", ofType(client.EventConnected))
	return p, to, ev, sess, ctx
}

// The phone leg's round trip, from the phone's receiver reports of the
// bridge's stream (LSR/DLSR), shows in the irmv side's quality events
// as sip_rtt_ms: the phone answers each Sender Report at once with an
// LSR 200 ms before the report's time, as a phone 200 ms away would.
func TestSIPPhoneRTTInQuality(t *testing.T) {
	p, to, ev, sess, ctx := rtcpCall(t, "rtt-callee")
	const away = 200 * time.Millisecond
	answered := make(chan struct{})
	go func() { // until the test ends (the phone's socket closes)
		buf := make([]byte, 1500)
		for {
			p.rtp.SetReadDeadline(time.Now().Add(2 * time.Minute))
			k, _, err := p.rtp.ReadFrom(buf)
			if err != nil {
				return
			}
			if !isRTCPPacket(buf[:k]) {
				continue
			}
			pkts, err := rtcp.Unmarshal(buf[:k])
			if err != nil {
				continue
			}
			sr, ok := pkts[0].(*rtcp.SenderReport)
			if !ok {
				continue
			}
			lsr := uint32(sr.NTPTime>>16) - uint32(away*65536/time.Second)
			rr, _ := rtcp.CompoundPacket{&rtcp.ReceiverReport{SSRC: 42, Reports: []rtcp.ReceptionReport{{SSRC: sr.SSRC,
				LastSequenceNumber: 1000, LastSenderReport: lsr}}}, rtcp.NewCNAMESourceDescription(42, "rtcpphone")}.Marshal()
			p.rtp.WriteTo(rr, to)
			select {
			case answered <- struct{}{}:
			default:
			}
		}
	}()
	select {
	case <-answered:
	case <-time.After(time.Minute):
		t.Fatal("no Sender Report from the bridge")
	}
	q := ev.wait(t, "quality with the SIP leg's round trip", func(e client.Event) bool {
		return e.Type == client.EventQuality && e.SIPRTTMS != nil
	})
	// The loaded machine adds its delays to the 200 ms; the WebRTC leg
	// (loopback) is far shorter.
	if sip := *q.SIPRTTMS; sip < 190 || sip > 2000 || q.RTTMS >= sip {
		t.Errorf("quality %+v: sip_rtt_ms %.1f, want 200 ms or a little more, beyond rtt_ms", q, sip)
	}
	sess.Bye(ctx)
}

func isRTCPPacket(b []byte) bool { return len(b) >= 8 && b[1] >= 192 && b[1] <= 223 }
