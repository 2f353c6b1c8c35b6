package phone

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/policy"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
)

// CallOptions configure one outgoing call.
type CallOptions struct {
	// Play is an Ogg/Opus or 8 kHz WAV file to play into the call (see
	// Options.Play); "": Options.Play.
	Play string
	// Record is the file to record the call into; "": a file in
	// Options.RecordDir, if that is set.
	Record string
	// HangupAfter hangs up that long after the call connected; 0: never.
	HangupAfter time.Duration
	// RelayOnly relays this call's media through TURN (also when
	// Options.RelayOnly is set).
	RelayOnly bool
	// RingTimeout is how long the callee may ring; 0: RingTimeout.
	RingTimeout time.Duration
	// MaxLoss, MaxJitter and MaxRTT are the call's quality thresholds
	// (see Thresholds); zero: those of Options.
	MaxLoss   float64
	MaxJitter time.Duration
	MaxRTT    time.Duration
}

func (o CallOptions) thresholds() Thresholds {
	return Thresholds{MaxLoss: o.MaxLoss, MaxJitter: o.MaxJitter, MaxRTT: o.MaxRTT}
}

// Call is one call of a Phone, outgoing or incoming.
type Call struct {
	p        *Phone
	id       string
	outgoing bool
	remote   signal.Party
	bridged  atomic.Bool // the other party is behind a SIP bridge (client.Event.Bridged)
	start    time.Time   // invite sent (caller) or received (callee)

	in        chan signal.Msg
	hangup    chan struct{} // closed by requestHangup
	hangupWhy string        // set before hangup is closed
	hangOnce  sync.Once
	done      chan struct{} // closed when the call has ended
	ending    chan struct{} // closed when finish begins: c.in is no longer read
	endOnce   sync.Once
	wg        sync.WaitGroup // play, record and ask goroutines

	connectedAt time.Time // media path up
	connEmitted bool
	sw          *switcher // route switching decisions, used by the live loop only
	record      string
	th          Thresholds // quality thresholds (outgoing calls act on them)
	relayOnly   bool       // the call's first peer is relay-only (private)
	legs        int        // the highest leg number used (route.go)
	// peerICE is the other node's relay for this terminal, from the
	// invite (callee) or accept (caller); set before live runs.
	peerICE []signal.ICEServer

	codecs []media.Codec // what the call's peers negotiate (codecsFor)

	confID string // the conference the invite named, "" for a plain call
	auto   bool   // a leg of a conference already joined: accept at once

	living atomic.Bool // live runs: the call was accepted and is up
	// via is the WebSocket an incoming call's invite came on: until the
	// call is live its messages go on that one only. An invite read after
	// its connection was dropped (a phone frozen, then woken) is for a
	// call the node has already ended: it is never answered on the next
	// connection, nor does it make the phone busy.
	via *websocket.Conn

	mu     sync.Mutex
	conf   *Conference // set once the call belongs to it
	chatUp bool        // media up and chat channel open
	cur    *leg        // the leg that carries the call
	next   *leg        // a leg being brought up to take over, or nil
}

func newCall(p *Phone, id string, outgoing bool, remote signal.Party) *Call {
	return &Call{
		p:        p,
		id:       id,
		outgoing: outgoing,
		remote:   remote,
		in:       make(chan signal.Msg, 64),
		hangup:   make(chan struct{}),
		done:     make(chan struct{}),
		ending:   make(chan struct{}),
		cur:      &leg{},
	}
}

// ID is the call's 128-bit ID in hex.
func (c *Call) ID() string { return c.id }

// Peer is the call's WebRTC peer.
// After a route change that is a new Peer.
func (c *Call) Peer() *media.Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.peer
}

// Remote is the other party as signalling named it.
func (c *Call) Remote() signal.Party { return c.remote }

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.done }

// Conference is the conference the call is a leg of, nil for a plain call.
func (c *Call) Conference() *Conference {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conf
}

func (c *Call) setConf(cf *Conference) {
	c.mu.Lock()
	c.conf = cf
	c.mu.Unlock()
}

func (c *Call) isLive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chatUp
}

// remoteKey is the other party's key, nil if it has none.
func (c *Call) remoteKey() ed25519.PublicKey {
	if len(c.remote.Key) == ed25519.PublicKeySize {
		return c.remote.Key
	}
	return nil
}

// onControl takes a control message from the other party's data channel.
func (c *Call) onControl(b []byte) {
	if digit, d, ok := media.ParseDTMF(b); ok {
		c.emit(client.Event{Type: client.EventDTMF, Digit: string(digit), DurationMS: int(d / time.Millisecond)})
		return
	}
	var m rosterMsg
	if err := json.Unmarshal(b, &m); err != nil || m.Type != "roster" {
		c.p.log.Debug("Unknown control message", "call", c.id)
		return
	}
	if cf := c.Conference(); cf != nil && m.Conference == cf.id {
		cf.merge(m.Parties)
	}
}

// SendDTMF sends key presses (of media.DTMFDigits) to the other party,
// each held for d (0: 100 ms); a SIP phone behind a bridge gets them as
// RFC 4733 events. It fails before the call is up.
func (c *Call) SendDTMF(digits string, d time.Duration) error {
	peer := c.Peer()
	if peer == nil {
		return media.ErrChatNotOpen
	}
	if d <= 0 {
		d = 100 * time.Millisecond
	}
	for i := range len(digits) {
		if err := peer.SendDTMF(digits[i], d); err != nil {
			return err
		}
	}
	return nil
}

// Hangup ends the call and waits until it has ended. It must not be called
// from Options.OnEvent.
func (c *Call) Hangup() error {
	c.requestHangup("hangup")
	<-c.done
	return nil
}

func (c *Call) requestHangup(reason string) {
	c.hangOnce.Do(func() {
		c.hangupWhy = reason
		close(c.hangup)
	})
}

// deliver hands a message from the read loop to the call. Messages for a
// call that is ending are dropped: finish can take seconds (closing the
// peer, the status update) and must not stall the read loop.
func (c *Call) deliver(m signal.Msg) {
	select {
	case c.in <- m:
	case <-c.ending:
	}
}

func (c *Call) emit(e client.Event) {
	e.Call = c.id
	e.Conference = c.confID
	// In a conference every leg's samples and route changes say whose
	// they are too.
	inConf := c.confID != "" && (e.Type == client.EventQuality || e.Type == client.EventRoute)
	if e.Peer == nil && (inConf || e.Type == client.EventIncoming || e.Type == client.EventConnected || e.Type == client.EventEnded) {
		r := c.remote
		e.Peer = &r
	}
	if e.Type == client.EventIncoming || e.Type == client.EventConnected || e.Type == client.EventEnded {
		e.Bridged = c.bridged.Load()
	}
	c.p.emit(e)
}

func (c *Call) send(m signal.Msg) error {
	m.Call = c.id
	var via *websocket.Conn
	if !c.living.Load() {
		via = c.via
	}
	return c.p.send(m, via)
}

// codecsFor is what a call that plays the file play negotiates: G.711
// first for a WAV file (which plays on G.711 only), else Opus first.
func codecsFor(play string) []media.Codec {
	if strings.EqualFold(filepath.Ext(play), ".wav") {
		return []media.Codec{media.CodecPCMU, media.CodecPCMA, media.CodecOpus}
	}
	return media.DefaultCodecs()
}

// startMedia starts recording (before the first packet can arrive) and
// playing.
func (c *Call) startMedia(peer *media.Peer, play, record string) {
	if record != "" {
		c.startRecording(peer, record)
	}
	if play != "" {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			f, err := os.Open(play)
			if err != nil {
				c.emit(client.Event{Type: client.EventWarning, Reason: "play: " + err.Error()})
				return
			}
			defer f.Close()
			waitOtherSide(peer)
			if err := peer.Play(f); err != nil && !errors.Is(err, media.ErrClosed) {
				c.emit(client.Event{Type: client.EventWarning, Reason: "play: " + err.Error()})
			}
		}()
	}
}

// startRecording records the call into the file record, which is created
// with the first audio that arrives.
func (c *Call) startRecording(peer *media.Peer, record string) {
	if err := os.MkdirAll(filepath.Dir(record), 0o755); err != nil {
		c.emit(client.Event{Type: client.EventWarning, Reason: "record: " + err.Error()})
		return
	}
	f := &recordFile{path: record}
	wait, err := peer.StartRecording(f)
	if err != nil {
		c.emit(client.Event{Type: client.EventWarning, Reason: "record: " + err.Error()})
		return
	}
	// The recorder is in place before this returns: no packet that
	// arrives later is missed.
	c.record = record
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := wait()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			c.emit(client.Event{Type: client.EventWarning, Reason: "record: " + err.Error()})
		}
		// Nothing arrived (a silent conference leg): no file. finish reads
		// c.record after Wait. A G.711 call's recording is a .wav.
		c.record = f.path
		if !f.created() {
			c.record = ""
		}
	}()
}

// waitOtherSide waits until the other side can surely decrypt our audio:
// our side is connected when its own DTLS handshake is done, which can be
// before the other side's is, and the packets sent then are lost. The chat
// channel opening (or audio arriving) shows the other side is up.
func waitOtherSide(peer *media.Peer) {
	select {
	case <-peer.Connected():
	case <-peer.Done():
		return
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-peer.ChatReady():
	case <-peer.FirstPacket():
	case <-peer.Done():
	case <-t.C:
	}
}

// recordPath names the recording of a call in dir.
func (c *Call) recordPath(dir string) string {
	if dir == "" {
		return ""
	}
	t := c.start
	if t.IsZero() { // an outgoing call names its file before the invite leaves
		t = time.Now()
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%s-%s.ogg", t.Format("20060102T150405"), c.id[:8], c.who()))
}

// who names the other party in file names.
func (c *Call) who() string {
	ids := c.remote.Identifiers
	who := ids.Phone
	for _, s := range []string{ids.UID, ids.Name, c.remote.Terminal} {
		if who == "" {
			who = s
		}
	}
	who = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '+', r == '-', r == '_':
			return r
		}
		return '_'
	}, who)
	if len(who) > 40 {
		who = who[:40]
	}
	return who
}

// endErr maps a message that ends an unconnected call to its error.
func endErr(m signal.Msg) error {
	var base error
	switch m.Type {
	case signal.TypeBusy:
		base = ErrBusy
	case signal.TypeReject:
		base = ErrRejected
	case signal.TypeUnavailable:
		base = ErrUnavailable
	case signal.TypeHangup:
		if m.Reason == "no answer" {
			base = ErrNoAnswer
		} else {
			base = ErrFailed
		}
	default:
		base = ErrFailed
	}
	if m.Reason != "" && m.Reason != base.Error() {
		return fmt.Errorf("%w: %s", base, m.Reason)
	}
	return base
}

// reasonOf is the "ended" reason for an error.
func reasonOf(err error, m *signal.Msg) string {
	if m != nil && m.Reason != "" {
		return m.Reason
	}
	for _, e := range []error{ErrBusy, ErrRejected, ErrUnavailable, ErrNoAnswer, ErrIdentity, ErrClosed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled"
	}
	if m != nil {
		return m.Type
	}
	return "failed"
}

// Call calls the terminal of a search result: see the package doc. It
// returns when the media path is up, or with an error wrapping ErrBusy,
// ErrRejected, ErrUnavailable, ErrNoAnswer, ErrFailed, ErrIdentity,
// ErrClosed or ErrNotConnected (or ctx's error). Every call that got as far
// as the invite emits "ended" when it ends.
func (p *Phone) Call(ctx context.Context, to client.Result, o CallOptions) (*Call, error) {
	return p.call(ctx, to, o, nil)
}

// call places a call, a leg of cf if cf is not nil.
func (p *Phone) call(ctx context.Context, to client.Result, o CallOptions, cf *Conference) (*Call, error) {
	if to.Node == "" || to.Terminal == "" {
		return nil, fmt.Errorf("%w: the search result names no node or terminal", ErrFailed)
	}
	var remoteKey ed25519.PublicKey
	switch len(to.Key) {
	case 0:
	case ed25519.PublicKeySize:
		remoteKey = to.Key
	default:
		return nil, fmt.Errorf("%w: key of %d bytes", ErrIdentity, len(to.Key))
	}
	remote := signal.Party{Node: to.Node, Terminal: to.Terminal, Identifiers: to.Identifiers, Key: to.Key, Private: to.Private}
	c := newCall(p, newCallID(), true, remote)
	c.th = o.thresholds().orDefaults(p.o.thresholds())
	if cf != nil {
		c.confID = cf.id
		c.conf = cf
		if !cf.addLeg(c) {
			return nil, fmt.Errorf("%w: the conference is over or already has that party", ErrClosed)
		}
	}
	p.mu.Lock()
	if p.closing || p.conn == nil {
		closing := p.closing
		p.mu.Unlock()
		if cf != nil {
			cf.removeLeg(c)
		}
		if closing {
			return nil, ErrClosed
		}
		return nil, ErrNotConnected
	}
	p.calls[c.id] = c
	p.mu.Unlock()

	if remoteKey != nil {
		for _, w := range p.known.check(to.Identifiers, remoteKey) {
			c.emit(client.Event{Type: client.EventWarning, Reason: w})
		}
	}

	// A private callee relays its side; ours relays too, so that neither
	// end learns the other's address (the callee's node does the same for
	// a private caller).
	c.relayOnly = p.o.RelayOnly || o.RelayOnly || to.Private
	play := o.Play
	if play == "" {
		play = p.o.Play
	}
	c.codecs = codecsFor(play)
	peer, err := c.newPeer(c.cur, c.relayOnly, p.iceConfig(), nil)
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrFailed, err)
		c.finish(reasonOf(err, nil), false)
		return nil, err
	}
	rec := o.Record
	switch {
	case rec == "":
		rec = c.recordPath(p.o.RecordDir)
	case cf != nil:
		rec = legRecordPath(rec, c.who())
	}
	offer, err := peer.Offer()
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrFailed, err)
		c.finish("failed", false)
		return nil, err
	}
	c.start = time.Now()
	inv := signal.Msg{Type: signal.TypeInvite, From: p.self(), To: &signal.Party{Node: to.Node, Terminal: to.Terminal}, Desc: &offer}
	if cf != nil {
		inv.Conference = cf.id
	}
	if err := c.send(inv); err != nil {
		c.finish("failed", false)
		return nil, err
	}
	c.descriptionSent(c.cur)
	c.startMedia(peer, play, rec)

	ring := o.RingTimeout
	if ring <= 0 {
		ring = RingTimeout
	}
	if err := c.ring(ctx, peer, remoteKey, ring); err != nil {
		return nil, err
	}
	p.known.remember(to.Identifiers, remoteKey)
	if err := c.waitMedia(ctx, peer); err != nil {
		return nil, err
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		c.live(o.HangupAfter)
	}()
	return c, nil
}

// ring waits for the callee to accept. On error the call has ended.
func (c *Call) ring(ctx context.Context, peer *media.Peer, remoteKey ed25519.PublicKey, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	rang := false
	for {
		select {
		case m := <-c.in:
			switch {
			case m.Type == signal.TypeCandidate:
				c.addRemote(m)
			case m.Type == signal.TypeRinging:
				if !rang {
					rang = true
					c.emit(client.Event{Type: client.EventRinging, Peer: &c.remote})
				}
			case m.Type == signal.TypeAccept:
				if m.Desc == nil {
					err := fmt.Errorf("%w: accept without a description", ErrFailed)
					c.finish("failed", true)
					return err
				}
				c.peerICE = m.PeerICEServers
				c.bridged.Store(m.Bridged)
				if remoteKey == nil && !m.Bridged {
					// Said on answer: a SIP phone behind a bridge never
					// has a key, and its accept says it is bridged.
					c.emit(client.Event{Type: client.EventWarning, Reason: "the callee has no key: its identity cannot be verified"})
				}
				if err := peer.Accept(*m.Desc, remoteKey); err != nil {
					if errors.Is(err, signal.ErrBadFingerprintSig) || errors.Is(err, signal.ErrFingerprintMismatch) {
						err = fmt.Errorf("%w: %v", ErrIdentity, err)
						c.finish("identity", true)
						return err
					}
					err = fmt.Errorf("%w: %v", ErrFailed, err)
					c.finish("failed", true)
					return err
				}
				return nil
			case m.Type == signal.TypeError || signal.Ends(m.Type):
				// The node refused a message of ours: the callee, still
				// ringing, must hear that the call is off.
				err := endErr(m)
				c.finish(reasonOf(err, &m), m.Type == signal.TypeError)
				return err
			}
		case <-timer.C:
			c.finish("no answer", true)
			return ErrNoAnswer
		case <-ctx.Done():
			c.finish("cancelled", true)
			return ctx.Err()
		case <-c.hangup:
			return c.hungUp()
		}
	}
}

// hungUp ends a call that is being set up after requestHangup.
func (c *Call) hungUp() error {
	why := c.hangupWhy
	c.finish(why, why != "node")
	if why == "node" {
		return fmt.Errorf("%w: %w", ErrFailed, ErrNotConnected)
	}
	return ErrClosed
}

// waitMedia waits until the media path is up. On error the call has ended.
func (c *Call) waitMedia(ctx context.Context, peer *media.Peer) error {
	timer := time.NewTimer(MediaTimeout)
	defer timer.Stop()
	for {
		select {
		case <-peer.Connected():
			c.connectedAt = time.Now()
			return nil
		case <-peer.FirstPacket():
			c.connectedAt = time.Now()
			return nil
		case <-peer.Done():
			c.finish("failed", true)
			return fmt.Errorf("%w: the connection failed", ErrFailed)
		case <-timer.C:
			c.finish("no media", true)
			return fmt.Errorf("%w: no media", ErrFailed)
		case m := <-c.in:
			switch {
			case m.Type == signal.TypeCandidate:
				c.addRemote(m)
			case m.Type == signal.TypeError:
				c.nodeError(m)
			case signal.Ends(m.Type):
				err := endErr(m)
				c.finish(reasonOf(err, &m), false)
				return err
			}
		case <-ctx.Done():
			c.finish("cancelled", true)
			return ctx.Err()
		case <-c.hangup:
			return c.hungUp()
		}
	}
}

// nodeError reports a message of an accepted call that the node refused
// (a candidate over the rate limit, say); the call goes on.
func (c *Call) nodeError(m signal.Msg) {
	c.p.log.Warn("Node refused a call message", "call", c.id, "reason", m.Reason)
	c.emit(client.Event{Type: client.EventWarning, Reason: "node: " + m.Reason})
}

// live runs a connected call until it ends: it samples the quality every
// policy.SampleInterval and, as the caller, moves the call to another route when the
// quality stays below the thresholds (see the package doc and route.go).
func (c *Call) live(hangupAfter time.Duration) {
	c.living.Store(true)
	// Busy once media flows, not at accept: an invite the node gave up
	// on while the phone could not read it (frozen, out of range) is
	// still answered when the phone is back, and that call, which never
	// gets media, must leave the terminal's status (set meanwhile by
	// someone else, say idle) alone rather than end it as online. Set
	// beside the call, whose node may be going away (a failover).
	c.p.wg.Add(1)
	go func() {
		defer c.p.wg.Done()
		c.p.setBusy(true) // the nodes still pass a conference's invites
	}()
	peer := c.Peer()
	tick := time.NewTicker(policy.SampleInterval)
	defer tick.Stop()
	var after <-chan time.Time
	if hangupAfter > 0 {
		t := time.NewTimer(hangupAfter)
		defer t.Stop()
		after = t.C
	}
	first := peer.FirstPacket()
	chat := peer.ChatReady()
	grace := time.NewTimer(time.Until(c.connectedAt.Add(time.Second)))
	defer grace.Stop()
	graceC := grace.C
	meter := peer.NewMeter()
	sw := newSwitcher(c.th, c.p.o.holdDown(), c.routes(), c.outgoing)
	c.sw = sw
	connected := func(at time.Time) {
		first, graceC = nil, nil
		if c.connEmitted {
			return
		}
		c.connEmitted = true
		sw.route = peer.Route()
		c.emit(client.Event{Type: client.EventConnected, SetupMS: ms(at.Sub(c.start)), Route: sw.route, Codec: peer.Codec().String()})
	}
	// The next leg's progress: connected, then its chat channel open.
	var nextUp, nextChat, nextDone <-chan struct{}
	watch := func() {
		nextUp, nextChat, nextDone = nil, nil, nil
		if l := c.nextLeg(); l != nil && l.peer != nil {
			nextUp, nextDone = l.peer.Connected(), l.peer.Done()
		}
	}
	abandon := func(why string) {
		if l := c.abandon(); l != nil {
			c.emit(sw.abandoned(l.route, why))
		} else {
			sw.mon.settle()
		}
		watch()
	}
	for {
		select {
		case <-first:
			connected(time.Now())
		case <-graceC:
			connected(c.connectedAt)
		case <-chat:
			chat = nil
			// The chat channel open shows both sides are up even when the
			// other sends no audio: no need to wait out the grace.
			connected(time.Now())
			c.mu.Lock()
			c.chatUp = true
			cf := c.conf
			c.mu.Unlock()
			if cf != nil {
				cf.broadcast()
			}
		case <-nextUp:
			nextUp = nil
			if l := c.nextLeg(); l != nil {
				nextChat = l.peer.ChatReady()
			}
		case <-nextChat:
			nextChat, nextDone = nil, nil
			if p := c.takeOver(); p != nil {
				peer, meter = p, p.NewMeter()
			}
		case <-nextDone:
			abandon("its connection failed")
		case now := <-tick.C:
			q := meter.Sample()
			q.Route = routeName(c.curLeg(), q.Route)
			if !c.connEmitted {
				continue
			}
			var nextAt time.Time
			if l := c.nextLeg(); l != nil {
				nextAt = l.at
			}
			d := sw.sample(q, now, nextAt)
			for _, e := range d.events {
				if e.Type == client.EventQuality && c.bridged.Load() {
					e.SIPRTTMS = sipLegRTT(q)
				}
				c.emit(e)
			}
			if d.abandon != "" {
				abandon(d.abandon)
			}
			if d.to != "" {
				if err := c.startLeg(d.to, d.why, now); err != nil {
					c.p.log.Warn("Starting a new route failed", "call", c.id, "err", err)
					abandon(err.Error())
				}
				watch()
			}
		case m := <-c.in:
			switch {
			case m.Type == signal.TypeCandidate:
				c.addRemote(m)
			case m.Type == signal.TypeUpdate:
				if !c.onUpdate(m) {
					return
				}
				watch()
			case m.Type == signal.TypeRejoin:
				c.rejoined(time.Now())
				watch()
			case m.Type == signal.TypeError:
				c.nodeError(m)
			case signal.Ends(m.Type):
				reason := m.Reason
				if reason == "" {
					reason = m.Type
				}
				c.finish(reason, false)
				return
			}
		case <-peer.Done():
			// With a next leg linked this waits for that leg (media.Peer
			// Done). The other side's hangup closes the connection at
			// once but travels through the nodes: wait a little for its
			// reason.
			c.finishLost()
			return
		case <-after:
			c.finish("hangup", true)
			return
		case <-c.hangup:
			c.finish(c.hangupWhy, c.hangupWhy != "node")
			return
		}
	}
}

// lostGrace is how long a call whose connection closed waits for the
// hangup message that says why.
const lostGrace = time.Second

// finishLost ends a call whose connection closed or failed.
func (c *Call) finishLost() {
	t := time.NewTimer(lostGrace)
	defer t.Stop()
	for {
		select {
		case m := <-c.in:
			if signal.Ends(m.Type) {
				reason := m.Reason
				if reason == "" {
					reason = m.Type
				}
				c.finish(reason, false)
				return
			}
		case <-t.C:
			c.finish("connection lost", true)
			return
		case <-c.hangup:
			c.finish(c.hangupWhy, c.hangupWhy != "node")
			return
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// finish ends the call: tells the other side (notify), closes the peer,
// waits for play and record, sets the status back and emits "ended".
func (c *Call) finish(reason string, notify bool) {
	c.endOnce.Do(func() {
		close(c.ending)
		if notify {
			if err := c.send(signal.Msg{Type: signal.TypeHangup, Reason: reason}); err != nil {
				c.p.log.Debug("Sending hangup failed", "call", c.id, "err", err)
			}
		}
		c.mu.Lock()
		cur, next := c.cur, c.next
		c.next = nil
		c.mu.Unlock()
		// The leg being brought up first: closed after the current one
		// it would carry the call on.
		for _, l := range []*leg{next, cur} {
			if l != nil && l.peer != nil {
				if err := l.peer.Close(); err != nil {
					c.p.log.Debug("Closing the peer", "call", c.id, "err", err)
				}
			}
		}
		c.wg.Wait()
		if cf := c.Conference(); cf != nil {
			cf.removeLeg(c)
		}
		p := c.p
		p.mu.Lock()
		delete(p.calls, c.id)
		last := len(p.calls) == 0
		p.mu.Unlock()
		if last {
			p.setBusy(false)
		}
		p.log.Info("Call ended", "call", c.id, "reason", reason)
		c.emit(client.Event{Type: client.EventEnded, Reason: reason, Record: c.record})
		close(c.done)
	})
}

// answer runs an incoming call: ring, decide, answer, and live.
func (c *Call) answer(ctx context.Context, inv signal.Msg) {
	p := c.p
	c.bridged.Store(inv.Bridged)
	if err := c.send(signal.Msg{Type: signal.TypeRinging}); err != nil {
		c.finish("failed", false)
		return
	}
	c.emit(client.Event{Type: client.EventIncoming})

	decided := make(chan bool, 1)
	askCtx, cancelAsk := context.WithCancel(ctx)
	defer cancelAsk()
	switch {
	case c.auto: // a leg of a conference this phone is in
		decided <- true
	case p.o.Answer == AnswerAuto:
		decided <- true
	case p.o.Answer == AnswerAsk:
		if p.o.Ask == nil {
			decided <- false
			break
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			decided <- p.o.Ask(askCtx, Incoming{Call: c.id, From: c.remote})
		}()
	default:
		decided <- false
	}
	ring := time.NewTimer(RingTimeout)
	defer ring.Stop()
	var accept bool
wait:
	for {
		select {
		case accept = <-decided:
			break wait
		case m := <-c.in:
			switch {
			case m.Type == signal.TypeCandidate:
				c.addRemote(m)
			case m.Type == signal.TypeError || signal.Ends(m.Type):
				cancelAsk()
				reason := m.Reason
				if reason == "" {
					reason = m.Type
				}
				c.finish(reason, m.Type == signal.TypeError) // as in ring
				return
			}
		case <-ring.C:
			cancelAsk()
			c.finish("no answer", true)
			return
		case <-c.hangup:
			cancelAsk()
			c.finish(c.hangupWhy, c.hangupWhy != "node")
			return
		}
	}
	cancelAsk()
	if !accept {
		if err := c.send(signal.Msg{Type: signal.TypeReject}); err != nil {
			p.log.Debug("Sending reject failed", "call", c.id, "err", err)
		}
		c.finish("rejected", false)
		return
	}

	var remoteKey ed25519.PublicKey
	if len(c.remote.Key) > 0 {
		remoteKey = c.remote.Key
	} else if !c.bridged.Load() {
		// A SIP phone behind a bridge never has one; the call's bridged
		// field says so.
		c.emit(client.Event{Type: client.EventWarning, Reason: "the caller has no key: its identity cannot be verified"})
	}
	if c.confID != "" && c.Conference() == nil {
		// The first invitation of a conference: this phone joins it.
		cf := p.newConference(c.confID, CallOptions{Play: p.o.Play})
		if !cf.addLeg(c) {
			c.finish("conference over", true)
			return
		}
		cf.setHost(c)
		c.setConf(cf)
	}
	c.th = p.o.thresholds().orDefaults(Thresholds{})
	c.relayOnly = p.o.RelayOnly || c.remote.Private
	c.peerICE = inv.PeerICEServers
	c.codecs = codecsFor(p.o.Play)
	peer, err := c.newPeer(c.cur, c.relayOnly, c.answerServers(), nil)
	if err != nil {
		p.log.Warn("Cannot take the call", "call", c.id, "err", err)
		c.finish("failed", true)
		return
	}
	c.startMedia(peer, p.o.Play, c.recordPath(p.o.RecordDir))
	answer, err := peer.Answer(*inv.Desc, remoteKey)
	if err != nil {
		reason := "failed"
		if errors.Is(err, signal.ErrBadFingerprintSig) || errors.Is(err, signal.ErrFingerprintMismatch) {
			reason = "identity"
			c.emit(client.Event{Type: client.EventWarning, Reason: "the caller's offer does not verify: " + err.Error()})
		}
		p.log.Warn("Cannot answer", "call", c.id, "err", err)
		c.finish(reason, true)
		return
	}
	if err := c.send(signal.Msg{Type: signal.TypeAccept, Desc: &answer}); err != nil {
		c.finish("failed", false)
		return
	}
	c.descriptionSent(c.cur)
	if err := c.waitMedia(ctx, peer); err != nil {
		return
	}
	c.live(0)
}
