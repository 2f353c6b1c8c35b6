package phone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/record"
)

// ErrSuperseded is the Phone's Err after a newer registration of its key
// at another node replaced its own (another phone with the same key, or
// the same terminal started elsewhere): the Phone stopped.
var ErrSuperseded = errors.New("registered at another node")

// ErrReplaced is the Phone's Err after another phone with its key
// connected to the same node (two phones started with one key): the
// Phone stopped, leaving the terminal to the other.
var ErrReplaced = errors.New("another phone with this key connected to the node")

// Move re-registers the terminal at the node of cl (a phone that walked to
// another access point) and moves its WebSocket there: it registers there
// first, naming the node it leaves and its record's sequence number (so
// the new record outranks the old and the old node withdraws it), then
// connects, and only then closes the old WebSocket. On error the Phone
// stays where it was (or, if the old node is gone, keeps reconnecting to
// whichever it was last told of).
func (p *Phone) Move(ctx context.Context, cl *client.Client) error {
	if cl == nil {
		return errors.New("phone: Move: nil client")
	}
	wsURL, err := wsURLOf(cl.Base)
	if err != nil {
		return err
	}
	mv := make(chan struct{})
	p.mu.Lock()
	switch {
	case p.closing || p.stopped:
		p.mu.Unlock()
		return ErrClosed
	case p.moving != nil:
		p.mu.Unlock()
		return errors.New("phone: a move is in progress")
	}
	p.moving = mv
	from, prev := p.node, p.client.Base
	var seq uint64
	if b, err := p.ack.Record.Decoded(); err == nil {
		seq = b.Seq
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.moving = nil
		p.mu.Unlock()
		close(mv)
	}()

	rctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	p.statusMu.Lock()
	reg := p.o.Registration
	reg.Key = p.pub
	reg.Seq, reg.From = seq, from
	if p.wantBusy {
		reg.Status = record.StatusBusy.String()
	}
	ack, err := p.signAndRegister(rctx, cl, reg)
	if err == nil {
		p.mu.Lock()
		p.setAckLocked(cl, ack)
		p.wsURL = wsURL
		p.mu.Unlock()
		p.busy = p.wantBusy
	}
	p.statusMu.Unlock()
	if err != nil {
		return err
	}
	conn, err := p.connect(ctx)
	if err != nil {
		// Registered there: the session's reconnect loop gets there.
		return fmt.Errorf("phone: moved the registration to %s: %w", cl.Base, err)
	}
	p.mu.Lock()
	old := p.conn
	p.handoff = conn
	p.rejoinDue = true
	// Connected again: a failover must not count the old node's outage
	// until the reconnect loop takes conn up.
	p.downSince = time.Time{}
	p.mu.Unlock()
	if old != nil {
		old.Close(websocket.StatusNormalClosure, "moved to another node")
	}
	p.log.Info("Moved", "from", prev, "to", cl.Base, "terminal", ack.Terminal)
	p.emit(client.Event{Type: client.EventMoved, Self: p.self(), Reason: "moved from " + prev})
	return nil
}

// NodeURL is the base URL of the node the Phone is registered at.
func (p *Phone) NodeURL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client.Base
}

// Disconnected is how long the Phone has been without its WebSocket to
// the node, trying to reconnect (0 while connected): a caller with other
// nodes to go to moves there (Move) when its node stays unreachable.
func (p *Phone) Disconnected() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.downSince.IsZero() {
		return 0
	}
	return time.Since(p.downSince)
}

// Done is closed when the Phone stopped by itself: another node holds a
// newer registration of its key (Err says so). Close is still needed.
func (p *Phone) Done() <-chan struct{} { return p.done }

// Err says why Done is closed: ErrSuperseded or ErrReplaced, wrapped
// with the node.
func (p *Phone) Err() error {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.replaced {
			return fmt.Errorf("%w (%s)", ErrReplaced, p.node)
		}
		return fmt.Errorf("%w (%s)", ErrSuperseded, p.node)
	default:
		return nil
	}
}

// superseded handles the node's "moved" on conn: unless this Phone is
// moving itself (or conn is an old one), a newer registration of the key
// elsewhere replaced this one, and the Phone stops: re-registering would
// take it back from the other.
func (p *Phone) superseded(conn *websocket.Conn, node string) {
	p.mu.Lock()
	// Our own move: the old node says we registered at the new one.
	mine := false
	if b, err := p.ack.Record.Decoded(); err == nil && b.Node == node {
		mine = true
	}
	if mine || p.moving != nil || p.conn != conn || p.stopped || p.closing {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.node = node
	p.mu.Unlock()
	// Info: the event tells the person, and Err the program.
	p.log.Info("Registered at another node; stopping", "node", node)
	p.emit(client.Event{Type: client.EventSuperseded, Reason: "this terminal registered at node " + node})
	p.endCalls("moved")
	conn.Close(websocket.StatusNormalClosure, "superseded")
	close(p.done)
}

// replacedHere handles the end of a session: when the node closed it
// because a newer WebSocket of this terminal took its place, and this
// Phone opened none (it is not moving), another phone with the same key
// connected to the node, and this one stops, as when superseded
// elsewhere: reconnecting would take the terminal back, and the other
// would do the same, each a second. It reports whether the Phone stopped.
func (p *Phone) replacedHere(err error) bool {
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != signal.CloseReplaced {
		return false
	}
	p.mu.Lock()
	if p.moving != nil || p.handoff != nil || p.stopped || p.closing {
		p.mu.Unlock()
		return false
	}
	p.stopped, p.replaced = true, true
	node := p.node
	p.mu.Unlock()
	p.log.Info("Another phone with this key connected to the node; stopping", "node", node)
	p.emit(client.Event{Type: client.EventSuperseded, Reason: "another phone with this key connected to node " + node})
	p.endCalls("moved")
	close(p.done)
	return true
}

// afterSession decides what follows a WebSocket session that ended: ok is
// false when the Phone stops; next is the new node's WebSocket when a Move
// brought one (a Move in progress is waited for).
func (p *Phone) afterSession(ctx context.Context) (next *websocket.Conn, ok bool) {
	p.mu.Lock()
	mv := p.moving
	p.mu.Unlock()
	if mv != nil {
		select {
		case <-mv:
		case <-ctx.Done():
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ctx.Err() != nil || p.closing || p.stopped {
		return nil, false
	}
	next, p.handoff = p.handoff, nil
	return next, true
}

// keepLiveCalls, when the node connection is lost, ends the calls that are
// not up yet and keeps the live ones (their media does not need the node):
// the next session rejoins them.
func (p *Phone) keepLiveCalls() {
	p.mu.Lock()
	var ending []*Call
	for _, c := range p.calls {
		if !c.living.Load() {
			ending = append(ending, c)
		}
	}
	p.rejoinDue = len(p.calls) > len(ending)
	p.mu.Unlock()
	for _, c := range ending {
		c.requestHangup("node")
	}
}

// rejoinCalls tells the nodes, through the new session, that the live
// calls' signalling runs here now; the calls this phone placed then move
// their media to a new leg (their other side's rejoin reaches the caller
// through the nodes).
func (p *Phone) rejoinCalls() {
	p.mu.Lock()
	var live []*Call
	for _, c := range p.calls {
		if c.living.Load() {
			live = append(live, c)
		}
	}
	p.mu.Unlock()
	for _, c := range live {
		to := c.remote
		if err := c.send(signal.Msg{Type: signal.TypeRejoin, To: &to}); err != nil {
			p.log.Warn("Rejoining a call failed", "call", c.id, "err", err)
			continue
		}
		p.log.Info("Call rejoined", "call", c.id)
		if c.outgoing {
			c.deliver(signal.Msg{Type: signal.TypeRejoin, Call: c.id})
		}
	}
}

// AddressPoll is how often a Phone with Options.WatchAddresses looks at
// its interface addresses.
const AddressPoll = time.Second

// watchAddresses re-registers the terminal and rejoins its live calls when
// the machine's addresses change (a phone that got a new address from the
// access point): the calls then move to a new leg that gathers the new
// addresses. It runs until ctx ends.
func (p *Phone) watchAddresses(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(AddressPoll)
	defer t.Stop()
	last := localAddrs()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := localAddrs()
		if now == last || now == "" {
			continue
		}
		p.log.Info("Addresses changed", "from", last, "to", now)
		last = now
		if err := p.register(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn("Re-registration failed", "err", err)
		}
		p.mu.Lock()
		up := p.conn != nil && p.moving == nil
		if !up {
			p.rejoinDue = true // the next session rejoins
		}
		p.mu.Unlock()
		if up {
			p.rejoinCalls()
		}
	}
}

// localAddrs lists the machine's unicast addresses, sorted, as one string.
func localAddrs() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var out []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			out = append(out, ipn.IP.String())
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
