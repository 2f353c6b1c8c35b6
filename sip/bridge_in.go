package sip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call"
	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
)

// Payload types the bridge offers a phone: Opus's, G.711's static ones.
const (
	offerOpusPT = 111
	offerDTMFPT = 101
)

// maxHeldCandidates bounds the caller's candidates kept while the phone
// rings.
const maxHeldCandidates = 64

// incoming bridges an irmv call to a registered SIP phone: it INVITEs the
// phone's contact over the flow it registered from, offering the codecs of
// the caller's offer that it passes through (Opus first, then G.711), maps
// the phone's answer back, and answers the caller's offer with the codec
// the phone took, passing RTP through unchanged.
func (s *Server) incoming(l *call.Line, aor string, inv signal.Msg) {
	refuse := func(typ, reason string) { l.Send(signal.Msg{Type: typ, Call: inv.Call, Reason: reason}) }
	s.mu.Lock()
	b := s.bindings[aor]
	s.mu.Unlock()
	if b == nil || inv.Desc == nil {
		refuse(signal.TypeUnavailable, "SIP phone not registered")
		return
	}
	contact := sip.Uri{}
	if err := sip.ParseUri(b.Contact, &contact); err != nil {
		refuse(signal.TypeUnavailable, "SIP phone has no usable contact")
		return
	}
	var offer []phoneCodec
	if have, err := media.SDPCodecs(inv.Desc.SDP); err == nil {
		for _, c := range []phoneCodec{{media.CodecOpus, offerOpusPT}, {media.CodecPCMU, 0}, {media.CodecPCMA, 8}} {
			for _, h := range have {
				if h.Codec == c.codec {
					offer = append(offer, c)
				}
			}
		}
	}
	if len(offer) == 0 {
		refuse(signal.TypeError, "no codec a SIP phone takes (Opus, PCMU, PCMA)")
		return
	}
	ip := localIPFor(b.Source)
	bc, err := s.newBridge(l, inv.Call, ip, nil)
	if err != nil {
		refuse(signal.TypeError, "bridge failed")
		return
	}
	defer s.endBridgeCall(bc)
	bc.allowFrom(udpAddrOf(b.Source))
	var key []byte
	if inv.From != nil {
		key = inv.From.Key
	}
	if key != nil { // before the phone rings; Answer checks it again
		if err := inv.Desc.Verify(key); err != nil {
			refuse(signal.TypeError, "bad offer")
			return
		}
	}

	port := bc.rtp.LocalAddr().(*net.UDPAddr).Port
	body := answerSDP(ip, port, offer, offerDTMFPT, 8000, uint64(time.Now().Unix()), false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sess *sipgo.DialogClientSession
	defer func() {
		if sess != nil {
			sess.Close()
		}
	}()
	answered := make(chan error, 1)
	// invite sends the INVITE (SRTP offered on RTP/AVP, or with savp on
	// RTP/SAVP) and waits for the answer in the background.
	sips := contact.Scheme == "sips"
	invite := func(savp bool) error {
		req := sip.NewRequest(sip.INVITE, contact)
		req.SetDestination(b.Source)
		req.SetTransport(b.Transport)
		from := "<" + s.nodeURI("irmv", ip, b.Transport, sips) + ">"
		if inv.From != nil {
			name, user := callerNames(inv.From)
			from = `"` + name + `" <` + s.nodeURI(user, ip, b.Transport, sips) + ">"
		}
		req.AppendHeader(sip.NewHeader("From", from+";tag="+newCallID()[:16]))
		req.AppendHeader(sip.NewHeader("To", "<"+s.nodeURI(aor, ip, b.Transport, sips)+">"))
		req.AppendHeader(sip.NewHeader("Contact", "<"+s.nodeURI("irmv", ip, b.Transport, sips)+">"))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		if s.sdesOK(b.Transport) {
			req.SetBody(bc.offerSRTP(body, savp))
		} else {
			req.SetBody(body)
		}
		ss, err := s.dialogUA(b.Transport).WriteInvite(ctx, req)
		if err != nil {
			return err
		}
		if sess != nil {
			sess.Close()
		}
		sess = ss
		s.setSIPCall(bc, req.CallID().Value())
		go func() {
			answered <- ss.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
				if res.IsProvisional() {
					l.Heard(inv.Call) // the phone is there, however long it rings
				}
				if res.StatusCode == 180 || res.StatusCode == 183 {
					l.Send(signal.Msg{Type: signal.TypeRinging, Call: inv.Call})
				}
				return nil
			}})
		}()
		return nil
	}
	savp := false
	if strings.EqualFold(b.Transport, "TLS") && !s.hasFlow(b.Source) {
		// The phone's connection closed: it is not dialled back (behind
		// a NAT it could not be, and it has no certificate to check).
		refuse(signal.TypeUnavailable, "SIP phone's TLS connection closed")
		return
	}
	if err := invite(savp); err != nil {
		refuse(signal.TypeUnavailable, "SIP phone unreachable")
		return
	}

	// Ringing: the phone's answer, or the caller giving up. The caller's
	// candidates wait for the WebRTC side, which takes the phone's codec.
	var held []webrtc.ICECandidateInit
	ring := time.NewTimer(ringTimeout)
	defer ring.Stop()
wait:
	for {
		select {
		case err = <-answered:
			// A phone that takes SRTP only on RTP/SAVP refuses the
			// best-effort offer with 488: it is asked again with RTP/SAVP.
			var de *sipgo.ErrDialogResponse
			if !savp && errors.As(err, &de) && de.Res.StatusCode == 488 && s.sdesOK(b.Transport) {
				savp = true
				if invite(savp) == nil {
					continue
				}
			}
			break wait
		case <-ring.C:
			cancel()
			<-answered
			refuse(signal.TypeHangup, "no answer")
			return
		case <-s.done:
			cancel()
			<-answered
			refuse(signal.TypeHangup, "node shutting down")
			return
		case m := <-bc.events:
			switch {
			case m.Type == signal.TypeCandidate && m.Candidate != nil:
				if len(held) < maxHeldCandidates {
					held = append(held, webrtc.ICECandidateInit(*m.Candidate))
				}
			case signal.Ends(m.Type): // the caller hung up: CANCEL
				cancel()
				<-answered
				return
			}
		}
	}
	if err != nil {
		var de *sipgo.ErrDialogResponse
		code := 0
		if errors.As(err, &de) {
			code = de.Res.StatusCode
		}
		switch {
		case code == 486 || code == 600:
			refuse(signal.TypeBusy, "")
		case code == 603:
			refuse(signal.TypeReject, "")
		default:
			refuse(signal.TypeUnavailable, "SIP phone did not answer")
		}
		return
	}
	their, err := parseAudio(sess.InviteResponse.Body())
	var took phoneCodec
	for _, c := range their.codecs() {
		for _, o := range offer {
			if c.codec == o.codec && took.codec == media.CodecUnknown {
				took = c
			}
		}
	}
	if err != nil || took.codec == media.CodecUnknown {
		s.bye(sess)
		refuse(signal.TypeHangup, "SIP phone answered with no codec offered")
		return
	}
	if err := s.acceptSRTP(bc, sess.InviteResponse.Body()); err != nil {
		s.bye(sess)
		refuse(signal.TypeHangup, "SIP phone answered with unusable SRTP")
		return
	}
	bc.setPhone(their.addr, took, their.dtmf, their.dtmfHz)
	bc.mu.Lock()
	bc.phoneRTCP = their.rtcp
	bc.mu.Unlock()
	bc.mu.Lock()
	bc.sending = true // the phone answered
	bc.mu.Unlock()
	s.setDialog(bc, dialogOf{id: sess.ID, uac: true, phone: sourceIP(b.Source), flow: udpFlow(b.Transport, b.Source), cli: sess})
	if err := sess.Ack(ctx); err != nil {
		refuse(signal.TypeHangup, "SIP phone gone")
		return
	}
	if err := s.startPeer(bc, b.Terminal, inv.PeerICEServers, []media.Codec{took.codec}); err != nil {
		s.bye(sess)
		refuse(signal.TypeError, "bridge failed")
		return
	}
	for _, c := range held {
		bc.peer.AddCandidate(c)
	}
	answer, err := bc.peer.Answer(*inv.Desc, key)
	if err != nil {
		s.bye(sess)
		refuse(signal.TypeError, "bad offer")
		return
	}
	l.Send(signal.Msg{Type: signal.TypeAccept, Call: inv.Call, Desc: &answer})
	bc.release()
	s.talk(l, bc, sess)
}

// callerNames is how an irmv caller shows on a SIP phone: its name as
// display name, its phone number, else uid, else handle as user part.
func callerNames(p *signal.Party) (display, user string) {
	display = strings.NewReplacer(`"`, "", `\`, "").Replace(p.Identifiers.Name)
	user = p.Identifiers.Phone
	if user == "" {
		user = p.Identifiers.UID
	}
	if user == "" || validUser(user) != nil {
		user = p.Terminal
	}
	if display == "" {
		display = user
	}
	return display, user
}

// udpAddrOf is hostport as a UDP address (nil when it is none).
func udpAddrOf(hostport string) *net.UDPAddr {
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}

// nodeURI is the node's SIP URI for user as a phone reached over
// transport sees it: its TLS port and transport=tls (or sips:) over TLS,
// else its UDP/TCP port.
func (s *Server) nodeURI(user string, ip net.IP, transport string, sips bool) string {
	if s.tls == nil || !strings.EqualFold(transport, "TLS") {
		return "sip:" + user + "@" + net.JoinHostPort(ip.String(), portOf(s.udp.LocalAddr()))
	}
	hp := net.JoinHostPort(ip.String(), portOf(s.tls.Addr()))
	if sips {
		return "sips:" + user + "@" + hp
	}
	return "sip:" + user + "@" + hp + ";transport=tls"
}

// contact is the node's Contact for the dialog of a phone's INVITE: the
// address of the node that the phone reaches (the listener's, or when
// that is unspecified this machine's toward the phone; not the listen
// address itself, else in-dialog requests of a phone on the LAN would go
// to 127.0.0.1), over the INVITE's transport and scheme.
func (s *Server) contact(req *sip.Request) *sip.ContactHeader {
	var ip net.IP
	if strings.EqualFold(req.Transport(), "TLS") && s.tls != nil {
		ip = s.tls.Addr().(*net.TCPAddr).IP
	} else {
		ip = s.udp.LocalAddr().(*net.UDPAddr).IP
	}
	if ip.IsUnspecified() {
		ip = localIPFor(req.Source())
	}
	h := &sip.ContactHeader{}
	if err := sip.ParseUri(s.nodeURI("irmv", ip, req.Transport(), req.Recipient.Scheme == "sips"), &h.Address); err != nil {
		h.Address = sip.Uri{Scheme: "sip", User: "irmv", Host: ip.String()} // never: nodeURI's output parses
	}
	return h
}

// sdesOK reports whether SRTP keys may be sent over transport.
func (s *Server) sdesOK(transport string) bool {
	return !s.o.SDESOverTLSOnly || strings.EqualFold(transport, "TLS")
}

// hasFlow reports whether the phone's TLS connection from source is open.
func (s *Server) hasFlow(source string) bool {
	c, err := s.srv.TransportLayer().GetConnection("tls", source)
	return err == nil && c != nil
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// localIPFor is this machine's address toward hostport (no packet is
// sent): where the phone reaches the bridge.
func localIPFor(hostport string) net.IP {
	c, err := net.Dial("udp", hostport)
	if err != nil {
		return net.IPv4(127, 0, 0, 1)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP
}
