package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call"
	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/search"
)

// Bridge limits.
const (
	resolveTimeout = 5 * time.Second
	// ringTimeout bounds how long a bridged call may ring before the
	// bridge gives up (the switch's own ring timeout usually ends it
	// first).
	ringTimeout = 90 * time.Second
	maxRTP      = 1500
	// maxPhoneIPs bounds the addresses a phone's media may come from (its
	// signalling source, the SDP of its INVITE and re-INVITEs).
	maxPhoneIPs = 8
)

// Switch attaches SIP terminals to the node's call switch.
type Switch interface {
	Attach(terminal string) (*call.Line, error)
}

// Resolver finds the terminal an identifier means, with the rules of
// `irmv call`: search.Service.Resolve.
type Resolver func(ctx context.Context, q client.Query) (client.Result, []client.Result, error)

// bridgeCall is one call between a SIP phone and an irmv terminal, with
// the node in the media path.
type bridgeCall struct {
	id     string // the irmv call ID
	line   *call.Line
	rtp    net.PacketConn
	events chan signal.Msg
	log    *slog.Logger
	m      *metrics
	dtmfq  chan dtmfKey
	done   chan struct{} // closed when the call ends

	ssrc uint32
	mu   sync.Mutex
	// peer is the WebRTC side; set once (before ptSet), read by fromPhone
	// under mu.
	peer    *media.Peer
	codec   media.Codec // passed through: the phone's and the peer's
	phonePT uint8       // the codec's payload type on the phone's leg
	ptSet   bool
	// sending: the phone has the bridge's answer (its ACK came, or it
	// answered itself); no RTP goes to it before (baresip 1.0 crashes on
	// RTP before the 200).
	sending bool
	dtmfPT  int // telephone-event on the phone's leg; -1: none
	dtmfHz  int
	phone   *net.UDPAddr // where the phone's RTP goes (latched to its source)
	// phoneIPs are where a plain leg's packets may come from: the
	// phone's signalling source and its SDP addresses (IPv6: their /64);
	// others are dropped, neither heard nor latched to.
	phoneIPs  []netip.Addr
	strangers bool // a stranger's packet was logged
	holding   bool
	held      []webrtc.ICECandidateInit
	srtp      *srtpLeg   // nil: plain RTP
	proto     string     // the phone leg's SDP proto when srtp is set
	offered   sdesCrypto // the crypto line offered to a called phone
	// The stream to the phone: the last sequence number and timestamp
	// sent, and how far key presses moved the sequence numbers on.
	outSeq, seqOff uint16
	outTS          uint32
	eventSeen      bool   // a key press of the phone's was passed on
	eventTS        uint32 // its RTP timestamp
	eventsOut      bool   // a key press was sent to the phone
	nextEventTS    uint32 // the earliest timestamp of the next one
	// The irmv side's timestamps are moved on by tsOff; filled: the bridge
	// sent silence (or a key press into silence) since its last packet,
	// so its next one is renumbered after those.
	tsOff   uint32
	filled  bool
	lastOut time.Time // when the irmv side's last packet went out
	keyOn   bool      // a key press is being sent
	// sipCallID is the SIP dialog's Call-ID (under Server.mu).
	sipCallID string
	dialog    dialogOf // under Server.mu
	seq       uint16
	firstRTP  chan struct{}
	once      sync.Once
	// RTCP: the call's session (reports to the phone, its reports), the
	// second port of the pair, where the phone's SDP says its RTCP goes
	// and, latched to where it comes from, where it does go and the
	// port it came to (under mu).
	rtcps     *rtcpSession
	rtcpPort  net.PacketConn
	phoneRTCP rtcpTarget
	rtcpTo    *net.UDPAddr
	rtcpConn  net.PacketConn
}

// lineFor returns the line of the terminal that registered aor.
func (s *Server) lineFor(aor string) *call.Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines[aor]
}

// attach connects a bound phone's terminal to the switch (once per
// terminal handle) and dispatches what arrives for it.
func (s *Server) attach(aor, terminal string) {
	if s.o.Switch == nil {
		return
	}
	s.mu.Lock()
	if s.lineTerm[aor] == terminal && s.lines[aor] != nil {
		s.mu.Unlock()
		return
	}
	old := s.lines[aor]
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	l, err := s.o.Switch.Attach(terminal)
	if err != nil {
		s.log.Warn("SIP phone not attached to the call switch", "aor", aor, "err", err)
		return
	}
	s.mu.Lock()
	s.lines[aor], s.lineTerm[aor] = l, terminal
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for m := range l.Recv() {
			s.dispatch(l, m)
		}
	}()
}

// detach ends a phone's line (its calls end).
func (s *Server) detach(aor string) {
	s.mu.Lock()
	l := s.lines[aor]
	delete(s.lines, aor)
	delete(s.lineTerm, aor)
	s.mu.Unlock()
	if l != nil {
		l.Close()
	}
}

// dispatch hands a message for a SIP terminal to its call.
func (s *Server) dispatch(l *call.Line, m signal.Msg) {
	s.mu.Lock()
	bc := s.calls[m.Call]
	aor := ""
	for a, al := range s.lines {
		if al == l {
			aor = a
		}
	}
	s.mu.Unlock()
	if m.Type == signal.TypeInvite {
		if bc != nil || aor == "" {
			l.Send(signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "call id in use"})
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.incoming(l, aor, m)
		}()
		return
	}
	if bc == nil {
		return
	}
	select {
	case bc.events <- m:
	default:
		s.m.dropped.WithLabelValues("bridge_queue").Inc()
	}
}

func newCallID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// onInvite bridges a call from a SIP phone to an irmv terminal.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if tag, _ := to.Params.Get("tag"); tag != "" {
			s.reinvite(req, tx)
			return
		}
	}
	caller := s.authorizeInvite(req, tx) // answers when it refuses
	if caller == nil {
		return
	}
	if !s.takeCall(caller.AOR) {
		s.respond(tx, req, 403, "Too Many Calls")
		return
	}
	defer s.endCall(caller.AOR)
	if s.o.Switch == nil || s.o.Resolve == nil {
		s.respond(tx, req, 501, "Not Implemented")
		return
	}
	offer, err := parseAudio(req.Body())
	if err != nil {
		s.respond(tx, req, 400, "Bad Request")
		return
	}
	if len(offer.codecs()) == 0 {
		s.respond(tx, req, 488, "Not Acceptable Here") // neither Opus nor G.711
		return
	}
	sec, err := parseSDES(req.Body())
	if err == nil && !s.sdesOK(req.Transport()) && len(sec.cryptos) > 0 {
		// Keys over a cleartext transport: plain RTP, or none.
		s.m.dropped.WithLabelValues("sdes_plain").Inc()
		sec.cryptos = nil
		if sec.savp() {
			err = errNoCrypto
		}
	}
	if err != nil {
		s.respond(tx, req, 488, "Not Acceptable Here") // RTP/SAVP without a crypto suite the node has
		return
	}
	line := s.lineFor(caller.AOR)
	if line == nil {
		s.respond(tx, req, 480, "Temporarily Unavailable")
		return
	}
	s.respond(tx, req, 100, "Trying")

	who, err := url.PathUnescape(req.Recipient.User) // "bob%20smith": a name
	if err != nil || who == "" {
		s.respond(tx, req, 404, "Not Found")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	target, _, err := s.o.Resolve(ctx, client.Query{Text: who, Timeout: resolveTimeout - time.Second})
	cancel()
	switch {
	case errors.Is(err, search.ErrAmbiguous):
		s.respond(tx, req, 485, "Ambiguous")
		return
	case errors.Is(err, search.ErrNotFound) || errors.Is(err, search.ErrBadQuery):
		s.respond(tx, req, 404, "Not Found")
		return
	case err != nil:
		s.respond(tx, req, 480, "Temporarily Unavailable")
		return
	case target.Terminal == caller.Terminal:
		s.respond(tx, req, 482, "Loop Detected")
		return
	case !target.Status.Callable():
		s.respond(tx, req, 486, "Busy Here")
		return
	}

	dlg, err := s.dialogUA(req.Transport()).ReadInvite(req, tx)
	if err != nil {
		s.respond(tx, req, 500, "Server Internal Error")
		return
	}
	defer dlg.Close()
	bc, err := s.newBridge(line, newCallID(), s.mediaIP(req), offer.addr)
	if err != nil {
		s.log.Warn("Bridge not set up", "err", err)
		dlg.Respond(500, "Server Internal Error", nil)
		return
	}
	bc.mu.Lock()
	bc.phoneRTCP = offer.rtcp
	bc.mu.Unlock()
	defer s.endBridgeCall(bc)
	bc.allowFrom(udpAddrOf(req.Source()))
	var codecs []media.Codec
	for _, c := range offer.codecs() {
		codecs = append(codecs, c.codec)
	}
	if err := s.startPeer(bc, caller.Terminal, nil, codecs); err != nil {
		s.log.Warn("Bridge not set up", "err", err)
		dlg.Respond(500, "Server Internal Error", nil)
		return
	}
	s.setSIPCall(bc, req.CallID().Value())
	s.setDialog(bc, dialogOf{id: dlg.ID, phone: sourceIP(req.Source()), flow: udpFlow(req.Transport(), req.Source()), srv: dlg})
	if err := s.answerSRTP(bc, sec); err != nil {
		dlg.Respond(488, "Not Acceptable Here", nil)
		return
	}

	desc, err := bc.peer.Offer()
	if err != nil {
		dlg.Respond(500, "Server Internal Error", nil)
		return
	}
	line.Send(signal.Msg{Type: signal.TypeInvite, Call: bc.id,
		To: &signal.Party{Node: target.Node, Terminal: target.Terminal}, Desc: &desc})

	// Ringing: until the callee answers, the phone cancels or gives up.
	ring := time.NewTimer(ringTimeout)
	defer ring.Stop()
	for answered := false; !answered; {
		select {
		case <-s.done:
			line.Send(signal.Msg{Type: signal.TypeHangup, Call: bc.id, Reason: "node shutting down"})
			dlg.Respond(503, "Service Unavailable", nil)
			return
		case <-tx.Done(): // CANCEL, or the transaction failed
			line.Send(signal.Msg{Type: signal.TypeHangup, Call: bc.id, Reason: "cancelled"})
			return
		case <-ring.C:
			line.Send(signal.Msg{Type: signal.TypeHangup, Call: bc.id, Reason: "no answer"})
			dlg.Respond(480, "Temporarily Unavailable", nil)
			return
		case m := <-bc.events:
			switch m.Type {
			case signal.TypeRinging:
				dlg.Respond(180, "Ringing", nil, s.contact(req))
			case signal.TypeCandidate:
				if m.Candidate != nil {
					bc.peer.AddCandidate(webrtc.ICECandidateInit(*m.Candidate))
				}
			case signal.TypeAccept:
				if m.Desc == nil || bc.peer.Accept(*m.Desc, target.Key) != nil {
					line.Send(signal.Msg{Type: signal.TypeHangup, Call: bc.id, Reason: "bad answer"})
					dlg.Respond(500, "Server Internal Error", nil)
					return
				}
				// The irmv side took one of the phone's codecs.
				c := bc.peer.Codec()
				pc := phoneCodec{c, offer.ptOf(c)}
				bc.setPhone(nil, pc, offer.dtmf, offer.dtmfHz)
				ip := bc.rtp.LocalAddr().(*net.UDPAddr)
				body := answerSDP(ip.IP, ip.Port, []phoneCodec{pc}, offer.dtmf, offer.dtmfHz, uint64(time.Now().Unix()), offer.rtcp.mux)
				res := sip.NewSDPResponseFromRequest(dlg.InviteRequest, bc.protect(body))
				res.AppendHeader(s.contact(req))
				if err := dlg.WriteResponse(res); err != nil {
					line.Send(signal.Msg{Type: signal.TypeHangup, Call: bc.id, Reason: "phone gone"})
					return
				}
				answered = true
				bc.mu.Lock()
				bc.sending = true
				bc.mu.Unlock()
			case signal.TypeBusy:
				dlg.Respond(486, "Busy Here", nil)
				return
			case signal.TypeReject:
				dlg.Respond(603, "Decline", nil)
				return
			case signal.TypeUnavailable:
				dlg.Respond(480, "Temporarily Unavailable", nil)
				return
			case signal.TypeHangup, signal.TypeError:
				dlg.Respond(480, "Temporarily Unavailable", nil)
				return
			}
		}
	}

	s.talk(line, bc, dlg)
}

// phoneDialog is the SIP side of an answered call, as the phone called
// (server session) or was called (client session).
type phoneDialog interface {
	Bye(context.Context) error
	Context() context.Context
}

// talk runs an answered call until either side hangs up, the media
// fails or the node shuts down, and tells the other side.
func (s *Server) talk(line *call.Line, bc *bridgeCall, dlg phoneDialog) {
	for {
		select {
		case <-s.done:
			line.Send(signal.Msg{Type: signal.TypeHangup, Call: bc.id, Reason: "node shutting down"})
			s.bye(dlg)
			return
		case <-dlg.Context().Done(): // BYE from the phone
			line.Send(signal.Msg{Type: signal.TypeHangup, Call: bc.id, Reason: "hangup"})
			return
		case <-bc.peer.Done():
			line.Send(signal.Msg{Type: signal.TypeHangup, Call: bc.id, Reason: "media failed"})
			s.bye(dlg)
			return
		case m := <-bc.events:
			switch {
			case m.Type == signal.TypeCandidate && m.Candidate != nil:
				bc.peer.AddCandidate(webrtc.ICECandidateInit(*m.Candidate))
			case signal.Ends(m.Type):
				s.bye(dlg)
				return
			}
		}
	}
}

func (s *Server) bye(dlg interface{ Bye(context.Context) error }) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dlg.Bye(ctx); err != nil {
		s.log.Debug("BYE to the phone failed", "err", err)
	}
}

// mediaIP is the address the bridge's RTP socket binds: the one the
// phone reached the SIP side on.
func (s *Server) mediaIP(req *sip.Request) net.IP {
	if ip := s.udp.LocalAddr().(*net.UDPAddr).IP; !ip.IsUnspecified() {
		return ip
	}
	// Listening on all addresses: the address the phone sent to.
	if ip := net.ParseIP(req.Recipient.Host); ip != nil && !ip.IsUnspecified() {
		return ip
	}
	return net.IPv4(127, 0, 0, 1)
}

// newBridge opens the RTP socket (on ip) of a call. phone is where the
// phone's RTP goes, when it calls; nil when the phone is called (see
// setPhone): then the bridge's candidates wait until release, so that the
// caller gets none before the accept. The WebRTC side comes with
// startPeer.
func (s *Server) newBridge(line *call.Line, id string, ip net.IP, phone *net.UDPAddr) (*bridgeCall, error) {
	conn, rtcpConn, err := listenPair(ip)
	if err != nil {
		return nil, err
	}
	bc := &bridgeCall{id: id, line: line, rtp: conn, rtcpPort: rtcpConn, events: make(chan signal.Msg, 256), firstRTP: make(chan struct{}),
		holding: phone == nil, phone: phone, dtmfPT: -1, log: s.log, m: s.m, dtmfq: make(chan dtmfKey, dtmfQueue), done: make(chan struct{})}
	bc.allowFrom(phone)
	bc.ssrc = newSSRC()
	if bc.rtcps, err = newRTCPSession(bc.ssrc, bc.sendRTCP); err != nil {
		conn.Close()
		rtcpConn.Close()
		return nil, err
	}
	s.mu.Lock()
	s.calls[bc.id] = bc
	s.mu.Unlock()
	s.wg.Add(5)
	go func() {
		defer s.wg.Done()
		bc.fromPhone()
	}()
	go func() {
		defer s.wg.Done()
		bc.readRTCPPort()
	}()
	go func() {
		defer s.wg.Done()
		bc.reportRTCP()
	}()
	go func() {
		defer s.wg.Done()
		bc.keepAlive(s.done)
	}()
	go func() {
		defer s.wg.Done()
		bc.sendDTMF()
	}()
	return bc, nil
}

// startPeer makes the WebRTC side of a call, negotiating codecs (the ones
// the phone has) and passing RTP through unchanged.
func (s *Server) startPeer(bc *bridgeCall, terminal string, peerICE []signal.ICEServer, codecs []media.Codec) error {
	var ice []signal.ICEServer
	if s.o.ICEServers != nil {
		ice = s.o.ICEServers(terminal)
	}
	ice = append(ice, peerICE...)
	peer, err := media.New(media.Options{
		ICEServers:    ice,
		PassThrough:   true,
		Codecs:        codecs,
		Logger:        s.log,
		OnCandidate:   bc.candidate,
		OnTrackPacket: bc.toPhone,
		OnControl:     bc.onControl,
		OnReport:      bc.foldReport,
	})
	if err != nil {
		return err
	}
	bc.mu.Lock()
	bc.peer = peer
	bc.mu.Unlock()
	return nil
}

// setPhone sets where the phone's RTP goes (nil: as before), the codec it
// passes and the phone's telephone-event payload type (-1: none).
func (bc *bridgeCall) setPhone(addr *net.UDPAddr, c phoneCodec, dtmfPT, dtmfHz int) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	bc.codec, bc.phonePT = c.codec, uint8(c.pt)
	bc.dtmfPT, bc.dtmfHz = dtmfPT, dtmfHz
	if bc.phone == nil {
		bc.phone = addr
	}
	bc.ptSet = true
	bc.allowFromLocked(addr)
}

// allowFrom adds where the phone's plain RTP may come from (nil: none).
func (bc *bridgeCall) allowFrom(a *net.UDPAddr) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	bc.allowFromLocked(a)
}

func (bc *bridgeCall) allowFromLocked(a *net.UDPAddr) {
	if a == nil {
		return
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if ok && !ip.IsUnspecified() && !slices.Contains(bc.phoneIPs, sourceKey(ip)) && len(bc.phoneIPs) < maxPhoneIPs {
		bc.phoneIPs = append(bc.phoneIPs, sourceKey(ip))
	}
}

// fromStranger reports whether a packet on a plain leg comes from an
// address that is not the phone's (counted, logged once a call): RTP
// injected by another host on the LAN, which latching would follow.
func (bc *bridgeCall) fromStranger(from net.Addr) bool {
	if bc.leg() != nil { // SRTP: only packets that authenticate count
		return false
	}
	var ip netip.Addr
	if ua, ok := from.(*net.UDPAddr); ok {
		ip, _ = netip.AddrFromSlice(ua.IP)
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if slices.Contains(bc.phoneIPs, sourceKey(ip)) {
		return false
	}
	if bc.m != nil {
		bc.m.dropped.WithLabelValues("rtp_source").Inc()
	}
	if !bc.strangers && bc.log != nil {
		bc.strangers = true
		bc.log.Info("SIP bridge: media from another address than the phone's dropped", "call", bc.id, "from", from.String())
	}
	return true
}

// candidate sends (or holds) one of the bridge's ICE candidates.
func (bc *bridgeCall) candidate(c webrtc.ICECandidateInit) {
	bc.mu.Lock()
	if bc.holding {
		bc.held = append(bc.held, c)
		bc.mu.Unlock()
		return
	}
	bc.mu.Unlock()
	bc.line.Send(signal.Msg{Type: signal.TypeCandidate, Call: bc.id, Candidate: (*signal.ICECandidate)(&c)})
}

// release sends the held candidates and stops holding.
func (bc *bridgeCall) release() {
	bc.mu.Lock()
	held := bc.held
	bc.held, bc.holding = nil, false
	bc.mu.Unlock()
	for i := range held {
		bc.line.Send(signal.Msg{Type: signal.TypeCandidate, Call: bc.id, Candidate: (*signal.ICECandidate)(&held[i])})
	}
}

func (s *Server) endBridgeCall(bc *bridgeCall) {
	s.mu.Lock()
	delete(s.calls, bc.id)
	if bc.sipCallID != "" && s.sipCalls[bc.sipCallID] == bc {
		delete(s.sipCalls, bc.sipCallID)
	}
	s.mu.Unlock()
	close(bc.done)
	bc.mu.Lock()
	peer := bc.peer
	bc.mu.Unlock()
	if peer != nil {
		peer.Close()
	}
	// keepAlive closes the RTP socket after a grace.
}

// fromPhone passes the phone's RTP to the WebRTC side unchanged but for
// the payload type (the track sets its own), its key presses as control
// messages, latching the phone's address to where its packets come from
// (symmetric RTP, for NATs; with SRTP only packets that authenticate
// count).
func (bc *bridgeCall) fromPhone() {
	buf, dec := make([]byte, maxRTP), make([]byte, maxRTP)
	for {
		n, from, err := bc.rtp.ReadFrom(buf)
		if err != nil {
			return
		}
		select {
		case <-bc.done: // the grace after the call: discarded
			continue
		default:
		}
		if bc.fromStranger(from) {
			continue
		}
		data := buf[:n]
		if isRTCP(data) {
			bc.fromPhoneRTCP(data, dec[:0], from, bc.rtp)
			continue
		}
		if leg := bc.leg(); leg != nil {
			if data, err = leg.decrypt(dec[:0], data); err != nil {
				continue
			}
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(data) != nil {
			continue
		}
		bc.mu.Lock()
		audio := bc.ptSet && pkt.PayloadType == bc.phonePT
		dtmf := bc.ptSet && bc.dtmfPT >= 0 && int(pkt.PayloadType) == bc.dtmfPT
		if ua, isUDP := from.(*net.UDPAddr); (audio || dtmf) && isUDP {
			bc.phone = ua
		}
		peer := bc.peer
		clock := uint32(bc.codec.ClockRate())
		bc.mu.Unlock()
		if audio || dtmf {
			bc.rtcps.received(data, pkt.SSRC, clock)
		}
		switch {
		case audio && peer != nil: // nil: a called phone's first packets
			peer.WriteRTP(&pkt)
		case dtmf:
			bc.fromPhoneDTMF(&pkt, peer)
		}
	}
}

// toPhone sends the irmv side's RTP to the phone, numbered on after the
// key presses the bridge put into the stream.
func (bc *bridgeCall) toPhone(pkt *rtp.Packet) {
	bc.once.Do(func() { close(bc.firstRTP) })
	select {
	case <-bc.done:
		return
	default:
	}
	bc.mu.Lock()
	to, pt, ok := bc.phone, bc.phonePT, bc.ptSet && bc.sending
	out := *pkt
	if bc.filled { // a talkspurt after the bridge's silence
		bc.seqOff = bc.outSeq + 1 - pkt.SequenceNumber
		bc.tsOff = bc.outTS + bc.step() - pkt.Timestamp
		bc.filled = false
		out.Marker = true
	}
	out.SequenceNumber += bc.seqOff
	out.Timestamp += bc.tsOff
	bc.outSeq, bc.outTS = out.SequenceNumber, out.Timestamp
	bc.lastOut = time.Now()
	bc.mu.Unlock()
	if !ok {
		return
	}
	out.PayloadType = pt
	out.SSRC = bc.ssrc
	// Header extensions (a browser's audio level, transport-wide
	// sequence numbers) were negotiated on the WebRTC leg only; some
	// phones (baresip 1.0) crash on them.
	out.Extension, out.ExtensionProfile, out.Extensions = false, 0, nil
	out.CSRC = nil
	bc.writePhone(&out, to)
}

// writePhone sends a packet to the phone at to (nil: nowhere yet),
// encrypted when the phone leg is SRTP.
func (bc *bridgeCall) writePhone(pkt *rtp.Packet, to *net.UDPAddr) {
	b, err := pkt.Marshal()
	if err != nil || to == nil {
		return
	}
	bc.mu.Lock()
	clock := uint32(bc.codec.ClockRate())
	bc.mu.Unlock()
	bc.rtcps.sent(&pkt.Header, pkt.Payload, clock)
	if leg := bc.leg(); leg != nil {
		if b, err = leg.encrypt(nil, b); err != nil {
			return
		}
	}
	bc.rtp.WriteTo(b, to)
}

// setSIPCall records the SIP Call-ID of a bridged call, for re-INVITEs.
func (s *Server) setSIPCall(bc *bridgeCall, callID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bc.sipCallID != "" && s.sipCalls[bc.sipCallID] == bc {
		delete(s.sipCalls, bc.sipCallID) // an INVITE sent again
	}
	bc.sipCallID = callID
	s.sipCalls[callID] = bc
}

// reinvite answers an INVITE within a bridged call's dialog (hold,
// resume, a new address): the media goes on, to the address and payload
// type the new offer names; the answer is the bridge's RTP again. The
// irmv side is not told: its media keeps flowing.
func (s *Server) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	bc := s.dialogCall(req, tx) // answers 481 when it is no call's
	if bc == nil {
		return
	}
	bc.mu.Lock()
	codec := bc.codec
	bc.mu.Unlock()
	offer, err := parseAudio(req.Body())
	pc := phoneCodec{codec, offer.ptOf(codec)}
	if err != nil || pc.pt < 0 || bc.reofferSRTP(req.Body()) != nil { // the call's codec stays
		s.respond(tx, req, 488, "Not Acceptable Here")
		return
	}
	if !offer.addr.IP.IsUnspecified() { // c=0.0.0.0: old-style hold
		bc.mu.Lock()
		bc.phone = offer.addr
		bc.phoneRTCP, bc.rtcpTo = offer.rtcp, nil
		bc.allowFromLocked(offer.addr)
		bc.phonePT = uint8(pc.pt)
		bc.dtmfPT, bc.dtmfHz = offer.dtmf, offer.dtmfHz
		bc.mu.Unlock()
	}
	ip := bc.rtp.LocalAddr().(*net.UDPAddr)
	res := sip.NewSDPResponseFromRequest(req, bc.protect(answerSDP(ip.IP, ip.Port, []phoneCodec{pc}, offer.dtmf, offer.dtmfHz, uint64(time.Now().Unix()), offer.rtcp.mux)))
	res.AppendHeader(s.contact(req))
	if err := tx.Respond(res); err != nil {
		s.log.Debug("re-INVITE answer not sent", "err", err)
		return
	}
	s.m.reinvites.Inc()
}
