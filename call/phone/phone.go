package phone

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/policy"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/record"
)

// Timing.
const (
	// PingInterval is how often the Phone pings its node (the heartbeat).
	PingInterval = policy.PingInterval
	// ReregisterInterval is how often the Phone signs and registers its
	// record again, well before record.MaxAge.
	ReregisterInterval = policy.ReregisterInterval
	// RingTimeout is how long a caller lets the callee ring by default.
	RingTimeout = policy.RingTimeout
	// MediaTimeout is how long after the accept the media path may take to
	// come up.
	MediaTimeout = 15 * time.Second

	helloTimeout = 10 * time.Second
	writeTimeout = 5 * time.Second
	apiTimeout   = 5 * time.Second
)

// Answer modes.
const (
	AnswerAuto   = "auto"
	AnswerAsk    = "ask"
	AnswerReject = "reject"
)

// Options configure a [Phone].
type Options struct {
	// Client is the hosting node's terminal API. Required.
	Client *client.Client
	// Registration holds the identifiers and options to register; Key,
	// Body and Sig are filled in and Keepalive is forced on. With RelayOnly
	// it is also registered Private.
	Registration client.Registration
	// Key is the terminal's key, which signs its record and its DTLS
	// fingerprints; nil: an ephemeral key is generated.
	Key ed25519.PrivateKey
	// Answer says how incoming calls are taken: AnswerAuto, AnswerAsk
	// (Ask decides) or AnswerReject; "": AnswerReject.
	Answer string
	// Ask decides whether to take an incoming call in mode AnswerAsk; its
	// context ends when the caller gives up. Nil rejects.
	Ask func(ctx context.Context, inv Incoming) bool
	// Play is an audio file played into each call, opened anew for each
	// call; "": send no audio. Ogg/Opus plays on Opus calls; a WAV file
	// (8 kHz, 16-bit PCM) on G.711 calls, and makes the phone prefer
	// G.711 (PCMU, PCMA, then Opus) in what it offers and answers. Nothing
	// is transcoded: a file that does not fit the call is not played (a
	// warning event says so).
	Play string
	// RecordDir, if not "", receives each call's audio as
	// <time>-<call>-<peer>.ogg (Ogg/Opus), or .wav for a G.711 call.
	RecordDir string
	// RelayOnly is private mode: every call relays its media through TURN
	// (the other side never learns this terminal's addresses), and the
	// registration is Private.
	RelayOnly bool
	// MaxLoss, MaxJitter and MaxRTT are the quality thresholds of every
	// call (see Thresholds and the package doc); zero: DefaultMaxLoss,
	// DefaultMaxJitter, DefaultMaxRTT; negative: that check is off.
	MaxLoss   float64
	MaxJitter time.Duration
	MaxRTT    time.Duration
	// RouteHoldDown is how long a call does not take a route again that
	// it has left; zero or negative: RouteHoldDown.
	RouteHoldDown time.Duration
	// KnownKeysFile remembers the callee keys of successful calls (see the
	// package doc); "": remember nothing.
	KnownKeysFile string
	// OnEvent, if not nil, receives the events of the Phone and its calls,
	// in order per call. It must not block for long, and must not call
	// Call.Hangup.
	OnEvent func(client.Event)
	// WatchAddresses re-registers the terminal and moves its live calls
	// to a new leg when the machine's addresses change (see AddressPoll).
	WatchAddresses bool
	// SettingEngine is a test seam passed to call/media; nil: its defaults.
	SettingEngine *webrtc.SettingEngine
	// RelayAcceptanceWait is a test seam passed to call/media; 0: its default.
	RelayAcceptanceWait time.Duration
	// Logger receives the Phone's logs; nil discards them.
	Logger *slog.Logger
}

func (o Options) thresholds() Thresholds {
	return Thresholds{MaxLoss: o.MaxLoss, MaxJitter: o.MaxJitter, MaxRTT: o.MaxRTT}
}

func (o Options) holdDown() time.Duration {
	if o.RouteHoldDown <= 0 {
		return RouteHoldDown
	}
	return o.RouteHoldDown
}

// Incoming describes an incoming call to Options.Ask.
type Incoming struct {
	Call string
	From signal.Party
}

// Phone is a registered terminal with its WebSocket to the node. Its
// methods are safe for concurrent use.
type Phone struct {
	o      Options
	log    *slog.Logger
	key    ed25519.PrivateKey
	pub    ed25519.PublicKey
	known  *knownKeys
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	statusMu sync.Mutex // serialises status changes
	busy     bool       // the node shows status busy (guarded by statusMu)
	wantBusy bool       // the terminal has a call with media: busy wanted (guarded by statusMu)

	mu     sync.Mutex
	ack    client.Ack
	client *client.Client // the node's API (Options.Client, or Move's)
	api    *client.Client // client with the terminal's token
	wsURL  string
	conn   *websocket.Conn
	// moving is closed when the Move in progress ends; nil: none.
	moving  chan struct{}
	handoff *websocket.Conn // the new node's WebSocket, from Move
	// rejoinDue: the next session tells the nodes about the live calls
	// (their path broke or moved).
	rejoinDue bool
	stopped   bool // superseded: done is closed
	replaced  bool // stopped by another phone with the key at this node
	done      chan struct{}
	node      string             // from welcome
	ice       []signal.ICEServer // from welcome
	downSince time.Time          // the WebSocket to the node was lost (zero: up)
	calls     map[string]*Call
	confs     map[string]*Conference // conferences this phone is in, by ID
	left      map[string]time.Time   // conferences it left, by ID: their legs are refused
	closing   bool
}

// Start registers the terminal, connects to the node's WebSocket and serves
// until Close; see the package doc. ctx bounds the start only.
func Start(ctx context.Context, o Options) (*Phone, error) {
	if o.Client == nil {
		return nil, errors.New("phone: Options.Client must be non-nil")
	}
	switch o.Answer {
	case "":
		o.Answer = AnswerReject
	case AnswerAuto, AnswerAsk, AnswerReject:
	default:
		return nil, fmt.Errorf("phone: Options.Answer %q: want auto, ask or reject", o.Answer)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := o.Key
	if key == nil {
		var err error
		if _, key, err = ed25519.GenerateKey(nil); err != nil {
			return nil, fmt.Errorf("phone: generate key: %w", err)
		}
	}
	wsURL, err := wsURLOf(o.Client.Base)
	if err != nil {
		return nil, err
	}
	known, err := loadKnownKeys(o.KnownKeysFile)
	if err != nil {
		return nil, err
	}
	o.Registration.Keepalive = true
	if o.RelayOnly {
		o.Registration.Private = true
	}
	api := *o.Client
	p := &Phone{
		o:      o,
		log:    log,
		key:    key,
		pub:    key.Public().(ed25519.PublicKey),
		known:  known,
		wsURL:  wsURL,
		client: o.Client,
		api:    &api,
		done:   make(chan struct{}),
		calls:  map[string]*Call{},
		confs:  map[string]*Conference{},
		left:   map[string]time.Time{},
	}
	if err := p.register(ctx); err != nil {
		return nil, err
	}
	conn, err := p.connect(ctx)
	if err != nil {
		p.remove()
		return nil, err
	}
	// The connection is current before Start returns (session sets it
	// again): a Call right after Start must not find none.
	p.setConn(conn)
	sctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(2)
	go p.serve(sctx, conn)
	go p.reregisterLoop(sctx)
	if o.WatchAddresses {
		p.wg.Add(1)
		go p.watchAddresses(sctx)
	}
	p.emit(client.Event{Type: client.EventRegistered, Self: p.self()})
	return p, nil
}

// wsURLOf turns the API base URL into the WebSocket URL.
func wsURLOf(base string) (string, error) {
	switch {
	case strings.HasPrefix(base, "http://"):
		return "ws://" + strings.TrimPrefix(base, "http://") + "/v1/ws", nil
	case strings.HasPrefix(base, "https://"):
		return "wss://" + strings.TrimPrefix(base, "https://") + "/v1/ws", nil
	}
	return "", fmt.Errorf("phone: node URL %q: want http:// or https://", base)
}

// Ack is the node's latest acknowledgement of the registration.
func (p *Phone) Ack() client.Ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ack
}

// CallByID is the running call with the ID a client.Event names, nil when
// there is none (any more).
func (p *Phone) CallByID(id string) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[id]
}

// Key is the terminal's public key.
func (p *Phone) Key() ed25519.PublicKey { return p.pub }

// self is this terminal as a call party.
func (p *Phone) self() *signal.Party {
	p.mu.Lock()
	defer p.mu.Unlock()
	return &signal.Party{
		Node:        p.node,
		Terminal:    p.ack.Terminal,
		Identifiers: p.ack.Identifiers,
		Key:         p.pub,
		Private:     p.o.RelayOnly,
	}
}

func (p *Phone) emit(e client.Event) {
	if p.o.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	p.o.OnEvent(e)
}

// register prepares, signs and registers the terminal's record, keeping the
// current status.
func (p *Phone) register(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	reg := p.o.Registration
	reg.Key = p.pub
	if p.wantBusy {
		reg.Status = record.StatusBusy.String()
	}
	p.mu.Lock()
	api, cl := p.api, p.client
	p.mu.Unlock()
	ack, err := p.signAndRegister(ctx, api, reg)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.setAckLocked(cl, ack)
	p.mu.Unlock()
	p.busy = p.wantBusy
	p.log.Info("Registered", "terminal", ack.Terminal, "expires", ack.ExpiresAt)
	return nil
}

// signAndRegister prepares reg (with the key set) at api's node, signs the
// body and registers it.
func (p *Phone) signAndRegister(ctx context.Context, api *client.Client, reg client.Registration) (client.Ack, error) {
	body, err := api.Prepare(ctx, reg)
	if err != nil {
		return client.Ack{}, fmt.Errorf("phone: prepare registration: %w", err)
	}
	reg.Body = body
	reg.Sig = ed25519.Sign(p.key, record.SigningBytes(body))
	ack, err := api.Register(ctx, reg)
	if err != nil {
		return client.Ack{}, fmt.Errorf("phone: register: %w", err)
	}
	return ack, nil
}

// setAckLocked installs the acknowledgement of node cl; p.mu is held.
func (p *Phone) setAckLocked(cl *client.Client, ack client.Ack) {
	p.ack = ack
	cp := *cl
	cp.Token = ack.Token
	p.client, p.api = cl, &cp
}

func (p *Phone) reregisterLoop(ctx context.Context) {
	defer p.wg.Done()
	t := time.NewTicker(ReregisterInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.register(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("Re-registration failed", "err", err)
				p.emit(client.Event{Type: client.EventWarning, Reason: err.Error()})
			}
		}
	}
}

// remove deletes the registration; errors are logged only.
func (p *Phone) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	p.mu.Lock()
	api, t := p.api, p.ack.Terminal
	p.mu.Unlock()
	if t == "" {
		return
	}
	if err := api.Remove(ctx, t); err != nil {
		p.log.Warn("Removing the registration failed", "terminal", t, "err", err)
	}
}

// setBusy shows the terminal busy while it has a call with media, and
// online again once its last call ended. What is wanted is kept when the
// node cannot be told (it is gone, the phone is moving): a registration
// elsewhere carries it, and a restored connection sends it (showStatus).
func (p *Phone) setBusy(busy bool) {
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	p.mu.Lock()
	inCall := len(p.calls) > 0
	p.mu.Unlock()
	if !busy && inCall {
		return // a call that began as the last one ended keeps it busy
	}
	if busy && !inCall {
		return // the call ended before it was shown: nothing to show
	}
	p.wantBusy = busy
	p.showStatusLocked()
}

// showStatus tells the node the wanted status if it shows another.
func (p *Phone) showStatus() {
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	p.showStatusLocked()
}

// showStatusLocked is showStatus with statusMu held.
func (p *Phone) showStatusLocked() {
	if p.busy == p.wantBusy {
		return
	}
	p.mu.Lock()
	api, t := p.api, p.ack.Terminal
	p.mu.Unlock()
	st := record.StatusOnline
	if p.wantBusy {
		st = record.StatusBusy
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	if _, err := api.SetStatus(ctx, t, st.String()); err != nil {
		p.log.Warn("Setting the status failed", "status", st, "err", err)
		return
	}
	p.busy = p.wantBusy
}

// errHelloRefused is returned, wrapped, when the node answers hello with
// an error: the registration is gone or the token is stale.
var errHelloRefused = errors.New("node refused hello")

// connect dials the WebSocket, says hello and waits for welcome.
func (p *Phone) connect(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	p.mu.Lock()
	terminal, token := p.ack.Terminal, p.ack.Token
	httpc, wsURL := p.client.HTTP, p.wsURL
	p.mu.Unlock()
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: httpc})
	if err != nil {
		return nil, fmt.Errorf("phone: %w: %v", ErrNotConnected, err)
	}
	conn.SetReadLimit(signal.MaxSize)
	fail := func(err error) (*websocket.Conn, error) {
		conn.CloseNow()
		return nil, err
	}
	if err := wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeHello, Terminal: terminal, Token: token}); err != nil {
		return fail(fmt.Errorf("phone: hello: %w: %v", ErrNotConnected, err))
	}
	for {
		var m signal.Msg
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			return fail(fmt.Errorf("phone: waiting for welcome: %w: %v", ErrNotConnected, err))
		}
		switch m.Type {
		case signal.TypeWelcome:
			p.mu.Lock()
			p.node, p.ice = m.Node, m.ICEServers
			p.mu.Unlock()
			p.log.Debug("Welcome", "node", m.Node, "ice_servers", len(m.ICEServers))
			return conn, nil
		case signal.TypeError:
			return fail(fmt.Errorf("phone: %w: %s", errHelloRefused, m.Reason))
		}
	}
}

// serve runs the WebSocket session and reconnects when it drops.
func (p *Phone) serve(ctx context.Context, conn *websocket.Conn) {
	defer p.wg.Done()
	for {
		err := p.session(ctx, conn)
		conn.CloseNow()
		if p.replacedHere(err) {
			return
		}
		next, ok := p.afterSession(ctx)
		if !ok {
			return
		}
		if next != nil {
			conn = next // moved to another node: the calls go on
			continue
		}
		// Info: the warning event below tells the person; the log keeps
		// the reason for whoever asks for it (irmv phone --log-level info).
		p.log.Info("Node connection lost", "err", err)
		p.mu.Lock()
		p.downSince = time.Now()
		p.mu.Unlock()
		p.emit(client.Event{Type: client.EventWarning, Reason: "connection to the node lost; reconnecting"})
		p.keepLiveCalls()
		backoff := policy.ReconnectMin
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, policy.ReconnectMax)
			if next, ok := p.afterSession(ctx); !ok {
				return
			} else if next != nil {
				conn = next
				break
			}
			c, err := p.connect(ctx)
			if err == nil {
				conn = c
				break
			}
			p.log.Debug("Reconnect failed", "err", err)
			if errors.Is(err, errHelloRefused) {
				if err := p.register(ctx); err != nil {
					p.log.Debug("Re-registration failed", "err", err)
				}
			}
		}
		p.setConn(conn)
		p.mu.Lock()
		p.downSince = time.Time{}
		p.mu.Unlock()
		p.log.Info("Node connection restored")
		p.showStatus() // a busy that could not be set while the node was away
		p.emit(client.Event{Type: client.EventRegistered, Self: p.self()})
	}
}

// setConn makes conn the current WebSocket, the one calls are placed on.
func (p *Phone) setConn(conn *websocket.Conn) {
	p.mu.Lock()
	p.conn = conn
	p.mu.Unlock()
}

// session reads and dispatches messages and pings until the connection
// fails or ctx ends.
func (p *Phone) session(ctx context.Context, conn *websocket.Conn) error {
	p.mu.Lock()
	p.conn = conn
	rejoin := p.rejoinDue
	p.rejoinDue = false
	p.mu.Unlock()
	if rejoin {
		p.rejoinCalls()
	}
	defer func() {
		p.mu.Lock()
		if p.conn == conn {
			p.conn = nil
		}
		p.mu.Unlock()
	}()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	last := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // pinger
		defer wg.Done()
		t := time.NewTicker(PingInterval)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			silent := time.Since(last)
			mu.Unlock()
			if silent > 3*PingInterval {
				p.log.Warn("Node silent, dropping the connection", "silent", silent)
				conn.CloseNow()
				return
			}
			if err := p.writeConn(sctx, conn, signal.Msg{Type: signal.TypePing}); err != nil {
				conn.CloseNow()
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()
	for {
		var m signal.Msg
		if err := wsjson.Read(sctx, conn, &m); err != nil {
			return err
		}
		mu.Lock()
		last = time.Now()
		mu.Unlock()
		p.dispatch(ctx, conn, m)
	}
}

func (p *Phone) writeConn(ctx context.Context, conn *websocket.Conn, m signal.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return wsjson.Write(ctx, conn, m)
}

// send writes a message on the current WebSocket; with via set, only
// while via is the current one.
func (p *Phone) send(m signal.Msg, via *websocket.Conn) error {
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn == nil || via != nil && conn != via {
		return ErrNotConnected
	}
	if err := p.writeConn(context.Background(), conn, m); err != nil {
		return fmt.Errorf("%w: %v", ErrNotConnected, err)
	}
	return nil
}

// dispatch handles one message from the node, in the read loop.
func (p *Phone) dispatch(ctx context.Context, conn *websocket.Conn, m signal.Msg) {
	switch m.Type {
	case signal.TypePing:
		if err := p.writeConn(ctx, conn, signal.Msg{Type: signal.TypePong}); err != nil {
			p.log.Debug("Pong failed", "err", err)
		}
		return
	case signal.TypePong:
		return
	case signal.TypeWelcome:
		// A later welcome renews the ICE servers' credentials.
		if len(m.ICEServers) > 0 {
			p.mu.Lock()
			p.ice = m.ICEServers
			p.mu.Unlock()
		}
		return
	case signal.TypeInvite:
		p.onInvite(ctx, conn, m)
		return
	case signal.TypeMoved:
		p.superseded(conn, m.Node)
		return
	}
	if m.Call == "" {
		if m.Type == signal.TypeError {
			p.log.Warn("Node refused a message", "reason", m.Reason)
		}
		return
	}
	p.mu.Lock()
	c := p.calls[m.Call]
	p.mu.Unlock()
	if c == nil {
		p.log.Debug("Message for an unknown call", "type", m.Type, "call", m.Call)
		return
	}
	c.deliver(m)
}

// onInvite takes an incoming call that arrived on conn: busy when in a
// call, else a new Call that rings and answers in its own goroutine.
func (p *Phone) onInvite(ctx context.Context, conn *websocket.Conn, m signal.Msg) {
	at := time.Now()
	if m.Call == "" || m.From == nil || m.Desc == nil {
		p.log.Warn("Malformed invite", "call", m.Call)
		if m.Call != "" {
			p.send(signal.Msg{Type: signal.TypeReject, Call: m.Call, Reason: "malformed invite"}, conn)
		}
		return
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		p.send(signal.Msg{Type: signal.TypeUnavailable, Call: m.Call, Reason: "closing"}, conn)
		return
	}
	if _, dup := p.calls[m.Call]; dup {
		p.mu.Unlock()
		return
	}
	confID := m.Conference
	if !validID(confID) {
		confID = ""
	}
	var cf *Conference
	if confID != "" {
		if _, gone := p.left[confID]; gone {
			p.mu.Unlock()
			p.send(signal.Msg{Type: signal.TypeReject, Call: m.Call, Reason: "left the conference"}, conn)
			return
		}
		cf = p.confs[confID]
	}
	if cf == nil && len(p.calls) > 0 {
		p.mu.Unlock()
		p.log.Info("Busy", "call", m.Call)
		p.send(signal.Msg{Type: signal.TypeBusy, Call: m.Call}, conn)
		return
	}
	c := newCall(p, m.Call, false, *m.From)
	c.start = at
	c.via = conn
	c.confID = confID
	if cf != nil {
		// Another party of a conference this phone is in: a leg of the mesh.
		c.auto, c.conf = true, cf
		if !cf.addLeg(c) {
			p.mu.Unlock()
			p.send(signal.Msg{Type: signal.TypeReject, Call: m.Call, Reason: "left the conference"}, conn)
			return
		}
	}
	p.calls[m.Call] = c
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		c.answer(ctx, m)
	}()
}

// endCalls hangs up every call without waiting.
func (p *Phone) endCalls(reason string) []*Call {
	p.mu.Lock()
	calls := make([]*Call, 0, len(p.calls))
	for _, c := range p.calls {
		calls = append(calls, c)
	}
	p.mu.Unlock()
	for _, c := range calls {
		c.requestHangup(reason)
	}
	return calls
}

// Close hangs up all calls, closes the WebSocket, removes the registration
// (unless another node's replaced it) and waits for the Phone's
// goroutines. Only the first call does anything.
func (p *Phone) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true
		stopped := p.stopped
		p.mu.Unlock()
		for _, c := range p.endCalls("hangup") {
			<-c.Done()
		}
		p.mu.Lock()
		conn := p.conn
		p.mu.Unlock()
		if conn != nil {
			conn.Close(websocket.StatusNormalClosure, "bye")
		}
		p.cancel()
		p.wg.Wait()
		if !stopped {
			p.remove()
		}
	})
	return p.closeErr
}

// newCallID is a fresh 128-bit call ID in hex.
func newCallID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// iceConfig is the welcome's ICE servers.
func (p *Phone) iceConfig() []signal.ICEServer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ice
}
