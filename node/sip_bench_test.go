//go:build !irmv_no_sip

package node_test

import (
	"context"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/share"
)

// BenchmarkSIPCallSetup: a SIP phone (a sipgo user agent registered from
// an open network) calls an irmv phone on the same node through the
// bridge; each call is timed from the INVITE to the callee's first RTP
// packet (its "connected" event), then hung up with BYE. Reports the
// median as setup_ms.
func BenchmarkSIPCallSetup(b *testing.B) {
	n := nodetest.Start(b, func() node.Options {
		o := nodetest.Options(b)
		o.SIP, o.SIPOpen = "127.0.0.1:0", []string{"127.0.0.0/8"}
		return o
	}())
	_, calleeEv := startGoPhone(b, n, share.Registration{Name: "Bench Callee", UID: "bench-callee"},
		phone.Options{Answer: phone.AnswerAuto})
	// connectedCount counts the callee's connected events (startGoPhone
	// owns OnEvent; its events are recorded in order).
	count := func(typ string) (int, <-chan struct{}) {
		calleeEv.mu.Lock()
		defer calleeEv.mu.Unlock()
		k := 0
		for _, ev := range calleeEv.list {
			if ev.Type == typ {
				k++
			}
		}
		return k, calleeEv.changed
	}
	port := n.SIP().Addr().(*net.UDPAddr).Port
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		b.Fatal(err)
	}
	defer ua.Close()
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(0))
	if err != nil {
		b.Fatal(err)
	}
	rtpConn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer rtpConn.Close()
	rtpPort := rtpConn.LocalAddr().(*net.UDPAddr).Port
	server := sipmsg.Uri{Host: "127.0.0.1", Port: port}

	// Register (open network: no credentials).
	reg := sipmsg.NewRequest(sipmsg.REGISTER, server)
	reg.AppendHeader(sipmsg.NewHeader("To", "<sip:benchphone@127.0.0.1>"))
	reg.AppendHeader(sipmsg.NewHeader("From", "<sip:benchphone@127.0.0.1>;tag=r1"))
	reg.AppendHeader(sipmsg.NewHeader("Contact", "<sip:benchphone@127.0.0.1>"))
	reg.AppendHeader(sipmsg.NewHeader("Expires", "600"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	res, err := cl.Do(ctx, reg)
	cancel()
	if err != nil || res.StatusCode != 200 {
		b.Fatalf("REGISTER: %v %v", res, err)
	}
	find(b, n, "bench callee", "bench-callee")
	dialogs := sipgo.NewDialogClientCache(cl, sipmsg.ContactHeader{Address: sipmsg.Uri{User: "benchphone", Host: "127.0.0.1"}})
	offer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n", rtpPort)

	var setups []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inv := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{User: "bench-callee", Host: "127.0.0.1", Port: port})
		inv.AppendHeader(sipmsg.NewHeader("From", fmt.Sprintf("<sip:benchphone@127.0.0.1>;tag=c%d", i)))
		inv.AppendHeader(sipmsg.NewHeader("To", "<sip:bench-callee@127.0.0.1>"))
		inv.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
		inv.SetBody([]byte(offer))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		sess, err := dialogs.WriteInvite(ctx, inv)
		if err != nil {
			b.Fatal(err)
		}
		if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
			b.Fatalf("call %d: %v", i, err)
		}
		sess.Ack(ctx)
		var sd sdp.SessionDescription
		if err := sd.Unmarshal(sess.InviteResponse.Body()); err != nil || len(sd.MediaDescriptions) == 0 {
			b.Fatalf("answer SDP: %v", err)
		}
		to := &net.UDPAddr{IP: net.ParseIP(sd.ConnectionInformation.Address.Address), Port: sd.MediaDescriptions[0].MediaName.Port.Value}
		// Opus at 20 ms until the callee hears it.
		var at time.Time
		tick := time.NewTicker(20 * time.Millisecond)
		for seq := uint16(0); at.IsZero(); seq++ {
			k, changed := count(phone.EventConnected)
			if k > i {
				at = time.Now()
				break
			}
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 42},
				Payload: []byte{0xf8, 0xff, 0xfe}}
			raw, _ := pkt.Marshal()
			rtpConn.WriteTo(raw, to)
			select {
			case <-changed:
			case <-tick.C:
			case <-ctx.Done():
				b.Fatal("the callee heard nothing")
			}
		}
		tick.Stop()
		setups = append(setups, at.Sub(t0))
		sess.Bye(ctx)
		sess.Close()
		for { // the callee is idle again before the next call
			k, changed := count(phone.EventEnded)
			if k > i {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				b.Fatal("the callee's call did not end")
			}
		}
		cancel()
	}
	b.StopTimer()
	sort.Slice(setups, func(i, j int) bool { return setups[i] < setups[j] })
	b.ReportMetric(float64(setups[len(setups)/2].Microseconds())/1000, "setup_ms")
}
