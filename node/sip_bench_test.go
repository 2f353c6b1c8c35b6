//go:build !irmv_no_sip

package node_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"golang.org/x/time/rate"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/share"
)

// BenchmarkSIPCallSetup: a SIP phone (a sipgo user agent registered from
// an open network) calls an irmv phone on the same node through the
// bridge; each call is timed from the INVITE to the callee's first RTP
// packet (its "connected" event), then hung up with BYE. Reports the
// median as setup_ms; rtp with plain RTP on the phone leg, srtp with
// SDES-SRTP (RTP/SAVP, AES_CM_128_HMAC_SHA1_80: the phone encrypts).
func BenchmarkSIPCallSetup(b *testing.B) {
	b.Run("rtp", func(b *testing.B) { benchSIPCallSetup(b, false) })
	b.Run("srtp", func(b *testing.B) { benchSIPCallSetup(b, true) })
}

func benchSIPCallSetup(b *testing.B, secure bool) {
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
	proto, crypto := "RTP/AVP", ""
	key := make([]byte, 30) // AES_CM_128_HMAC_SHA1_80: master key and salt
	rand.Read(key)
	if secure {
		proto, crypto = "RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+base64.StdEncoding.EncodeToString(key)+"\r\n"
	}
	offer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d %s 111\r\na=rtpmap:111 opus/48000/2\r\n%sa=sendrecv\r\n", rtpPort, proto, crypto)

	var setups []time.Duration
	// Calls start at most 4 a second: the callee's session may send the
	// call switch 50 messages a second (burst 200), and each call costs
	// it several (candidates, accept, hang-up); faster, the switch drops
	// them and calls fail. Each set-up is timed on its own.
	pace := rate.NewLimiter(4, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pace.Wait(context.Background())
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
		var enc *srtp.Context
		if secure { // the node's answer must carry its own crypto line; the phone sends with its own key
			if _, ok := sd.MediaDescriptions[0].Attribute("crypto"); !ok {
				b.Fatalf("answer without a=crypto: %s", sess.InviteResponse.Body())
			}
			if enc, err = srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80); err != nil {
				b.Fatal(err)
			}
		}
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
			if enc != nil {
				raw, _ = enc.EncryptRTP(nil, raw, nil)
			}
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
