package call

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/record"
)

// errUnproven is why a rejoin that does not prove its terminal is refused.
var errUnproven = errors.New("rejoin: not proven to be the terminal of this call")

// setKeys records the keys of the terminals on sides a and b of a call
// just set up.
func (s *Switch) setKeys(c *callState, a, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.keys = [2]string{string(a), string(b)}
}

// proveRecord checks a rejoin's Record from node from against want, the
// key of the side it takes over: signed by that key and naming from, the
// node the terminal now registers at.
func proveRecord(rec *record.Record, from peer.ID, want string) error {
	if want == "" {
		return fmt.Errorf("%w: the call's terminal has no key", errUnproven)
	}
	if rec == nil {
		return fmt.Errorf("%w: no record", errUnproven)
	}
	b, err := rec.Verify(from, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %w", errUnproven, err)
	}
	if rec.Signer != record.SignerTerminal || string(b.Key) != want {
		return fmt.Errorf("%w: another key", errUnproven)
	}
	return nil
}

// rejoin handles a rejoin from the local terminal of session ss: a call
// that runs through this node gets the terminal's new WebSocket and the
// other side hears of it; a call of another node (the terminal moved
// here) gets a new stream to the other party's node. A terminal takes
// over the side it had (its handle, proven by the WebSocket's token) or,
// having moved to this node, the side of the key it registered here with.
func (s *Switch) rejoin(ss *session, m signal.Msg) {
	me := endpoint{terminal: ss.terminal, ss: ss}
	m.From = s.party(ss.terminal)
	s.mu.Lock()
	if c := s.calls[m.Call]; c != nil {
		var side *endpoint
		var old network.Stream
		idx := 0
		switch {
		case !c.accepted:
		case c.a.stream == nil && c.a.terminal == ss.terminal:
			side = &c.a
		case c.b.stream == nil && c.b.terminal == ss.terminal:
			side, idx = &c.b, 1
		// The terminal moved to the node of the other party: the call
		// leaves the stream to its old node.
		case c.a.stream != nil && c.b.stream == nil && c.b.terminal == m.To.Terminal:
			side, old = &c.a, c.a.stream
		case c.b.stream != nil && c.a.stream == nil && c.a.terminal == m.To.Terminal:
			side, old, idx = &c.b, c.b.stream, 1
		}
		if side == nil {
			s.mu.Unlock()
			s.send(me, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "rejoin: not an accepted call of this terminal"})
			return
		}
		if old != nil && (c.keys[idx] == "" || string(m.From.Key) != c.keys[idx]) {
			s.mu.Unlock()
			s.m.dropped.WithLabelValues("rejoin_unproven").Inc()
			s.log.Warn("Rejoin by another terminal refused", "call", m.Call, "terminal", ss.terminal)
			s.send(me, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: errUnproven.Error()})
			return
		}
		*side = me
		c.foundLocked()
		s.mu.Unlock()
		if old != nil {
			old.Close() // its reader sees it replaced and returns
		}
		if to, ok := s.other(c, me); ok {
			out := relayed(m)
			if err := s.send(to, out); err != nil {
				s.lose(c, "peer unreachable")
			}
		}
		return
	}
	if m.To.Node == s.o.Host.ID().String() || s.closed || s.dialing[m.Call] != nil || len(s.calls)+len(s.dialing) >= maxCalls {
		s.mu.Unlock()
		s.send(me, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "rejoin: call unknown here or node full"})
		return
	}
	s.mu.Unlock()
	to, err := peer.Decode(m.To.Node)
	if err != nil {
		s.send(me, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "to.node is not a peer ID"})
		return
	}
	// The proof for the other party's node: the record this terminal
	// signed for this node.
	if rec, err := s.o.Directory.Record(ss.terminal); err == nil && rec.Signer == record.SignerTerminal {
		m.Record = rec
	} else {
		s.send(me, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "rejoin: a terminal without a key rejoins only at its own node"})
		return
	}
	s.mu.Lock()
	if s.closed || s.calls[m.Call] != nil || s.dialing[m.Call] != nil || len(s.calls)+len(s.dialing) >= maxCalls {
		s.mu.Unlock()
		s.send(me, signal.Msg{Type: signal.TypeError, Call: m.Call, Reason: "rejoin: call unknown here or node full"})
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, dialTimeout)
	d := &dial{ss: ss, cancel: cancel}
	s.dialing[m.Call] = d
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.dialNode(ctx, cancel, d, me, m, to)
	}()
}

// rejoinFrom takes a rejoin from another node, on its new stream: an
// accepted call with our terminal To moves its other side to the stream,
// when the rejoin's record proves the key of that side.
func (s *Switch) rejoinFrom(remote endpoint, m signal.Msg) {
	from := remote.stream.Conn().RemotePeer()
	s.mu.Lock()
	c := s.calls[m.Call]
	var side, local *endpoint
	idx := 0
	if c != nil && c.accepted {
		switch {
		case c.a.stream == nil && c.a.terminal == m.To.Terminal:
			side, local, idx = &c.b, &c.a, 1
		case c.b.stream == nil && c.b.terminal == m.To.Terminal:
			side, local = &c.a, &c.b
		}
	}
	if side == nil {
		s.mu.Unlock()
		s.m.dropped.WithLabelValues("unknown_call").Inc()
		remote.stream.Reset()
		return
	}
	if err := proveRecord(m.Record, from, c.keys[idx]); err != nil {
		s.mu.Unlock()
		s.m.dropped.WithLabelValues("rejoin_unproven").Inc()
		s.log.Warn("Rejoin by another terminal refused", "call", m.Call, "node", from, "err", err)
		s.send(remote, signal.Msg{Type: signal.TypeHangup, Call: m.Call, Reason: errUnproven.Error()})
		remote.stream.Close()
		return
	}
	old, to := *side, *local
	// The new stream goes to side a: the other node opened it, and it
	// resumes it if it breaks (readStream).
	c.a, c.b = remote, to
	c.keys = [2]string{c.keys[idx], c.keys[1-idx]}
	c.foundLocked()
	s.mu.Unlock()
	if old.stream != nil {
		old.stream.Close() // its reader sees it replaced and returns
	}
	s.log.Info("Call rejoined through another node", "call", c.id, "node", m.From.Node)
	out := relayed(m)
	out.Record = nil // for nodes only
	if err := s.send(to, out); err != nil {
		s.lose(c, "terminal disconnected")
	}
	s.readStream(c, remote)
}
