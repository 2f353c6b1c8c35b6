package phone

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/client"
)

// A call moves to another route make-before-break: the caller brings up a
// second WebRTC peer (a leg) for the same call beside the running one,
// relay-only for the relay (pion applies its ICE transport policy only
// when a peer is made, not on an ICE restart), negotiates it in "update"
// messages tagged with the leg's number, and once it is connected and its
// chat channel open, moves play, recording and chat over to it (media
// Options.Continues) and closes the old one. The callee does the same when
// its side of the new leg is up. A leg that does not come up within
// RerouteTimeout is abandoned; the call stays where it was.

// leg is one WebRTC peer of a call: the first (number 0) or one brought up
// to move the call to another route.
type leg struct {
	n      int
	route  string    // the route asked for; "" for the first leg
	reason string    // why the call moves to it
	at     time.Time // when it was started

	// Guarded by Call.mu.
	peer          *media.Peer
	sent          bool // our description went out: candidates may follow
	localPending  []signal.ICECandidate
	remotePending []signal.ICECandidate
}

// maxLegs bounds the legs of one call (route changes), as the nodes do.
const maxLegs = signal.MaxLeg

// onLocalCandidate sends a candidate gathered for leg l, or holds it until
// l's description has gone out.
func (c *Call) onLocalCandidate(l *leg, ci signal.ICECandidate) {
	c.mu.Lock()
	if !l.sent {
		l.localPending = append(l.localPending, ci)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if err := c.send(signal.Msg{Type: signal.TypeCandidate, Candidate: &ci, Leg: l.n}); err != nil {
		c.p.log.Debug("Sending a candidate failed", "call", c.id, "err", err)
	}
}

// descriptionSent lets l's candidates flow and sends those held back.
func (c *Call) descriptionSent(l *leg) {
	c.mu.Lock()
	l.sent = true
	pending := l.localPending
	l.localPending = nil
	c.mu.Unlock()
	for i := range pending {
		if err := c.send(signal.Msg{Type: signal.TypeCandidate, Candidate: &pending[i], Leg: l.n}); err != nil {
			c.p.log.Debug("Sending a candidate failed", "call", c.id, "err", err)
		}
	}
}

// addRemote adds the remote candidate of m to its leg, or queues it until
// the leg's peer exists. Candidates of legs that are gone are dropped.
func (c *Call) addRemote(m signal.Msg) {
	if m.Candidate == nil {
		return
	}
	c.mu.Lock()
	var l *leg
	switch {
	case m.Leg == c.cur.n:
		l = c.cur
	case c.next != nil && m.Leg == c.next.n:
		l = c.next
	default:
		c.mu.Unlock()
		c.p.log.Debug("Candidate for another leg dropped", "call", c.id, "leg", m.Leg)
		return
	}
	peer := l.peer
	if peer == nil {
		if len(l.remotePending) < 64 {
			l.remotePending = append(l.remotePending, *m.Candidate)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if err := peer.AddCandidate(webrtc.ICECandidateInit(*m.Candidate)); err != nil && !errors.Is(err, media.ErrClosed) {
		c.p.log.Debug("Remote candidate refused", "call", c.id, "candidate", m.Candidate.Candidate, "err", err)
	}
}

// newPeer creates the WebRTC peer of leg l with the ICE servers given,
// continuing the call of prev if that is not nil, and adds the queued
// candidates.
func (c *Call) newPeer(l *leg, relayOnly bool, servers []signal.ICEServer, prev *media.Peer) (*media.Peer, error) {
	p := c.p
	peer, err := media.New(media.Options{
		ICEServers:          servers,
		RelayOnly:           relayOnly,
		SettingEngine:       p.o.SettingEngine,
		RelayAcceptanceWait: p.o.RelayAcceptanceWait,
		Key:                 p.key,
		OnCandidate:         func(ci webrtc.ICECandidateInit) { c.onLocalCandidate(l, signal.ICECandidate(ci)) },
		OnText:              func(s string) { c.emit(client.Event{Type: client.EventText, Text: s}) },
		OnControl:           c.onControl,
		Logger:              slog.New(pionQuieter{p.log.Handler()}).With("call", c.id, "leg", l.n),
		Continues:           prev,
		Codecs:              c.codecs,
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	l.peer = peer
	pending := l.remotePending
	l.remotePending = nil
	c.mu.Unlock()
	for i := range pending {
		if err := peer.AddCandidate(webrtc.ICECandidateInit(pending[i])); err != nil && !errors.Is(err, media.ErrClosed) {
			c.p.log.Debug("Remote candidate refused", "call", c.id, "err", err)
		}
	}
	return peer, nil
}

// routes says which routes the call may move to: direct unless either
// side is relay-only, relayed with a TURN server of our node, and
// relayed-peer with one of the other node (not for a private phone: that
// node, which its peer chose, would learn its address).
func (c *Call) routes() map[string]bool {
	return map[string]bool{
		signal.RouteDirect:      !c.relayOnly && !c.remote.Private,
		signal.RouteRelayed:     hasTURN(c.p.iceConfig()),
		signal.RouteRelayedPeer: !c.p.o.RelayOnly && hasTURN(c.peerICE),
	}
}

// routeName is the route of leg l when its ICE pair is on route measured:
// a relayed pair of a leg made for the other node's relay is that route.
func routeName(l *leg, measured string) string {
	if measured == signal.RouteRelayed && l.route == signal.RouteRelayedPeer {
		return signal.RouteRelayedPeer
	}
	return measured
}

// legServers is what a leg for route uses: relay-only for the relayed
// routes, and the other node's relay instead of ours for the caller's
// side of relayed-peer (the callee's side uses its own: the same relay).
func (c *Call) legServers(route string) (relayOnly bool, servers []signal.ICEServer) {
	servers = c.p.iceConfig()
	if route == signal.RouteRelayedPeer && c.outgoing {
		servers = c.peerICE
	}
	return c.relayOnly || route == signal.RouteRelayed || route == signal.RouteRelayedPeer, servers
}

// answerServers is what the callee's first leg uses: its own node's
// servers, and when that node is behind a NAT (it borrowed a public
// node's relay: a foreign user's credentials, turn.ForeignPrefix) the
// caller's node's too (peerICE). Borrowed credentials relay only to
// their relay's own addresses, so two terminals behind NATs that no
// check punches through meet on the caller's side's relay. A private
// phone keeps to its own node's.
func (c *Call) answerServers() []signal.ICEServer {
	own := c.p.iceConfig()
	if c.p.o.RelayOnly || len(c.peerICE) == 0 || !borrowed(own) {
		return own
	}
	return append(append([]signal.ICEServer(nil), own...), c.peerICE...)
}

// borrowed says whether servers hold another node's relay lent to ours.
func borrowed(servers []signal.ICEServer) bool {
	for _, s := range servers {
		if _, user, ok := strings.Cut(s.Username, ":"); ok && strings.HasPrefix(user, turn.ForeignPrefix) {
			return true
		}
	}
	return false
}

// curLeg is the leg that carries the call.
func (c *Call) curLeg() *leg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// nextLeg is the leg being brought up, nil if none.
func (c *Call) nextLeg() *leg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// closeLater closes a peer without holding up the live loop; finish waits.
func (c *Call) closeLater(peer *media.Peer) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := peer.Close(); err != nil {
			c.p.log.Debug("Closing a leg", "call", c.id, "err", err)
		}
	}()
}

// abandon drops the leg being brought up; the call stays on its current
// leg. It returns the leg, nil if there was none.
func (c *Call) abandon() *leg {
	c.mu.Lock()
	l := c.next
	c.next = nil
	c.mu.Unlock()
	if l != nil && l.peer != nil {
		c.closeLater(l.peer)
	}
	return l
}

// startLeg (caller) brings up a leg for route to and offers it in an
// update.
func (c *Call) startLeg(to, why string, now time.Time) error {
	c.abandon()
	c.mu.Lock()
	if c.legs >= maxLegs {
		c.mu.Unlock()
		return fmt.Errorf("%d route changes in one call", maxLegs)
	}
	c.legs++
	l := &leg{n: c.legs, route: to, reason: why, at: now}
	cur := c.cur
	c.next = l
	c.mu.Unlock()
	relayOnly, servers := c.legServers(to)
	peer, err := c.newPeer(l, relayOnly, servers, cur.peer)
	if err != nil {
		return err
	}
	offer, err := peer.Offer()
	if err != nil {
		return err
	}
	c.p.log.Info("Rerouting", "call", c.id, "leg", l.n, "to", to, "reason", why)
	if err := c.send(signal.Msg{Type: signal.TypeUpdate, Leg: l.n, Route: to, Desc: &offer, Reason: why}); err != nil {
		return err
	}
	c.descriptionSent(l)
	return nil
}

// acceptLeg (callee) answers the offer of a new leg.
func (c *Call) acceptLeg(m signal.Msg) error {
	c.abandon()
	l := &leg{n: m.Leg, route: m.Route, reason: m.Reason, at: time.Now()}
	c.mu.Lock()
	cur := c.cur
	c.next = l
	c.legs = max(c.legs, m.Leg)
	c.mu.Unlock()
	relayOnly, servers := c.legServers(m.Route)
	peer, err := c.newPeer(l, relayOnly, servers, cur.peer)
	if err != nil {
		return err
	}
	answer, err := peer.Answer(*m.Desc, c.remoteKey())
	if err != nil {
		return err
	}
	if err := c.send(signal.Msg{Type: signal.TypeUpdate, Leg: l.n, Desc: &answer}); err != nil {
		return err
	}
	c.descriptionSent(l)
	return nil
}

// takeOver makes the next leg carry the call, emits "route" and closes the
// old leg; it returns the new peer (nil if no leg was pending).
func (c *Call) takeOver() *media.Peer {
	c.mu.Lock()
	old, l := c.cur, c.next
	if l == nil {
		c.mu.Unlock()
		return nil
	}
	c.cur, c.next = l, nil
	c.mu.Unlock()
	e := c.sw.tookOver(routeName(l, l.peer.Route()), l.reason)
	c.p.log.Info("Route changed", "call", c.id, "leg", l.n, "from", e.From, "to", e.To, "took", time.Since(l.at))
	c.emit(e)
	if old.peer != nil {
		c.closeLater(old.peer)
	}
	return l.peer
}

// rejoined handles a rejoin of the call (its signalling path changed:
// either side moved to another node or reconnected): the caller moves the
// media to a new leg on the route it is on, make-before-break, so that
// the side that moved gathers candidates for its new addresses (an ICE
// restart); the old leg carries the call until the new one is up.
func (c *Call) rejoined(now time.Time) {
	if !c.outgoing {
		return // the caller offers
	}
	if err := c.startLeg(c.sw.rejoinRoute(c.routes()), ReasonMoved, now); err != nil {
		c.p.log.Warn("Moving the call after a rejoin failed", "call", c.id, "err", err)
		c.abandon()
	}
	c.sw.mon.settle()
}

// ReasonMoved is the Reason of the route event of a call moved to a new
// leg because a side moved to another node or address.
const ReasonMoved = "moved"

// onUpdate takes a renegotiation: an offer of a new leg (callee), the
// answer to ours (caller), or an offer for the current leg such as an ICE
// restart. It returns false if the call ended.
func (c *Call) onUpdate(m signal.Msg) bool {
	if m.Desc == nil {
		return true
	}
	c.mu.Lock()
	cur, next := c.cur, c.next
	c.mu.Unlock()
	var err error
	switch {
	case m.Desc.Type == "offer" && !c.outgoing && m.Leg > cur.n && (next == nil || m.Leg >= next.n):
		err = c.acceptLeg(m)
		if err != nil {
			c.abandon()
		}
	case m.Desc.Type == "offer" && !c.outgoing && m.Leg == cur.n:
		c.mu.Lock()
		cur.sent = false
		c.mu.Unlock()
		var answer signal.Description
		answer, err = cur.peer.Answer(*m.Desc, c.remoteKey())
		if err == nil {
			c.sw.updateWhy = m.Reason
			err = c.send(signal.Msg{Type: signal.TypeUpdate, Leg: cur.n, Desc: &answer})
		}
		c.descriptionSent(cur)
	case m.Desc.Type == "answer" && c.outgoing && next != nil && m.Leg == next.n:
		err = next.peer.Accept(*m.Desc, c.remoteKey())
	case m.Desc.Type == "answer" && c.outgoing && m.Leg == cur.n:
		err = cur.peer.Accept(*m.Desc, c.remoteKey())
	default:
		return true // a leg that is gone; glare cannot happen: only the caller offers
	}
	if errors.Is(err, signal.ErrBadFingerprintSig) || errors.Is(err, signal.ErrFingerprintMismatch) {
		c.emit(client.Event{Type: client.EventWarning, Reason: "the renegotiation does not verify: " + err.Error()})
		c.finish("identity", true)
		return false
	}
	if err != nil {
		c.p.log.Warn("Renegotiation failed", "call", c.id, "leg", m.Leg, "err", err)
		c.emit(client.Event{Type: client.EventWarning, Reason: "renegotiation: " + err.Error()})
	}
	return true
}
