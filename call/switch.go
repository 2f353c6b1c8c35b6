package call

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/wire"
	"github.com/irmv/irmv/record"
)

// Defaults.
const (
	DefaultRingTimeout = 60 * time.Second
	// DefaultAnswerTimeout is Options.AnswerTimeout's default: a phone
	// says ringing (or busy) at once.
	DefaultAnswerTimeout = 5 * time.Second
	helloTimeout         = 10 * time.Second
	dialTimeout          = 10 * time.Second
	sendQueue            = 128
	// Each terminal may send this many messages a second (burst below).
	msgRate  = 50
	msgBurst = 200
	// maxCalls bounds calls in progress through one node.
	maxCalls = 10000
)

// Directory is what the Switch needs from the register of hosted terminals.
type Directory interface {
	Authorize(terminal, token string) error
	Get(terminal string) (client.Terminal, error)
	Heartbeat(terminal string) (client.Ack, error)
	// Record is a terminal's signed record (a rejoin through another
	// node carries it as proof).
	Record(terminal string) (*record.Record, error)
	// SetConnected is told when a terminal's WebSocket opens and closes.
	SetConnected(terminal string, up bool)
}

// Options configure a Switch.
type Options struct {
	Host      host.Host // required
	Directory Directory // required
	// ICEServers gives a terminal its STUN/TURN servers with fresh
	// credentials; nil: none (host candidates only).
	ICEServers func(terminal string) []signal.ICEServer
	// PeerICEServers gives the terminals of another node, in a call with
	// one of ours, this node's STUN/TURN servers with fresh credentials
	// (signal.Msg PeerICEServers, sent with the invite or accept of our
	// terminal); nil: none.
	PeerICEServers func(remote peer.ID) []signal.ICEServer
	// ICERefresh is how often a connected terminal is sent a new welcome
	// with fresh ICEServers, so that short-lived credentials stay usable
	// for the calls it makes later; 0: never.
	ICERefresh time.Duration
	// RingTimeout ends calls not accepted in time; 0: DefaultRingTimeout.
	RingTimeout time.Duration
	// AnswerTimeout ends a call as unavailable, and drops the callee's
	// WebSocket, when a terminal of ours that was sent an invite sends
	// nothing for it in time (a phone that vanished without closing its
	// connection); 0: DefaultAnswerTimeout.
	AnswerTimeout time.Duration
	Registerer    prometheus.Registerer // may be nil
	Logger        *slog.Logger          // nil: slog.Default()
}

// Switch relays call signalling. It is safe for concurrent use.
type Switch struct {
	o   Options
	log *slog.Logger
	m   *metrics

	mu       sync.Mutex
	sessions map[string]*session // by terminal handle
	calls    map[string]*callState
	inviters map[peer.ID]*rate.Limiter // new call streams per remote node
	callees  map[string]*rate.Limiter  // invites offered per local terminal
	pairs    map[string]*rate.Limiter  // invites offered per remote node and local terminal
	dialing  map[string]*dial          // invites waiting for their stream, by call
	closed   bool

	ctx    context.Context // ends at Close; owned, not passed in
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// NewSwitch starts answering signal.Protocol streams. Close stops it.
func NewSwitch(o Options) (*Switch, error) {
	if o.Host == nil || o.Directory == nil {
		return nil, errors.New("call.Options: Host and Directory must be set")
	}
	if o.RingTimeout == 0 {
		o.RingTimeout = DefaultRingTimeout
	}
	if o.AnswerTimeout == 0 {
		o.AnswerTimeout = DefaultAnswerTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Switch{
		o: o, log: o.Logger, m: newMetrics(o.Registerer),
		sessions: map[string]*session{}, calls: map[string]*callState{}, inviters: map[peer.ID]*rate.Limiter{},
		callees: map[string]*rate.Limiter{}, pairs: map[string]*rate.Limiter{},
		dialing: map[string]*dial{},
		ctx:     ctx, cancel: cancel,
	}
	o.Host.SetStreamHandler(signal.Protocol, s.handleStream)
	return s, nil
}

// Close hangs up every call, closes every terminal WebSocket and waits.
// Only the first call acts.
func (s *Switch) Close() error {
	s.once.Do(func() {
		s.o.Host.RemoveStreamHandler(signal.Protocol)
		s.mu.Lock()
		s.closed = true
		for _, d := range s.dialing {
			d.stop()
		}
		calls := make([]*callState, 0, len(s.calls))
		for _, c := range s.calls {
			calls = append(calls, c)
		}
		sessions := make([]*session, 0, len(s.sessions))
		for _, ss := range s.sessions {
			sessions = append(sessions, ss)
		}
		s.mu.Unlock()
		for _, c := range calls {
			s.end(c, nil, signal.Msg{Type: signal.TypeHangup, Call: c.id, Reason: "node shutting down"})
		}
		for _, ss := range sessions {
			ss.close(websocket.StatusGoingAway, "node shutting down")
		}
		// The hangups above are still queued: cancelling s.ctx now would
		// close the WebSockets before they are written.
		for _, ss := range sessions {
			<-ss.flushed
		}
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

// begin counts a goroutine in s.wg unless the Switch is closed: an Add
// racing with Close's Wait would be a misuse of the WaitGroup.
func (s *Switch) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Sessions is the number of terminals connected by WebSocket.
func (s *Switch) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Connected reports whether a terminal has a WebSocket open.
func (s *Switch) Connected(terminal string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[terminal] != nil
}

// Moved tells a terminal's WebSocket that its registration moved to node
// (a newer one there replaced it here) and closes the WebSocket. Its
// calls are kept for RejoinGrace, like those of any closed WebSocket: the
// other party's node moves them to the new node when the terminal rejoins
// (and closes the stream to this one).
func (s *Switch) Moved(terminal string, node peer.ID) {
	s.mu.Lock()
	ss := s.sessions[terminal]
	s.mu.Unlock()
	if ss == nil {
		return
	}
	ss.send(signal.Msg{Type: signal.TypeMoved, Node: node.String()})
	ss.close(websocket.StatusNormalClosure, "registered at another node")
}

// Calls is the number of calls in progress through this node.
func (s *Switch) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// validCallID reports whether id is 128 bits in lower-case hex.
func validCallID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// check validates a message from a terminal or another node.
func check(m *signal.Msg) error {
	switch m.Type {
	case signal.TypeInvite, signal.TypeRejoin:
		if m.To == nil || m.To.Node == "" || m.To.Terminal == "" {
			return fmt.Errorf("%s without to.node and to.terminal", m.Type)
		}
		if m.Type == signal.TypeRejoin {
			break
		}
		if m.Desc == nil || m.Desc.Type != "offer" {
			return errors.New("invite without an offer")
		}
	case signal.TypeAccept:
		if m.Desc == nil || m.Desc.Type != "answer" {
			return errors.New("accept without an answer")
		}
	case signal.TypeCandidate:
		if m.Candidate == nil {
			return errors.New("candidate message without a candidate")
		}
	case signal.TypeUpdate:
		if m.Desc == nil || (m.Desc.Type != "offer" && m.Desc.Type != "answer") {
			return errors.New("update without an offer or answer")
		}
	case signal.TypeRinging, signal.TypeReject, signal.TypeBusy, signal.TypeUnavailable, signal.TypeHangup:
	default:
		return fmt.Errorf("unexpected message type %q", m.Type)
	}
	if !validCallID(m.Call) {
		return fmt.Errorf("call id %q: want 32 hex digits", m.Call)
	}
	if len(m.Reason) > 256 {
		return errors.New("reason over 256 bytes")
	}
	if m.Conference != "" && (m.Type != signal.TypeInvite || !validCallID(m.Conference)) {
		return fmt.Errorf("conference %q: want 32 hex digits, in an invite", m.Conference)
	}
	if m.Leg < 0 || m.Leg > signal.MaxLeg {
		return fmt.Errorf("leg %d: want 0 to %d", m.Leg, signal.MaxLeg)
	}
	if (m.Leg != 0 || m.Route != "") && m.Type != signal.TypeCandidate && m.Type != signal.TypeUpdate {
		return errors.New("leg and route belong to candidate and update messages")
	}
	switch m.Route {
	case "", signal.RouteDirect, signal.RouteRelayed, signal.RouteRelayedPeer:
	default:
		return fmt.Errorf("route %q: want %s, %s or %s", m.Route, signal.RouteDirect, signal.RouteRelayed, signal.RouteRelayedPeer)
	}
	if m.Record != nil && m.Type != signal.TypeRejoin {
		return errors.New("record belongs to rejoin messages")
	}
	if len(m.PeerICEServers) > 0 && m.Type != signal.TypeInvite && m.Type != signal.TypeAccept {
		return errors.New("peer ICE servers belong to invite and accept messages")
	}
	return signal.CheckICEServers(m.PeerICEServers)
}

// relayed strips a message down to what may travel on to the other side.
func relayed(m signal.Msg) signal.Msg {
	out := signal.Msg{Type: m.Type, Call: m.Call, Desc: m.Desc, Candidate: m.Candidate, Reason: m.Reason, Leg: m.Leg, Route: m.Route}
	switch m.Type {
	case signal.TypeInvite:
		out.From, out.To, out.Conference = m.From, m.To, m.Conference
	case signal.TypeRejoin:
		out.From, out.To, out.Record = m.From, m.To, m.Record
	case signal.TypeAccept:
		out.From = m.From
	}
	if m.Type == signal.TypeInvite || m.Type == signal.TypeAccept {
		// Only a node's: readSession drops a terminal's.
		out.PeerICEServers = m.PeerICEServers
		out.Bridged = m.Bridged // set by the bridging node (handle)
	}
	return out
}

// toNode is what goes from our terminal to the other node: m as relayed,
// with our relay for the other terminal when m is an invite or accept.
func (s *Switch) toNode(to network.Stream, m signal.Msg) signal.Msg {
	out := relayed(m)
	if s.o.PeerICEServers != nil && (m.Type == signal.TypeInvite || m.Type == signal.TypeAccept) {
		out.PeerICEServers = s.o.PeerICEServers(to.Conn().RemotePeer())
	}
	return out
}

// endpoint is one side of a call as this node sees it: a terminal of its
// own or the stream to another node.
type endpoint struct {
	terminal string         // a local terminal,
	ss       *session       // on this WebSocket (nil: none); or
	stream   network.Stream // the other node's stream
	wmu      *sync.Mutex    // serialises writes to stream
}

func (e endpoint) String() string {
	if e.stream != nil {
		return "node " + e.stream.Conn().RemotePeer().String()
	}
	return "terminal " + e.terminal
}

type callState struct {
	id       string
	a, b     endpoint // a: the caller's side; guarded by Switch.mu (resume swaps streams)
	accepted bool
	timer    *time.Timer
	// heard: the callee, a terminal of ours, sent something for the
	// call; until then answerTimer runs (see awaitAnswer).
	heard       bool
	answerTimer *time.Timer
	// lost runs while a side of the accepted call has lost its path (its
	// WebSocket or the other node's stream): a rejoin within RejoinGrace
	// stops it, else it ends the call.
	lost    *time.Timer
	resumed chan struct{} // a resume swapped in a new stream (callee's node)
	// keys are the Ed25519 keys of the terminals on sides a and b as the
	// call was set up ("" unknown or none): a rejoin must prove the key
	// of the side it takes over. Guarded by Switch.mu, swapped with a, b.
	keys    [2]string
	resumes int // streams opened to resume the call (caller's node)
}

// RejoinGrace is how long an accepted call whose signalling path broke
// waits for the terminal to come back (rejoin) before the node ends it.
const RejoinGrace = 10 * time.Second

// sides reads the call's two sides, which rejoin may change.
func (s *Switch) sides(c *callState) (a, b endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return c.a, c.b
}

// lose starts the rejoin grace of accepted call c (a side lost its path).
func (s *Switch) lose(c *callState, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls[c.id] != c || c.lost != nil {
		return
	}
	s.log.Debug("Call path lost; waiting for a rejoin", "call", c.id, "why", why)
	c.lost = time.AfterFunc(RejoinGrace, func() {
		s.end(c, nil, signal.Msg{Type: signal.TypeHangup, Call: c.id, Reason: "signalling path lost"})
	})
}

// foundLocked stops c's rejoin grace; s.mu is held.
func (c *callState) foundLocked() {
	if c.lost != nil {
		c.lost.Stop()
		c.lost = nil
	}
}

// other returns the side of c opposite to from.
func (s *Switch) other(c *callState, from endpoint) (endpoint, bool) {
	a, b := s.sides(c)
	switch {
	case from.stream != nil && a.stream == from.stream, from.stream == nil && a.stream == nil && from.terminal == a.terminal:
		return b, true
	case from.stream != nil && b.stream == from.stream, from.stream == nil && b.stream == nil && from.terminal == b.terminal:
		return a, true
	}
	return endpoint{}, false
}

// send delivers m to an endpoint.
func (s *Switch) send(e endpoint, m signal.Msg) error {
	if e.stream != nil {
		e.wmu.Lock()
		defer e.wmu.Unlock()
		e.stream.SetWriteDeadline(time.Now().Add(10 * time.Second))
		return wire.Write(e.stream, m, signal.MaxSize)
	}
	// The call's own WebSocket: a terminal that reconnected has ended the
	// calls of its old one.
	if e.ss == nil {
		return fmt.Errorf("terminal %s is not connected", e.terminal)
	}
	return e.ss.send(m)
}

// deliver relays m, which arrived from endpoint from, to the call's other
// side, and ends the call when m ends it. While the node still dials the
// callee's node, the caller's messages are held and go out after the
// invite (dropping them would lose the caller's first ICE candidates).
func (s *Switch) deliver(from endpoint, m signal.Msg) {
	s.mu.Lock()
	if d := s.dialing[m.Call]; d != nil && from.stream == nil && from.ss == d.ss {
		switch {
		case d.c == nil && signal.Ends(m.Type):
			// The caller hangs up while its node still dials.
			d.stop()
		case len(d.held) < maxHeld:
			d.held = append(d.held, m)
		default:
			s.m.dropped.WithLabelValues("held_too_many").Inc()
		}
		s.mu.Unlock()
		return
	}
	c := s.calls[m.Call]
	s.mu.Unlock()
	if c == nil {
		s.m.dropped.WithLabelValues("unknown_call").Inc()
		return
	}
	s.relay(c, from, m)
}

// relay sends m from one side of call c to the other.
func (s *Switch) relay(c *callState, from endpoint, m signal.Msg) {
	to, ok := s.other(c, from)
	if !ok {
		s.m.dropped.WithLabelValues("not_a_party").Inc()
		s.log.Warn("Call message from a stranger dropped", "call", m.Call, "from", from)
		return
	}
	s.mu.Lock()
	a, b := c.a, c.b
	if from.stream == nil && b.stream == nil && from.terminal == b.terminal {
		c.heard = true
	}
	accepted := c.accepted
	s.mu.Unlock()
	if m.Type == signal.TypeAccept {
		if to != a { // only the callee accepts
			s.m.dropped.WithLabelValues("not_a_party").Inc()
			return
		}
		s.mu.Lock()
		c.accepted = true
		if m.From != nil && len(m.From.Key) > 0 {
			c.keys[1] = string(m.From.Key) // b is the callee's side until a rejoin
		}
		s.mu.Unlock()
		c.timer.Stop()
	}
	if signal.Ends(m.Type) {
		s.end(c, &to, relayed(m))
		return
	}
	out := relayed(m)
	if to.stream != nil && from.stream == nil {
		out = s.toNode(to.stream, m)
	}
	if err := s.send(to, out); err != nil {
		s.log.Debug("Call message undeliverable", "call", m.Call, "to", to, "err", err)
		if accepted {
			// The path broke: the call waits for a rejoin (a terminal
			// of ours) or a resume (the other node's stream, see
			// readStream), and this message is lost.
			if to.stream == nil {
				s.lose(c, "peer unreachable")
			}
			s.m.dropped.WithLabelValues("stream_broken").Inc()
			return
		}
		s.end(c, &from, signal.Msg{Type: signal.TypeHangup, Call: m.Call, Reason: "peer unreachable"})
	}
}

// end removes a call and sends m to one side (only) or to both (only ==
// nil). Streams of the call are closed. Only the first end of a call acts.
func (s *Switch) end(c *callState, only *endpoint, m signal.Msg) {
	s.mu.Lock()
	if s.calls[c.id] != c {
		s.mu.Unlock()
		return
	}
	delete(s.calls, c.id)
	accepted := c.accepted
	if c.answerTimer != nil {
		c.answerTimer.Stop()
	}
	c.foundLocked()
	ends := []endpoint{c.a, c.b}
	s.mu.Unlock()
	c.timer.Stop()
	result := m.Type
	if m.Type == signal.TypeHangup && !accepted {
		result = "cancelled"
		if m.Reason == "no answer" {
			result = "no_answer"
		}
	}
	s.m.calls.WithLabelValues(result).Inc()
	for _, e := range ends {
		if only == nil || e == *only {
			s.send(e, m)
		}
		if e.stream != nil {
			e.stream.Close()
		}
	}
}

// newCall registers a call; false if the ID is taken or the node is full.
func (s *Switch) newCall(id string, a, b endpoint) (*callState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newCallLocked(id, a, b)
}

func (s *Switch) newCallLocked(id string, a, b endpoint) (*callState, bool) {
	if s.closed || s.calls[id] != nil || s.dialing[id] != nil || len(s.calls)+len(s.dialing) >= maxCalls {
		return nil, false
	}
	c := &callState{id: id, a: a, b: b, resumed: make(chan struct{}, 1)}
	c.timer = time.AfterFunc(s.o.RingTimeout, func() {
		s.end(c, nil, signal.Msg{Type: signal.TypeHangup, Call: id, Reason: "no answer"})
	})
	s.calls[id] = c
	return c, true
}

// awaitAnswer gives the callee of c, a terminal of ours that was just sent
// the invite, AnswerTimeout to send anything for the call. A phone that
// vanished without closing its connection (out of range, frozen) then
// fails the call fast as unavailable, not after the ring timeout, and its
// WebSocket is dropped so that the next call fails at once.
func (s *Switch) awaitAnswer(c *callState) {
	t := time.AfterFunc(s.o.AnswerTimeout, func() {
		s.mu.Lock()
		silent := s.calls[c.id] == c && !c.heard
		a, b := c.a, c.b
		s.mu.Unlock()
		if !silent {
			return
		}
		s.log.Info("Callee does not respond; call unavailable", "call", c.id, "terminal", b.terminal)
		s.end(c, &a, signal.Msg{Type: signal.TypeUnavailable, Call: c.id, Reason: "terminal does not respond"})
		switch {
		case b.ss == nil:
		case b.ss.conn == nil:
			// A Line's gateway is in this process and stays: it gives
			// up on its phone (a SIP phone that sent no provisional
			// response), the line stays for the next call.
			b.ss.send(signal.Msg{Type: signal.TypeHangup, Call: c.id, Reason: "no answer in time"})
		default:
			b.ss.close(websocket.StatusGoingAway, "no answer to an invite")
		}
	})
	s.mu.Lock()
	c.answerTimer = t
	if s.calls[c.id] != c {
		t.Stop()
	}
	s.mu.Unlock()
}

// callee checks that a local terminal can be offered a call; it returns
// the message to answer with when it cannot.
// A busy terminal still gets the invites of a conference: it may be a
// party of it, and its phone answers busy to the others.
func (s *Switch) callee(to *signal.Party, call string, conference bool) *signal.Msg {
	t, err := s.o.Directory.Get(to.Terminal)
	switch {
	case err != nil || t.Status == record.StatusOffline || !s.Connected(to.Terminal):
		return &signal.Msg{Type: signal.TypeUnavailable, Call: call, Reason: "terminal is not reachable"}
	case t.Status == record.StatusBusy && !conference:
		return &signal.Msg{Type: signal.TypeBusy, Call: call}
	}
	return nil
}

// party describes a local terminal as the caller of an invite. The node
// sets it: a terminal cannot claim to be someone else.
func (s *Switch) party(terminal string) *signal.Party {
	p := &signal.Party{Node: s.o.Host.ID().String(), Terminal: terminal}
	if t, err := s.o.Directory.Get(terminal); err == nil {
		p.Identifiers, p.Key, p.Private = t.Identifiers, t.Key, t.Private
	}
	return p
}

// local is a local terminal as a call endpoint, on its current WebSocket.
func (s *Switch) local(terminal string) endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return endpoint{terminal: terminal, ss: s.sessions[terminal]}
}

// dial is an invite to another node whose stream is being opened.
type dial struct {
	ss     *session // the caller's
	cancel context.CancelFunc

	// Guarded by Switch.mu.
	cancelled bool
	held      []signal.Msg // the caller's messages until the invite is out
	c         *callState   // set once the stream is up, while held drains
}

// maxHeld bounds the messages held for one call while its node dials
// (a terminal trickles a dozen candidates or so).
const maxHeld = 64

// stop cancels the dial; s.mu must be held.
func (d *dial) stop() {
	d.cancelled = true
	d.cancel()
}

// invite handles an invite from the local terminal of session ss.
func (s *Switch) invite(ss *session, m signal.Msg) {
	from := ss.terminal
	m.From = s.party(from)
	src := endpoint{terminal: from, ss: ss}
	if m.To.Node == s.o.Host.ID().String() {
		if refuse := s.callee(m.To, m.Call, m.Conference != ""); refuse != nil {
			s.send(src, *refuse)
			s.m.calls.WithLabelValues(refuse.Type).Inc()
			return
		}
		if !s.allowCallee("", m.To.Terminal) {
			s.m.dropped.WithLabelValues("callee_rate").Inc()
			busy := calleeBusy
			busy.Call = m.Call
			s.send(src, busy)
			return
		}
		c, ok := s.newCall(m.Call, src, s.local(m.To.Terminal))
		if !ok {
			s.send(src, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "call id in use or node full"})
			return
		}
		s.setKeys(c, m.From.Key, s.party(m.To.Terminal).Key)
		if err := s.send(c.b, relayed(m)); err != nil {
			s.end(c, &src, signal.Msg{Type: signal.TypeUnavailable, Call: m.Call, Reason: "terminal is not reachable"})
			return
		}
		s.awaitAnswer(c)
		return
	}
	to, err := peer.Decode(m.To.Node)
	if err != nil {
		s.send(src, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "to.node is not a peer ID"})
		return
	}
	// Dial in the background: the terminal's other messages keep flowing.
	// Until the call exists a hangup from the caller cancels the dial.
	ctx, cancel := context.WithTimeout(s.ctx, dialTimeout)
	s.mu.Lock()
	if s.closed || s.calls[m.Call] != nil || s.dialing[m.Call] != nil || len(s.calls)+len(s.dialing) >= maxCalls {
		s.mu.Unlock()
		cancel()
		s.send(src, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "call id in use or node full"})
		return
	}
	d := &dial{ss: ss, cancel: cancel}
	s.dialing[m.Call] = d
	// Under mu, as begin does: a Line's invite is counted nowhere else,
	// and an Add after Close's Wait began would leave dialNode running.
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.dialNode(ctx, cancel, d, src, m, to)
	}()
}

// dialNode opens the stream of a call to node to, sends m (an invite, or
// a rejoin of an accepted call) and the caller's held messages, and relays
// the call's messages from the stream.
func (s *Switch) dialNode(ctx context.Context, cancel context.CancelFunc, d *dial, src endpoint, m signal.Msg, to peer.ID) {
	rejoin := m.Type == signal.TypeRejoin
	// Calls work over relayed connections to nodes behind NATs
	// (irmv's relays size their limits for calls).
	st, err := s.o.Host.NewStream(network.WithAllowLimitedConn(ctx, string(signal.Protocol)), to, signal.Protocol)
	cancel()
	s.mu.Lock()
	if s.dialing[m.Call] == d {
		delete(s.dialing, m.Call)
	}
	cancelled := d.cancelled
	var c *callState
	ok := false
	remote := endpoint{stream: st, wmu: &sync.Mutex{}}
	if err == nil && !cancelled {
		c, ok = s.newCallLocked(m.Call, src, remote)
		if ok {
			// The other party's key as the rejoining terminal knows it;
			// an invite's accept brings the callee's.
			c.keys = [2]string{string(m.From.Key), string(m.To.Key)}
		}
		if ok && rejoin {
			c.accepted = true
			c.timer.Stop()
		}
		if ok {
			// The caller's messages stay held until the invite is out.
			d.c = c
			s.dialing[m.Call] = d
		}
	}
	s.mu.Unlock()
	if cancelled {
		if err == nil {
			st.Reset()
		}
		s.m.calls.WithLabelValues("cancelled").Inc()
		return
	}
	if err != nil {
		s.log.Debug("Callee's node unreachable", "node", to, "err", err)
		s.send(src, signal.Msg{Type: signal.TypeUnavailable, Call: m.Call, Reason: "callee's node is unreachable"})
		s.m.calls.WithLabelValues("unreachable").Inc()
		return
	}
	if !ok {
		st.Reset()
		s.send(src, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "call id in use or node full"})
		return
	}
	err = s.send(remote, s.toNode(st, m))
	for err == nil {
		s.mu.Lock()
		held := d.held
		d.held = nil
		if len(held) == 0 && s.dialing[m.Call] == d {
			delete(s.dialing, m.Call)
		}
		s.mu.Unlock()
		if len(held) == 0 {
			break
		}
		for _, hm := range held {
			s.relay(c, src, hm)
		}
	}
	if err != nil {
		s.mu.Lock()
		if s.dialing[m.Call] == d {
			delete(s.dialing, m.Call)
		}
		s.mu.Unlock()
		s.end(c, &src, signal.Msg{Type: signal.TypeUnavailable, Call: m.Call, Reason: "callee's node is unreachable"})
		return
	}
	s.readStream(c, remote)
}

// handleStream answers a call from another node.
func (s *Switch) handleStream(st network.Stream) {
	if !s.begin() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	if !s.allowInvite(st.Conn().RemotePeer()) {
		s.m.dropped.WithLabelValues("rate").Inc()
		st.Reset()
		return
	}
	remote := endpoint{stream: st, wmu: &sync.Mutex{}}
	st.SetReadDeadline(time.Now().Add(dialTimeout))
	var m signal.Msg
	if err := wire.Read(bufio.NewReader(st), &m, signal.MaxSize); err != nil {
		s.m.dropped.WithLabelValues("malformed").Inc()
		st.Reset()
		return
	}
	if m.Type == signal.TypeResume && validCallID(m.Call) {
		s.resume(remote, m.Call)
		return
	}
	if (m.Type != signal.TypeInvite && m.Type != signal.TypeRejoin) || check(&m) != nil || m.From == nil || m.To.Node != s.o.Host.ID().String() {
		s.m.dropped.WithLabelValues("malformed").Inc()
		st.Reset()
		return
	}
	if m.Type == signal.TypeRejoin {
		m.From.Node = st.Conn().RemotePeer().String()
		s.rejoinFrom(remote, m)
		return
	}
	// The caller's node is who the stream says, whatever the message says.
	m.From.Node = st.Conn().RemotePeer().String()
	if refuse := s.callee(m.To, m.Call, m.Conference != ""); refuse != nil {
		s.send(remote, *refuse)
		st.Close()
		s.m.calls.WithLabelValues(refuse.Type).Inc()
		return
	}
	if !s.allowCallee(st.Conn().RemotePeer(), m.To.Terminal) {
		s.m.dropped.WithLabelValues("callee_rate").Inc()
		busy := calleeBusy
		busy.Call = m.Call
		s.send(remote, busy)
		st.Close()
		return
	}
	c, ok := s.newCall(m.Call, remote, s.local(m.To.Terminal))
	if ok {
		s.setKeys(c, m.From.Key, s.party(m.To.Terminal).Key)
	}
	if !ok {
		s.send(remote, signal.Msg{Type: signal.TypeBusy, Call: m.Call, Reason: "call id in use or node full"})
		st.Close()
		return
	}
	if err := s.send(c.b, relayed(m)); err != nil {
		s.end(c, &remote, signal.Msg{Type: signal.TypeUnavailable, Call: m.Call})
		return
	}
	s.awaitAnswer(c)
	s.readStream(c, remote)
}

// Each remote node may open this many call streams a second (burst below):
// far more than the calls its terminals place, far fewer than a flood.
const (
	inviteRate  = 20
	inviteBurst = 40
)

// Each local terminal is offered this many invites a second (burst
// below), from all callers together: a phone answers each one (ringing,
// busy), and more than it may send (msgRate) lost its answers and, at
// AnswerTimeout, its WebSocket.
const (
	calleeRate  = 20
	calleeBurst = 40
)

// One remote node may take this share of a terminal's invites (its
// bucket is checked first, so what it is refused does not drain the
// terminal's): one node at its own stream rate cannot keep every other
// caller out.
const calleeShare = 4

// allowCallee rate-limits the invites offered to local terminal t, from
// remote node from ("": a local caller, limited by the API).
func (s *Switch) allowCallee(from peer.ID, t string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from != "" && !bucket(s.pairs, string(from)+"\x00"+t, calleeRate/calleeShare, calleeBurst/calleeShare).Allow() {
		return false
	}
	return bucket(s.callees, t, calleeRate, calleeBurst).Allow()
}

// bucket is m's limiter for k, made with rate r and burst b if new; m
// holds at most 4,096 (a full one is forgotten: that only forgives).
func bucket[K comparable](m map[K]*rate.Limiter, k K, r rate.Limit, b int) *rate.Limiter {
	l := m[k]
	if l == nil {
		if len(m) >= 4096 {
			clear(m)
		}
		l = rate.NewLimiter(r, b)
		m[k] = l
	}
	return l
}

// calleeBusy answers an invite over its callee's rate.
var calleeBusy = signal.Msg{Type: signal.TypeBusy, Reason: "too many calls to this terminal now"}

// allowInvite rate-limits new call streams per remote node.
func (s *Switch) allowInvite(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bucket(s.inviters, p, inviteRate, inviteBurst).Allow()
}

// readStream relays a call's messages from another node until the call
// ends or the stream breaks. An accepted call outlives a broken stream
// for up to signal.ResumeWindow: the caller's node opens a new one and
// sends resume, the callee's node waits for it (resume).
func (s *Switch) readStream(c *callState, remote endpoint) {
	for {
		s.readOne(c, remote)
		s.mu.Lock()
		live := s.calls[c.id] == c
		current := c.a == remote || c.b == remote
		ours := c.b == remote // we opened it: the caller's node
		accepted := c.accepted
		s.mu.Unlock()
		if !live || !current {
			return // ended, or a resume took over
		}
		if accepted {
			if ours {
				if next, ok := s.redial(c, remote); ok {
					remote = next
					continue
				}
				if !s.current(c, remote) {
					return // a rejoin took the call over meanwhile
				}
			} else if s.awaitResume(c, remote) {
				return // the resume's stream is read by resume
			}
		}
		s.end(c, nil, signal.Msg{Type: signal.TypeHangup, Call: c.id, Reason: "signalling path lost"})
		return
	}
}

// readOne relays messages from one stream of call c until it breaks.
func (s *Switch) readOne(c *callState, remote endpoint) {
	st := remote.stream
	st.SetReadDeadline(time.Time{})
	r := bufio.NewReader(st)
	lim := rate.NewLimiter(msgRate, msgBurst)
	for {
		var m signal.Msg
		if err := wire.Read(r, &m, signal.MaxSize); err != nil {
			return
		}
		if m.Call != c.id || check(&m) != nil || m.Type == signal.TypeInvite || !lim.Allow() {
			s.m.dropped.WithLabelValues("malformed").Inc()
			continue
		}
		s.deliver(remote, m)
	}
}

// maxResumes bounds the streams a caller's node opens to resume one call.
const maxResumes = 8

// redial (caller's node) opens a new stream to the callee's node for call
// c, whose stream old broke, and sends resume on it; false if none could
// be opened within signal.ResumeWindow.
func (s *Switch) redial(c *callState, old endpoint) (endpoint, bool) {
	to := old.stream.Conn().RemotePeer()
	ctx, cancel := context.WithTimeout(s.ctx, signal.ResumeWindow)
	defer cancel()
	backoff := 200 * time.Millisecond
	for {
		s.mu.Lock()
		c.resumes++
		n := c.resumes
		// Ended, or a rejoin took the call over.
		gone := s.calls[c.id] != c || c.b != old
		s.mu.Unlock()
		if n > maxResumes || gone {
			return endpoint{}, false
		}
		st, err := s.o.Host.NewStream(network.WithAllowLimitedConn(ctx, string(signal.Protocol)), to, signal.Protocol)
		if err == nil {
			ep := endpoint{stream: st, wmu: &sync.Mutex{}}
			if err = s.send(ep, signal.Msg{Type: signal.TypeResume, Call: c.id}); err == nil {
				s.mu.Lock()
				ok := s.calls[c.id] == c && c.b == old
				if ok {
					c.b = ep
				}
				s.mu.Unlock()
				if ok {
					old.stream.Reset()
					s.log.Info("Call signalling resumed on a new stream", "call", c.id, "node", to)
					return ep, true
				}
			}
			st.Reset()
		}
		s.log.Debug("Resuming a call's signalling failed", "call", c.id, "node", to, "err", err)
		select {
		case <-ctx.Done():
			return endpoint{}, false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// current says whether call c is still up with side e.
func (s *Switch) current(c *callState, e endpoint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[c.id] == c && (c.a == e || c.b == e)
}

// awaitResume (callee's node) waits up to signal.ResumeWindow for the
// caller's node to resume call c, whose stream old broke, on a new one.
func (s *Switch) awaitResume(c *callState, old endpoint) bool {
	t := time.NewTimer(signal.ResumeWindow)
	defer t.Stop()
	for {
		s.mu.Lock()
		swapped := c.a != old
		s.mu.Unlock()
		if swapped {
			return true
		}
		select {
		case <-c.resumed:
		case <-t.C:
			return false
		case <-s.ctx.Done():
			return false
		}
	}
}

// resume (callee's node) carries call id on the new stream remote, which
// the caller's node opened: it must be that call's node, and the call
// accepted.
func (s *Switch) resume(remote endpoint, id string) {
	from := remote.stream.Conn().RemotePeer()
	s.mu.Lock()
	c := s.calls[id]
	match := c != nil && c.accepted && c.a.stream != nil && c.a.stream.Conn().RemotePeer() == from
	var old endpoint
	if match {
		old = c.a
		c.a = remote
	}
	s.mu.Unlock()
	if !match {
		s.m.dropped.WithLabelValues("unknown_call").Inc()
		s.send(remote, signal.Msg{Type: signal.TypeHangup, Call: id, Reason: "signalling path lost"})
		remote.stream.Close()
		return
	}
	old.stream.Reset()
	select {
	case c.resumed <- struct{}{}:
	default:
	}
	s.log.Info("Call signalling resumed on a new stream", "call", id, "node", from)
	s.readStream(c, remote)
}

// ServeWS is the terminal WebSocket, GET /v1/ws.
func (s *Switch) ServeWS(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	conn.SetReadLimit(signal.MaxSize)
	if !s.begin() {
		conn.Close(websocket.StatusGoingAway, "node shutting down")
		return
	}
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	hctx, hcancel := context.WithTimeout(ctx, helloTimeout)
	var hello signal.Msg
	err = wsjson.Read(hctx, conn, &hello)
	hcancel()
	if err != nil || hello.Type != signal.TypeHello {
		conn.Close(websocket.StatusPolicyViolation, "first message must be hello")
		return
	}
	if err := s.o.Directory.Authorize(hello.Terminal, hello.Token); err != nil {
		wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeError, Reason: err.Error()})
		conn.Close(websocket.StatusPolicyViolation, "not authorised")
		return
	}
	ss := newSession(hello.Terminal, conn)
	s.m.sockets.Inc()
	defer s.m.sockets.Dec() // after this socket's calls have ended
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close(websocket.StatusGoingAway, "node shutting down")
		return
	}
	old := s.sessions[hello.Terminal]
	s.sessions[hello.Terminal] = ss
	s.o.Directory.SetConnected(hello.Terminal, true)
	s.mu.Unlock()
	if old != nil {
		old.close(websocket.StatusGoingAway, signal.CloseReplaced)
	}
	s.o.Directory.Heartbeat(hello.Terminal)
	welcome := signal.Msg{Type: signal.TypeWelcome, Terminal: hello.Terminal, Node: s.o.Host.ID().String()}
	if s.o.ICEServers != nil {
		welcome.ICEServers = s.o.ICEServers(hello.Terminal)
	}
	ss.send(welcome)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ss.writeLoop(ctx)
	}()
	if s.o.ICEServers != nil && s.o.ICERefresh > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.refreshICE(ctx, ss, welcome)
		}()
	}
	s.readSession(ctx, ss)
	s.gone(ss, "terminal disconnected", true)
	ss.close(websocket.StatusNormalClosure, "")
	<-ss.flushed // before the deferred cancel, which would cut the flush
}

// refreshICE sends ss a new welcome with fresh ICE servers every
// ICERefresh until ctx ends.
func (s *Switch) refreshICE(ctx context.Context, ss *session, welcome signal.Msg) {
	t := time.NewTicker(s.o.ICERefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ss.done:
			return
		case <-t.C:
			welcome.ICEServers = s.o.ICEServers(ss.terminal)
			if ss.send(welcome) != nil {
				return
			}
		}
	}
}

// RefreshICE sends every connected terminal a new welcome with fresh ICE
// servers now, not at its next ICERefresh: when the node's relay gains or
// loses a public address, the terminals' servers change (a borrowed relay
// instead of the node's own, or back).
func (s *Switch) RefreshICE() {
	if s.o.ICEServers == nil {
		return
	}
	s.mu.Lock()
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		_ = ss.send(signal.Msg{Type: signal.TypeWelcome, Terminal: ss.terminal, Node: s.o.Host.ID().String(),
			ICEServers: s.o.ICEServers(ss.terminal)})
	}
}

// gone ends the calls of a session that closed (not those of a newer one
// of the same terminal); with hold, accepted calls wait RejoinGrace for
// the terminal to rejoin them.
func (s *Switch) gone(ss *session, reason string, hold bool) {
	s.mu.Lock()
	if s.sessions[ss.terminal] == ss {
		delete(s.sessions, ss.terminal)
		// Under mu: a newer session's SetConnected(true) comes after.
		s.o.Directory.SetConnected(ss.terminal, false)
	}
	var mine, held []*callState
	for _, c := range s.calls {
		switch {
		case (c.a.ss == ss || c.b.ss == ss) && c.accepted && hold:
			held = append(held, c) // it may come back (rejoin)
		case c.a.ss == ss || c.b.ss == ss:
			mine = append(mine, c)
		}
	}
	for _, d := range s.dialing {
		if d.ss == ss {
			d.stop()
		}
	}
	s.mu.Unlock()
	for _, c := range mine {
		if to, ok := s.other(c, endpoint{terminal: ss.terminal, ss: ss}); ok {
			s.end(c, &to, signal.Msg{Type: signal.TypeHangup, Call: c.id, Reason: reason})
		}
	}
	for _, c := range held {
		s.lose(c, reason)
	}
}

func (s *Switch) readSession(ctx context.Context, ss *session) {
	lim := rate.NewLimiter(msgRate, msgBurst)
	for {
		var m signal.Msg
		if err := wsjson.Read(ctx, ss.conn, &m); err != nil {
			return
		}
		if !lim.Allow() {
			s.m.dropped.WithLabelValues("rate").Inc()
			ss.send(signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "too many messages"})
			continue
		}
		s.handle(ss, m)
	}
}

// handle takes one message from a local terminal's session.
func (s *Switch) handle(ss *session, m signal.Msg) {
	switch m.Type {
	case signal.TypePing:
		s.o.Directory.Heartbeat(ss.terminal)
		ss.send(signal.Msg{Type: signal.TypePong})
		return
	case signal.TypePong:
		return
	}
	m.PeerICEServers = nil     // only nodes name relays for the other side
	m.Bridged = ss.conn == nil // a Line is a bridge (line.go)
	m.Record = nil             // only nodes prove a rejoin
	if m.Type == signal.TypeAccept {
		m.From = s.party(ss.terminal) // the callee's key, for rejoins
	}
	if err := check(&m); err != nil {
		s.m.dropped.WithLabelValues("malformed").Inc()
		ss.send(signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: err.Error()})
		return
	}
	s.m.messages.Inc()
	switch m.Type {
	case signal.TypeInvite:
		s.invite(ss, m)
		return
	case signal.TypeRejoin:
		s.rejoin(ss, m)
		return
	}
	s.deliver(endpoint{terminal: ss.terminal, ss: ss}, m)
}
