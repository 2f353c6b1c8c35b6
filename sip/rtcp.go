package sip

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// RTCP toward the phone (RFC 3550 section 6): a compound packet of a
// Sender Report (or, before the bridge sent RTP, a Receiver Report) with
// a report block on the phone's stream, and SDES CNAME; a BYE at the
// call's end. The interval is RFC 3550's for two participants: the 5 s
// minimum, randomised over [0.5, 1.5] and divided by e-3/2 (section
// 6.3.1), the first half of it (section 6.2).
const (
	rtcpMin = 5 * time.Second
	// rtcpBlockEvery is how often pion's receiver report code takes a
	// report block of the phone's stream; the latest goes out.
	rtcpBlockEvery = time.Second
)

// rtcpInterval is the time to the next report: the first (initial) or
// a later one.
func rtcpInterval(initial bool) time.Duration {
	t := float64(rtcpMin)
	if initial {
		t /= 2
	}
	return time.Duration(t * (0.5 + mrand.Float64()) / (math.E - 1.5))
}

// isRTCP tells RTCP from RTP on one port (RFC 5761 section 4): RTCP's
// packet types 192-223 fall where RTP has the marker bit and payload
// types 64-95, which RTP/AVP does not use.
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223
}

// rtcpSession keeps the statistics of the phone leg's two streams with
// pion/interceptor's report code (the sender's counts and RTP clock for
// Sender Reports, the receiver's loss, jitter and LSR/DLSR for report
// blocks) and puts its reports together into compound packets, sent by
// send. Its methods are safe for concurrent use.
type rtcpSession struct {
	ssrc  uint32 // the bridge's stream to the phone
	cname string
	send  func(rtcp.CompoundPacket)
	chain interceptor.Interceptor
	tick  chan time.Time // the sender report code's ticker

	mu         sync.Mutex
	local      interceptor.RTPWriter // our stream, nil until the first packet
	remote     interceptor.RTPReader // the phone's stream, nil until its first packet
	remoteSSRC uint32
	in         interceptor.RTCPReader
	cur        []byte // the packet being read through remote or in
	scratch    []byte
	block      *rtcp.ReceptionReport // the latest block on the phone's stream
	blockAt    time.Time
	sentBlock  rtcp.ReceptionReport // the block of the last report sent
	phone      phoneReport
	ending     bool // the BYE is going out: no more reports
	closed     bool
}

// phoneReport is what the phone last reported of the bridge's stream.
type phoneReport struct {
	at       time.Time // zero: nothing yet
	fraction float64   // fraction lost since its previous report
	lost     uint32    // cumulative
	jitter   float64   // seconds
	rtt      float64   // seconds, from LSR/DLSR
	rttOK    bool      // rtt is known: the block had an LSR
}

type tickerOf chan time.Time

func (t tickerOf) Ch() <-chan time.Time { return t }
func (tickerOf) Stop()                  {}

// newRTCPSession starts the report code for the stream ssrc.
func newRTCPSession(ssrc uint32, send func(rtcp.CompoundPacket)) (*rtcpSession, error) {
	var b [12]byte
	rand.Read(b[:])
	s := &rtcpSession{ssrc: ssrc, cname: hex.EncodeToString(b[:]), send: send, tick: make(chan time.Time, 1), scratch: make([]byte, maxRTP)}
	sf, err := report.NewSenderInterceptor(report.SenderTicker(func(time.Duration) report.Ticker { return tickerOf(s.tick) }))
	if err != nil {
		return nil, err
	}
	rf, err := report.NewReceiverInterceptor(report.ReceiverInterval(rtcpBlockEvery))
	if err != nil {
		return nil, err
	}
	si, err := sf.NewInterceptor("")
	if err != nil {
		return nil, err
	}
	ri, err := rf.NewInterceptor("")
	if err != nil {
		si.Close()
		return nil, err
	}
	s.chain = interceptor.NewChain([]interceptor.Interceptor{si, ri})
	s.chain.BindRTCPWriter(interceptor.RTCPWriterFunc(s.written))
	s.in = s.chain.BindRTCPReader(interceptor.RTCPReaderFunc(s.read))
	return s, nil
}

// read hands the packet being processed to the report code.
func (s *rtcpSession) read(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	return copy(b, s.cur), a, nil
}

// written takes what the report code writes: report blocks on the phone's
// stream (kept, the latest goes out with the next report) and, when
// asked by report, the Sender Report of the bridge's stream.
func (s *rtcpSession) written(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.ReceiverReport:
			s.mu.Lock()
			if len(p.Reports) == 1 && p.Reports[0].SSRC == s.remoteSSRC {
				s.block, s.blockAt = &p.Reports[0], time.Now()
			}
			s.mu.Unlock()
		case *rtcp.SenderReport:
			s.mu.Lock()
			ending := s.ending
			s.mu.Unlock()
			if p.SSRC == s.ssrc && !ending {
				p.Reports = s.blocks()
				s.send(rtcp.CompoundPacket{p, rtcp.NewCNAMESourceDescription(s.ssrc, s.cname)})
			}
		}
	}
	return 0, nil
}

// blocks is the report block to send now: the latest, its DLSR moved on
// to now and its fraction lost over the time since the last report sent
// (RFC 3550 section 6.4.1); none before the phone's first packet.
func (s *rtcpSession) blocks() []rtcp.ReceptionReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.block == nil {
		return nil
	}
	b := *s.block
	if b.LastSenderReport != 0 {
		b.Delay += uint32(time.Since(s.blockAt).Seconds() * 65536)
	}
	// The first report keeps the fraction of pion's last period.
	if prev := s.sentBlock; prev.SSRC == b.SSRC {
		b.FractionLost = 0
		if expected := int64(b.LastSequenceNumber) - int64(prev.LastSequenceNumber); expected > 0 {
			lost := int64(b.TotalLost) - int64(prev.TotalLost)
			b.FractionLost = uint8(min(max(lost, 0)*256/expected, 255))
		}
	}
	s.sentBlock = b
	return []rtcp.ReceptionReport{b}
}

// report sends one compound report: a Sender Report when the bridge has
// sent RTP (the sender report code writes it, see written), else a
// Receiver Report.
func (s *rtcpSession) report() {
	s.mu.Lock()
	sent := s.local != nil
	s.mu.Unlock()
	if sent {
		select {
		case s.tick <- time.Now():
		default:
		}
		return
	}
	s.send(rtcp.CompoundPacket{&rtcp.ReceiverReport{SSRC: s.ssrc, Reports: s.blocks()},
		rtcp.NewCNAMESourceDescription(s.ssrc, s.cname)})
}

// bye sends the BYE of the bridge's stream (after an empty Receiver
// Report, RFC 3550 section 6.1) and stops the report code.
func (s *rtcpSession) bye() {
	s.mu.Lock()
	s.ending = true // a report asked for just before is not sent after
	s.mu.Unlock()
	s.send(rtcp.CompoundPacket{&rtcp.ReceiverReport{SSRC: s.ssrc},
		rtcp.NewCNAMESourceDescription(s.ssrc, s.cname), &rtcp.Goodbye{Sources: []uint32{s.ssrc}}})
	s.close()
}

func (s *rtcpSession) close() {
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if !closed {
		s.chain.Close()
	}
}

// lock takes mu; false (not locked) when s is nil (a test's bridge call
// without a session) or closed.
func (s *rtcpSession) lock() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	return true
}

// sent counts one RTP packet sent to the phone (clock: the codec's rate).
func (s *rtcpSession) sent(h *rtp.Header, payload []byte, clock uint32) {
	if !s.lock() {
		return
	}
	defer s.mu.Unlock()
	if s.local == nil {
		s.local = s.chain.BindLocalStream(&interceptor.StreamInfo{SSRC: s.ssrc, ClockRate: clock},
			interceptor.RTPWriterFunc(func(*rtp.Header, []byte, interceptor.Attributes) (int, error) { return 0, nil }))
	}
	s.local.Write(h, payload, nil)
}

// received counts one RTP packet of the phone's (pkt, decrypted; clock:
// the codec's rate). A new SSRC starts a new stream.
func (s *rtcpSession) received(pkt []byte, ssrc, clock uint32) {
	if !s.lock() {
		return
	}
	defer s.mu.Unlock()
	if s.remote == nil || ssrc != s.remoteSSRC {
		if s.remote != nil {
			s.chain.UnbindRemoteStream(&interceptor.StreamInfo{SSRC: s.remoteSSRC})
		}
		s.remoteSSRC, s.block = ssrc, nil
		s.remote = s.chain.BindRemoteStream(&interceptor.StreamInfo{SSRC: ssrc, ClockRate: clock},
			interceptor.RTPReaderFunc(s.read))
	}
	s.cur = pkt
	s.remote.Read(s.scratch, nil)
	s.cur = nil
}

// fromPhone takes the phone's RTCP (decrypted): its Sender Reports for
// the blocks' LSR/DLSR, its report blocks on the bridge's stream for
// phoneReport (clock: the codec's rate).
func (s *rtcpSession) fromPhone(data []byte, pkts []rtcp.Packet, clock uint32) {
	if !s.lock() {
		return
	}
	defer s.mu.Unlock()
	s.cur = data
	s.in.Read(s.scratch, nil)
	s.cur = nil
	for _, p := range pkts {
		var blocks []rtcp.ReceptionReport
		switch p := p.(type) {
		case *rtcp.SenderReport:
			blocks = p.Reports
		case *rtcp.ReceiverReport:
			blocks = p.Reports
		}
		for _, b := range blocks {
			if b.SSRC != s.ssrc {
				continue
			}
			r := phoneReport{at: time.Now(), fraction: float64(b.FractionLost) / 256, lost: b.TotalLost}
			if clock > 0 {
				r.jitter = float64(b.Jitter) / float64(clock)
			}
			if b.LastSenderReport != 0 {
				// RFC 3550 section 6.4.1: now - LSR - DLSR, in 1/65536 s;
				// a few ms below zero is the phone's rounding of DLSR.
				now := uint32(ntpTime(time.Now()) >> 16)
				switch d := now - b.LastSenderReport - b.Delay; {
				case d < 1<<31:
					r.rtt, r.rttOK = float64(d)/65536, true
				case -d < 65536/100:
					r.rttOK = true
				}
			}
			s.phone = r
		}
	}
}

// phoneView is what the phone last reported of the bridge's stream.
func (s *rtcpSession) phoneView() phoneReport {
	if !s.lock() {
		return phoneReport{}
	}
	defer s.mu.Unlock()
	return s.phone
}

// foldReport puts what the phone last reported of the bridge's stream
// (the irmv side's, passed on) into a report block the WebRTC leg sends
// of that stream, so that the irmv side's quality covers both legs: the
// worse loss and jitter (sequence numbers and timestamps pass, so the
// phone measures the whole path), and the phone leg's round trip taken
// off DLSR, so that a round trip from the reports spans both legs (the
// irmv side tells the phone leg's from it: its sip_rtt_ms). A block
// carries no round trip (LSR and DLSR 0) rather than the WebRTC leg's
// alone: when the phone's is not known, or longer than DLSR (the time
// since the irmv side's last Sender Report, up to its 1 s interval). A
// phone report older than three intervals is not taken.
func (bc *bridgeCall) foldReport(b *rtcp.ReceptionReport) {
	r := bc.rtcps.phoneView()
	fresh := !r.at.IsZero() && time.Since(r.at) <= 3*rtcpMin
	if d := uint32(r.rtt * 65536); fresh && r.rttOK && d < b.Delay {
		b.Delay -= d
	} else {
		b.LastSenderReport, b.Delay = 0, 0
	}
	if !fresh {
		return
	}
	bc.mu.Lock()
	clock := float64(bc.codec.ClockRate())
	bc.mu.Unlock()
	b.FractionLost = max(b.FractionLost, uint8(min(r.fraction*256, 255)))
	b.TotalLost = max(b.TotalLost, r.lost)
	b.Jitter = max(b.Jitter, uint32(r.jitter*clock))
}

// ntpTime is t as a 64-bit NTP timestamp.
func ntpTime(t time.Time) uint64 {
	const unixToNTP = 2208988800
	secs := uint64(t.Unix()) + unixToNTP
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// fromPhoneRTCP takes one RTCP packet from the phone, which came to conn
// from from: on an SRTP leg it must authenticate (SRTCP; phones send some
// RTCP in clear even there: baresip a pinhole "PING" before its keys are
// set and its closing BYE, dropped as rejected); it is counted, its
// reports go to the call's RTCP session, and the bridge's RTCP goes back
// where it came from (latched, like RTP). It is not passed on (the WebRTC
// side has RTCP of its own).
func (bc *bridgeCall) fromPhoneRTCP(data, dec []byte, from net.Addr, conn net.PacketConn) {
	bc.mu.Lock()
	early := !bc.ptSet
	bc.mu.Unlock()
	if early { // a called phone's, before its answer says SRTP or not
		bc.countRTCP("early")
		return
	}
	protection := "plain"
	if leg := bc.leg(); leg != nil {
		var err error
		if data, err = leg.decryptRTCP(dec, data); err != nil {
			bc.countRTCP("rejected")
			return
		}
		protection = "srtcp"
	}
	pkts, err := rtcp.Unmarshal(data)
	if err != nil {
		return
	}
	bc.countRTCP(protection)
	bc.mu.Lock()
	if ua, ok := from.(*net.UDPAddr); ok && conn != nil {
		bc.rtcpTo, bc.rtcpConn = ua, conn
	}
	clock := uint32(bc.codec.ClockRate())
	bc.mu.Unlock()
	bc.rtcps.fromPhone(data, pkts, clock)
}

func (bc *bridgeCall) countRTCP(result string) {
	if bc.m != nil {
		bc.m.rtcp.WithLabelValues(result).Inc()
	}
}

// sendRTCP sends a compound packet to the phone: to where its RTCP last
// came from, else where its SDP said (a=rtcp-mux: the RTP address;
// a=rtcp; the RTP port + 1), as SRTCP on an SRTP leg.
func (bc *bridgeCall) sendRTCP(c rtcp.CompoundPacket) {
	b, err := c.Marshal()
	if err != nil {
		return
	}
	bc.mu.Lock()
	to, conn := bc.rtcpTo, bc.rtcpConn
	if to == nil {
		to, conn = bc.rtcpDest(), bc.rtp
	}
	bc.mu.Unlock()
	if to == nil {
		return
	}
	if leg := bc.leg(); leg != nil {
		if b, err = leg.encryptRTCP(nil, b); err != nil {
			return
		}
	}
	if _, err := conn.WriteTo(b, to); err == nil && bc.m != nil {
		kind := "rr"
		if _, ok := c[0].(*rtcp.SenderReport); ok {
			kind = "sr"
		}
		if len(c) > 2 {
			kind = "bye"
		}
		bc.m.rtcpSent.WithLabelValues(kind).Inc()
	}
}

// rtcpTarget is where a phone's SDP says its RTCP goes: to the RTP
// address (a=rtcp-mux, RFC 5761), to addr (a=rtcp, RFC 3605), else to
// the RTP port + 1.
type rtcpTarget struct {
	mux  bool
	addr *net.UDPAddr
}

// rtcpDest is where the phone's SDP says its RTCP goes (under mu), nil
// before its address is known.
func (bc *bridgeCall) rtcpDest() *net.UDPAddr {
	switch {
	case bc.phone == nil:
		return nil
	case bc.phoneRTCP.mux:
		return bc.phone
	case bc.phoneRTCP.addr != nil:
		return bc.phoneRTCP.addr
	}
	return &net.UDPAddr{IP: bc.phone.IP, Port: bc.phone.Port + 1, Zone: bc.phone.Zone}
}

// reportRTCP sends the phone reports until the call ends, then its BYE.
func (bc *bridgeCall) reportRTCP() {
	if bc.rtcps == nil {
		return
	}
	t := time.NewTimer(rtcpInterval(true))
	defer t.Stop()
	for {
		select {
		case <-bc.done:
			bc.mu.Lock()
			started := bc.sending
			bc.mu.Unlock()
			if started {
				bc.rtcps.bye()
			}
			bc.rtcps.close()
			return
		case <-t.C:
			bc.mu.Lock()
			ready := bc.ptSet && bc.sending
			bc.mu.Unlock()
			if ready {
				bc.rtcps.report()
			}
			t.Reset(rtcpInterval(false))
		}
	}
}

// readRTCPPort reads the second port of the call's pair (RTP port + 1),
// where phones that ignore a=rtcp send their RTCP (RFC 3605's default).
func (bc *bridgeCall) readRTCPPort() {
	buf, dec := make([]byte, maxRTP), make([]byte, maxRTP)
	for {
		n, from, err := bc.rtcpPort.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case <-bc.done: // the grace after the call: discarded
			continue
		default:
		}
		if isRTCP(buf[:n]) && !bc.fromStranger(from) {
			bc.fromPhoneRTCP(buf[:n], dec[:0], from, bc.rtcpPort)
		}
	}
}

// listenPair opens an RTP port (even) and the next one for RTCP on ip
// (RFC 3550 section 11).
func listenPair(ip net.IP) (rtpConn, rtcpConn net.PacketConn, err error) {
	for range 50 {
		c, err := net.ListenPacket("udp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return nil, nil, err
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		other := port + 1
		if port%2 == 1 {
			other = port - 1
		}
		o, err := net.ListenPacket("udp", net.JoinHostPort(ip.String(), strconv.Itoa(other)))
		if err != nil {
			c.Close()
			continue
		}
		if port%2 == 1 {
			return o, c, nil
		}
		return c, o, nil
	}
	return nil, nil, errNoPortPair
}

var errNoPortPair = errors.New("no free RTP/RTCP port pair")

// newSSRC is a random SSRC.
func newSSRC() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
