//go:build !irmv_no_sip

package node_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"golang.org/x/time/rate"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// BenchmarkSIPCallSetup: a SIP phone (a sipgo user agent registered from
// an open network) calls an irmv phone on the same node through the
// bridge; each call is timed from the INVITE to the callee's first RTP
// packet (its "connected" event), then hung up with BYE. Reports the
// median as setup_ms; rtp with plain RTP on the phone leg, srtp with
// SDES-SRTP (RTP/SAVP, AES_CM_128_HMAC_SHA1_80: the phone encrypts), both
// Opus; pcmu with plain RTP from a phone that offers PCMU only (the
// WebRTC leg negotiates PCMU: G.711 passed through).
func BenchmarkSIPCallSetup(b *testing.B) {
	b.Run("rtp", func(b *testing.B) { benchSIPCallSetup(b, false, false) })
	b.Run("srtp", func(b *testing.B) { benchSIPCallSetup(b, true, false) })
	b.Run("pcmu", func(b *testing.B) { benchSIPCallSetup(b, false, true) })
}

func benchSIPCallSetup(b *testing.B, secure, pcmu bool) {
	n := nodetest.Start(b, func() node.Options {
		o := nodetest.Options(b)
		o.SIP, o.SIPOpen = "127.0.0.1:0", []string{"127.0.0.0/8"}
		return o
	}())
	_, calleeEv := startGoPhone(b, n, client.Registration{Name: "Bench Callee", UID: "bench-callee"},
		phone.Options{Answer: phone.AnswerAuto})
	// count counts the callee's events of a type (startGoPhone owns
	// OnEvent; its events are recorded in order).
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
	p := newSIPgoPhone(b, n, "benchphone")
	find(b, n, "bench callee", "bench-callee")
	var key []byte
	if secure {
		key = newSRTPKey()
	}
	offer := p.offer(key)
	packet, codec := opusPacket, "opus"
	if pcmu {
		offer = strings.Replace(offer, " 111\r\na=rtpmap:111 opus/48000/2", " 0\r\na=rtpmap:0 PCMU/8000", 1)
		packet, codec = pcmuPacket, "PCMU"
	}

	var setups []time.Duration
	// Calls start at most 4 a second: the callee's session may send the
	// call switch 50 messages a second (burst 200), and each call costs
	// it several (candidates, accept, hang-up); faster, the switch drops
	// them and calls fail. Each set-up is timed on its own.
	pace := rate.NewLimiter(4, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pace.Wait(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t0 := time.Now()
		sess, to, sd, err := p.call(ctx, fmt.Sprintf("c%d", i), "bench-callee", offer)
		if err != nil {
			b.Fatalf("call %d: %v", i, err)
		}
		var enc *srtp.Context
		if secure { // the node's answer must carry its own crypto line; the phone sends with its own key
			if _, ok := sd.MediaDescriptions[0].Attribute("crypto"); !ok {
				b.Fatalf("answer without a=crypto: %s", sess.InviteResponse.Body())
			}
			enc = srtpContext(b, key)
		}
		// Audio at 20 ms until the callee hears it.
		var at time.Time
		tick := time.NewTicker(20 * time.Millisecond)
		for seq := uint16(0); at.IsZero(); seq++ {
			k, changed := count(client.EventConnected)
			if k > i {
				at = time.Now()
				break
			}
			p.rtp.WriteTo(packet(seq, enc), to)
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
			k, changed := count(client.EventEnded)
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
	if ev := calleeEv.wait(b, "connected", ofType(client.EventConnected)); ev.Codec != codec {
		b.Fatalf("the calls used %q, want %s", ev.Codec, codec)
	}
	sort.Slice(setups, func(i, j int) bool { return setups[i] < setups[j] })
	b.ReportMetric(float64(setups[len(setups)/2].Microseconds())/1000, "setup_ms")
}

// sipgoPhone is a SIP phone made of sipgo with an RTP socket, registered
// from an open network (no credentials).
type sipgoPhone struct {
	user    string
	port    int // the node's SIP port
	dialogs *sipgo.DialogClientCache
	rtp     net.PacketConn
}

func newSIPgoPhone(tb testing.TB, n *node.Node, user string) *sipgoPhone {
	tb.Helper()
	p := &sipgoPhone{user: user, port: n.SIP().Addr().(*net.UDPAddr).Port}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ua.Close() })
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(0))
	if err != nil {
		tb.Fatal(err)
	}
	if p.rtp, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.rtp.Close() })
	reg := sipmsg.NewRequest(sipmsg.REGISTER, sipmsg.Uri{Host: "127.0.0.1", Port: p.port})
	reg.AppendHeader(sipmsg.NewHeader("To", "<sip:"+user+"@127.0.0.1>"))
	reg.AppendHeader(sipmsg.NewHeader("From", "<sip:"+user+"@127.0.0.1>;tag=r1"))
	reg.AppendHeader(sipmsg.NewHeader("Contact", "<sip:"+user+"@127.0.0.1>"))
	reg.AppendHeader(sipmsg.NewHeader("Expires", "600"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cl.Do(ctx, reg)
	if err != nil || res.StatusCode != 200 {
		tb.Fatalf("REGISTER: %v %v", res, err)
	}
	p.dialogs = sipgo.NewDialogClientCache(cl, sipmsg.ContactHeader{Address: sipmsg.Uri{User: user, Host: "127.0.0.1"}})
	return p
}

// offer is an SDP offer of Opus at the phone's RTP socket; with a key
// (newSRTPKey), RTP/SAVP with that key.
func (p *sipgoPhone) offer(key []byte) string {
	proto, crypto := "RTP/AVP", ""
	if key != nil {
		proto, crypto = "RTP/SAVP", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+base64.StdEncoding.EncodeToString(key)+"\r\n"
	}
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d %s 111\r\na=rtpmap:111 opus/48000/2\r\n%sa=sendrecv\r\n",
		p.rtp.LocalAddr().(*net.UDPAddr).Port, proto, crypto)
}

// call INVITEs callee with offer (From tag tag) and ACKs the answer; it
// returns the dialog, where the bridge takes RTP, and the answer.
func (p *sipgoPhone) call(ctx context.Context, tag, callee, offer string) (*sipgo.DialogClientSession, *net.UDPAddr, *sdp.SessionDescription, error) {
	inv := sipmsg.NewRequest(sipmsg.INVITE, sipmsg.Uri{User: callee, Host: "127.0.0.1", Port: p.port})
	inv.AppendHeader(sipmsg.NewHeader("From", "<sip:"+p.user+"@127.0.0.1>;tag="+tag))
	inv.AppendHeader(sipmsg.NewHeader("To", "<sip:"+callee+"@127.0.0.1>"))
	inv.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody([]byte(offer))
	sess, err := p.dialogs.WriteInvite(ctx, inv)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		sess.Close()
		return nil, nil, nil, err
	}
	sess.Ack(ctx)
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(sess.InviteResponse.Body()); err != nil || len(sd.MediaDescriptions) == 0 || sd.ConnectionInformation == nil {
		sess.Close()
		return nil, nil, nil, fmt.Errorf("answer SDP %q: %v", sess.InviteResponse.Body(), err)
	}
	to := &net.UDPAddr{IP: net.ParseIP(sd.ConnectionInformation.Address.Address), Port: sd.MediaDescriptions[0].MediaName.Port.Value}
	return sess, to, &sd, nil
}

// newSRTPKey is an AES_CM_128_HMAC_SHA1_80 master key and salt.
func newSRTPKey() []byte {
	key := make([]byte, 30)
	rand.Read(key)
	return key
}

func srtpContext(tb testing.TB, key []byte, opts ...srtp.ContextOption) *srtp.Context {
	tb.Helper()
	c, err := srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// opusPacket is an Opus RTP packet (a silent frame), encrypted with enc
// unless nil.
func opusPacket(seq uint16, enc *srtp.Context) []byte {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 42},
		Payload: []byte{0xf8, 0xff, 0xfe}}
	raw, _ := pkt.Marshal()
	if enc != nil {
		raw, _ = enc.EncryptRTP(nil, raw, nil)
	}
	return raw
}

// pcmuPacket is 20 ms of PCMU silence.
func pcmuPacket(seq uint16, enc *srtp.Context) []byte {
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 42},
		Payload: bytes.Repeat([]byte{0xff}, 160)}
	raw, _ := pkt.Marshal()
	if enc != nil {
		raw, _ = enc.EncryptRTP(nil, raw, nil)
	}
	return raw
}
