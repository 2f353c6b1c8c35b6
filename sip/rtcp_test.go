package sip

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irmv/irmv/call/media"
)

func TestIsRTCP(t *testing.T) {
	sr, _ := (&rtcp.SenderReport{SSRC: 5}).Marshal()
	rr, _ := (&rtcp.ReceiverReport{SSRC: 5}).Marshal()
	bye, _ := (&rtcp.Goodbye{Sources: []uint32{5}}).Marshal()
	for _, b := range [][]byte{sr, rr, bye} {
		if !isRTCP(b) {
			t.Errorf("%x not taken for RTCP", b)
		}
	}
	for _, pt := range []uint8{0, 8, 96, 101, 111, 127} {
		for _, marker := range []bool{false, true} {
			b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SSRC: 5}, Payload: []byte{1, 2, 3, 4}}).Marshal()
			if isRTCP(b) {
				t.Errorf("RTP payload type %d (marker %t) taken for RTCP", pt, marker)
			}
		}
	}
	if isRTCP([]byte{0x80, 200}) {
		t.Error("a 2-byte packet taken for RTCP")
	}
}

// The phone's RTCP on an SRTP leg is SRTCP: what authenticates is
// counted, replays, tampered and plain RTCP are rejected (and counted so);
// on a plain leg plain RTCP is counted; before a called phone's answer
// nothing is taken.
func TestPhoneRTCP(t *testing.T) {
	m := newMetrics(nil, nil)
	count := func(l string) float64 { return testutil.ToFloat64(m.rtcp.WithLabelValues(l)) }
	report, _ := (&rtcp.ReceiverReport{SSRC: 5, Reports: []rtcp.ReceptionReport{{SSRC: 7, LastSequenceNumber: 100}}}).Marshal()

	(&bridgeCall{m: m}).fromPhoneRTCP(report, nil, nil, nil) // before the phone's answer
	if got := count("early"); got != 1 {
		t.Errorf("early RTCP counted %v, want 1", got)
	}
	plainCall := &bridgeCall{m: m, ptSet: true}
	plainCall.fromPhoneRTCP(report, nil, nil, nil)
	plainCall.fromPhoneRTCP([]byte{0x80, 201, 0, 9, 1, 2, 3, 4}, nil, nil, nil) // length beyond the packet
	if got := count("plain"); got != 1 {
		t.Errorf("plain RTCP counted %v, want 1", got)
	}

	phoneKey, nodeKey := newCrypto(1, offerSuite), newCrypto(1, offerSuite)
	leg, err := newSRTPLeg(nodeKey, phoneKey)
	if err != nil {
		t.Fatal(err)
	}
	leg.m = m
	phone, err := newContext(phoneKey)
	if err != nil {
		t.Fatal(err)
	}
	srtpCall := &bridgeCall{m: m, srtp: leg, ptSet: true}
	sent, err := phone.EncryptRTCP(nil, report, nil)
	if err != nil {
		t.Fatal(err)
	}
	srtpCall.fromPhoneRTCP(sent, nil, nil, nil)
	if got := count("srtcp"); got != 1 {
		t.Fatalf("SRTCP counted %v, want 1", got)
	}
	srtpCall.fromPhoneRTCP(sent, nil, nil, nil) // a replay
	tampered, _ := phone.EncryptRTCP(nil, report, nil)
	tampered[len(tampered)-1] ^= 1
	srtpCall.fromPhoneRTCP(tampered, nil, nil, nil)
	srtpCall.fromPhoneRTCP(report, nil, nil, nil) // plain
	if got := count("srtcp"); got != 1 {
		t.Errorf("SRTCP counted %v after bad packets, want 1", got)
	}
	if got := count("rejected"); got != 3 {
		t.Errorf("%v rejected, want 3", got)
	}
}

// rtcpPhone is a test phone's side of a bridged call's phone leg: its
// RTP socket and the sockets its RTCP goes from and comes to.
type rtcpPhone struct {
	t       *testing.T
	rtp     *net.UDPConn
	rtcp    *net.UDPConn // its RTCP port (RTP port + 1)
	other   *net.UDPConn // a third socket
	in, out *srtp.Context
}

func udpConn(t *testing.T, c net.PacketConn) *net.UDPConn {
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// readRTCP reads compound packets from c (skipping RTP on a multiplexed
// port) until accept takes one.
func (p *rtcpPhone) readRTCP(c *net.UDPConn, what string, accept func([]rtcp.Packet) bool) []rtcp.Packet {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	c.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, err := c.Read(buf)
		if err != nil {
			p.t.Fatalf("no RTCP %s: %v", what, err)
		}
		b := buf[:n]
		if !isRTCP(b) {
			continue
		}
		if p.in != nil {
			if b, err = p.in.DecryptRTCP(nil, b, nil); err != nil {
				p.t.Fatalf("bridge's SRTCP does not authenticate: %v", err)
			}
		}
		pkts, err := rtcp.Unmarshal(b)
		if err != nil {
			p.t.Fatalf("bridge's RTCP does not parse: %v", err)
		}
		if err := rtcp.CompoundPacket(pkts).Validate(); err != nil {
			p.t.Fatalf("bridge's RTCP is no valid compound packet (%v): %v", err, pkts)
		}
		if accept(pkts) {
			return pkts
		}
	}
}

func (p *rtcpPhone) send(c *net.UDPConn, to net.Addr, b []byte, isRTCP bool) {
	p.t.Helper()
	var err error
	if p.out != nil {
		if isRTCP {
			b, err = p.out.EncryptRTCP(nil, b, nil)
		} else {
			b, err = p.out.EncryptRTP(nil, b, nil)
		}
		if err != nil {
			p.t.Fatal(err)
		}
	}
	if _, err := c.WriteTo(b, to); err != nil {
		p.t.Fatal(err)
	}
}

// The bridge reports to the phone as RFC 3550 has it: compound packets
// (a Sender Report whose counts are what the phone got, with a report
// block on the phone's stream: its highest sequence number, what it lost,
// LSR echoing the phone's Sender Report, then SDES CNAME), to where the
// phone's SDP says (its RTP port + 1, a=rtcp-mux, a=rtcp) and then to
// where the phone's RTCP comes from, which may be the bridge's RTP port
// or the next; SRTCP on an SRTP leg. The phone's receiver report of the
// bridge's stream is taken (loss, jitter, round trip); the call's end
// sends a BYE.
func TestBridgeRTCP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		target  string // default (RTP port + 1), mux, attr (a=rtcp to another socket)
		toPort1 bool   // the phone sends its RTCP to the bridge's RTP port + 1
		srtp    bool
	}{
		{name: "default", target: "default", toPort1: true},
		{name: "mux", target: "mux"},
		{name: "attr-latch", target: "attr"},
		{name: "srtcp", target: "default", srtp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMetrics(nil, nil)
			lo := net.IPv4(127, 0, 0, 1)
			bRTP, bRTCP, err := listenPair(lo)
			if err != nil {
				t.Fatal(err)
			}
			if bRTP.LocalAddr().(*net.UDPAddr).Port+1 != bRTCP.LocalAddr().(*net.UDPAddr).Port {
				t.Fatalf("pair %v %v is not port, port + 1", bRTP.LocalAddr(), bRTCP.LocalAddr())
			}
			pRTP, pRTCP, err := listenPair(lo)
			if err != nil {
				t.Fatal(err)
			}
			other, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ph := &rtcpPhone{t: t, rtp: udpConn(t, pRTP), rtcp: udpConn(t, pRTCP), other: udpConn(t, other)}

			bc := &bridgeCall{rtp: bRTP, rtcpPort: bRTCP, m: m, dtmfq: make(chan dtmfKey, 1), done: make(chan struct{}),
				firstRTP: make(chan struct{}), ssrc: newSSRC()}
			if bc.rtcps, err = newRTCPSession(bc.ssrc, bc.sendRTCP); err != nil {
				t.Fatal(err)
			}
			bc.setPhone(ph.rtp.LocalAddr().(*net.UDPAddr), phoneCodec{media.CodecPCMU, 0}, -1, 0)
			bc.sending = true
			// Where the bridge's reports must come first, and after the
			// phone's RTCP.
			first, latched := ph.rtcp, ph.rtcp
			switch tc.target {
			case "mux":
				bc.phoneRTCP.mux = true
				first, latched = ph.rtp, ph.rtp
			case "attr":
				bc.phoneRTCP.addr = ph.other.LocalAddr().(*net.UDPAddr)
				first, latched = ph.other, ph.rtcp
			}
			if tc.srtp {
				phoneKey, nodeKey := newCrypto(1, offerSuite), newCrypto(1, offerSuite)
				leg, err := newSRTPLeg(nodeKey, phoneKey)
				if err != nil {
					t.Fatal(err)
				}
				bc.srtp = leg
				if ph.out, err = newContext(phoneKey); err != nil {
					t.Fatal(err)
				}
				if ph.in, err = newContext(nodeKey); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			wg.Add(3)
			go func() { defer wg.Done(); bc.fromPhone() }()
			go func() { defer wg.Done(); bc.readRTCPPort() }()
			go func() { defer wg.Done(); bc.reportRTCP() }()
			ended := false
			t.Cleanup(func() {
				if !ended {
					close(bc.done)
				}
				bRTP.Close()
				bRTCP.Close()
				wg.Wait()
			})

			// The phone sends 45 packets of 50 (1010-1014 lost), the
			// bridge 30.
			const phoneSSRC = 0xabc
			for seq := uint16(1000); seq < 1050; seq++ {
				if seq >= 1010 && seq < 1015 {
					continue
				}
				b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: phoneSSRC},
					Payload: make([]byte, 160)}).Marshal()
				ph.send(ph.rtp, bRTP.LocalAddr(), b, false)
			}
			for i := range 30 {
				bc.toPhone(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(500 + i), Timestamp: uint32(i) * 160}, Payload: make([]byte, 160)})
			}
			got := 0
			for got < 30 {
				readRTP(t, ph.rtp)
				got++
			}
			full := func(pkts []rtcp.Packet, lsr uint32) bool {
				sr, ok := pkts[0].(*rtcp.SenderReport)
				if !ok || len(sr.Reports) != 1 {
					return false
				}
				b := sr.Reports[0]
				return b.SSRC == phoneSSRC && b.LastSequenceNumber == 1049 && b.TotalLost == 5 && b.LastSenderReport == lsr
			}
			pkts := ph.readRTCP(first, "to where the SDP says", func(p []rtcp.Packet) bool { return full(p, 0) })
			sr := pkts[0].(*rtcp.SenderReport)
			if sr.SSRC != bc.ssrc || sr.PacketCount != 30 || sr.OctetCount != 30*160 {
				t.Errorf("SR %+v: want SSRC %x, 30 packets, 4800 octets", sr, bc.ssrc)
			}
			if sd, ok := pkts[1].(*rtcp.SourceDescription); !ok || len(sd.Chunks) != 1 || sd.Chunks[0].Source != bc.ssrc {
				t.Errorf("second packet %+v: want the SDES of the bridge's stream", pkts[1])
			}

			// The phone's Sender Report, from its RTCP port (to the RTP
			// port or the next): the bridge's next block echoes it.
			ntp := ntpTime(time.Now())
			b, _ := rtcp.CompoundPacket{&rtcp.SenderReport{SSRC: phoneSSRC, NTPTime: ntp, RTPTime: 1049 * 160, PacketCount: 45, OctetCount: 45 * 160},
				rtcp.NewCNAMESourceDescription(phoneSSRC, "phone")}.Marshal()
			from, to := ph.rtcp, bRTP.LocalAddr()
			if tc.toPort1 {
				to = bRTCP.LocalAddr()
			}
			if tc.target == "mux" {
				from = ph.rtp
			}
			ph.send(from, to, b, true)
			pkts = ph.readRTCP(latched, "echoing the phone's SR", func(p []rtcp.Packet) bool { return full(p, uint32(ntp>>16)) })
			sr = pkts[0].(*rtcp.SenderReport)
			if d := time.Duration(sr.Reports[0].Delay) * time.Second / 65536; d <= 0 || d > 20*time.Second {
				t.Errorf("DLSR %v, want the time since the phone's SR", d)
			}

			// Before the phone reports a round trip, the WebRTC leg's
			// blocks carry none (not the WebRTC leg's alone).
			none := rtcp.ReceptionReport{LastSenderReport: 1, Delay: 20 * 65536}
			bc.foldReport(&none)
			if none.LastSenderReport != 0 || none.Delay != 0 {
				t.Errorf("block %+v before the phone's report: want LSR and DLSR 0", none)
			}

			// The phone's receiver report of the bridge's stream.
			b, _ = rtcp.CompoundPacket{&rtcp.ReceiverReport{SSRC: phoneSSRC, Reports: []rtcp.ReceptionReport{{SSRC: bc.ssrc,
				FractionLost: 64, TotalLost: 3, LastSequenceNumber: 529, Jitter: 80, LastSenderReport: uint32(sr.NTPTime >> 16)}}},
				rtcp.NewCNAMESourceDescription(phoneSSRC, "phone")}.Marshal()
			ph.send(from, to, b, true)
			waitFor(t, "the phone's report taken", func() bool { return !bc.rtcps.phoneView().at.IsZero() })
			if r := bc.rtcps.phoneView(); r.fraction != 0.25 || r.lost != 3 || r.jitter != 0.01 || r.rtt <= 0 || r.rtt > 60 {
				t.Errorf("phone's report taken as %+v, want loss 0.25, 3 lost, jitter 10 ms, a round trip", r)
			}
			// It goes into the WebRTC leg's report blocks of the stream.
			fold := rtcp.ReceptionReport{FractionLost: 10, TotalLost: 1, Jitter: 5, LastSenderReport: 1, Delay: 20 * 65536}
			bc.foldReport(&fold)
			rtt := uint32(bc.rtcps.phoneView().rtt * 65536)
			if fold.FractionLost != 64 || fold.TotalLost != 3 || fold.Jitter != 80 || fold.Delay != 20*65536-rtt {
				t.Errorf("folded block %+v, want fraction 64, 3 lost, jitter 80, DLSR less the phone leg's round trip %d", fold, rtt)
			}
			// A DLSR shorter than the phone leg's round trip cannot
			// take it: no round trip in that block.
			short := rtcp.ReceptionReport{LastSenderReport: 1, Delay: rtt / 2}
			bc.foldReport(&short)
			if short.LastSenderReport != 0 || short.Delay != 0 {
				t.Errorf("block %+v with DLSR below the phone leg's round trip %d: want LSR and DLSR 0", short, rtt)
			}

			// The end: a BYE.
			close(bc.done)
			ended = true
			ph.readRTCP(latched, "BYE", func(p []rtcp.Packet) bool {
				bye, ok := p[len(p)-1].(*rtcp.Goodbye)
				return ok && len(bye.Sources) == 1 && bye.Sources[0] == bc.ssrc
			})
			for _, kind := range []string{"sr", "bye"} { // counted after the write
				waitFor(t, "irmv_sip_rtcp_sent_total{kind=\""+kind+"\"}", func() bool { return testutil.ToFloat64(m.rtcpSent.WithLabelValues(kind)) >= 1 })
			}
		})
	}
}

// waitFor polls cond until it holds (30 s at most).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: timed out", what)
		}
	}
}

// The report interval is RFC 3550's for two participants: 5 s randomised
// over [0.5, 1.5] and divided by e-3/2, the first half that.
func TestRTCPInterval(t *testing.T) {
	lo, hi := 2050*time.Millisecond, 6160*time.Millisecond
	seen := map[time.Duration]bool{}
	for range 1000 {
		d := rtcpInterval(false)
		if d < lo || d > hi {
			t.Fatalf("interval %v outside [%v, %v]", d, lo, hi)
		}
		if f := rtcpInterval(true); f < lo/2 || f > hi/2 {
			t.Fatalf("first interval %v outside [%v, %v]", f, lo/2, hi/2)
		}
		seen[d/(100*time.Millisecond)] = true
	}
	if len(seen) < 20 {
		t.Errorf("intervals fall in %d of 41 tenths of a second: not randomised", len(seen))
	}
}
