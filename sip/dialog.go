package sip

import (
	"net/netip"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// dialogOf is what ties a bridged call to its SIP dialog: in-dialog
// requests must name it (Call-ID and both tags; the node's tag is random)
// and come from the phone's address.
type dialogOf struct {
	id    string     // sipgo's dialog ID
	uac   bool       // the node sent the INVITE
	phone netip.Addr // the phone's source address
	flow  string     // and port (host:port), over UDP
	// The session: srv when the phone called, cli when it was called.
	srv *sipgo.DialogServerSession
	cli *sipgo.DialogClientSession
}

// setDialog records the dialog of a bridged call once it is established.
func (s *Server) setDialog(bc *bridgeCall, d dialogOf) {
	s.mu.Lock()
	defer s.mu.Unlock()
	bc.dialog = d
}

// dialogCall finds the bridged call an in-dialog request (BYE, re-INVITE)
// belongs to. When there is none, or the request is not from the call's
// phone, it answers 481 (counted) and returns nil.
func (s *Server) dialogCall(req *sip.Request, tx sip.ServerTransaction) *bridgeCall {
	bc, _ := s.matchDialog(req)
	if bc == nil {
		s.m.noDialog.WithLabelValues(string(req.Method)).Inc()
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}
	return bc
}

// matchDialog is the bridged call an in-dialog request belongs to and
// its dialog; nil when none, or when the request is not from its phone.
func (s *Server) matchDialog(req *sip.Request) (*bridgeCall, dialogOf) {
	s.mu.Lock()
	bc := s.sipCalls[req.CallID().Value()]
	var d dialogOf
	if bc != nil {
		d = bc.dialog
	}
	s.mu.Unlock()
	id, err := sip.DialogIDFromRequestUAS(req)
	if d.uac {
		id, err = sip.DialogIDFromRequestUAC(req)
	}
	if bc == nil || err != nil || d.id == "" || id != d.id || sourceIP(req.Source()) != d.phone {
		return nil, d
	}
	return bc, d
}

// onAck confirms the dialog of a call the phone placed.
func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if bc, d := s.matchDialog(req); bc != nil && d.srv != nil {
		d.srv.ReadAck(req, tx)
	}
}

// onBye ends the call of the dialog a BYE names.
func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	bc, d := s.matchDialog(req)
	var err error
	switch {
	case bc != nil && d.srv != nil:
		err = d.srv.ReadBye(req, tx)
	case bc != nil && d.cli != nil:
		err = d.cli.ReadBye(req, tx)
	}
	if bc == nil || err != nil {
		s.m.noDialog.WithLabelValues(string(req.Method)).Inc()
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
	}
}

// onCancel answers a CANCEL that matches no pending INVITE (sipgo's
// transaction layer takes those that do: 200, then 487 for the INVITE).
func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	s.m.noDialog.WithLabelValues(string(req.Method)).Inc()
	s.respond(tx, req, 481, "Call/Transaction Does Not Exist")
}

// Limits of the calls phones place: each holds an RTP port and a WebRTC
// peer from the INVITE on, ringing for up to 90 s.
const (
	// MaxCallsPerPhone caps the calls one phone (AOR) places at a time.
	MaxCallsPerPhone = 4
	// MaxPhoneCalls caps the calls all phones place at a time.
	MaxPhoneCalls = 256
)

// takeCall counts a call aor places, or refuses it (counted, logged)
// when aor or all phones are at their maximum.
func (s *Server) takeCall(aor string) bool {
	s.mu.Lock()
	ok := s.placing[aor] < MaxCallsPerPhone && s.placingAll < MaxPhoneCalls
	if ok {
		s.placing[aor]++
		s.placingAll++
	}
	s.mu.Unlock()
	if !ok {
		s.m.dropped.WithLabelValues("calls").Inc()
		s.log.Info("SIP call refused: too many calls", "aor", aor, "per_phone", MaxCallsPerPhone, "all", MaxPhoneCalls)
	}
	return ok
}

// endCall ends a call counted by takeCall.
func (s *Server) endCall(aor string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.placingAll--
	if s.placing[aor]--; s.placing[aor] <= 0 {
		delete(s.placing, aor)
	}
}

// udpFlow is source when transport is UDP, else "".
func udpFlow(transport, source string) string {
	if strings.EqualFold(transport, "UDP") {
		return source
	}
	return ""
}
