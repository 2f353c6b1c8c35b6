package media

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/internal/pionlog"
)

// Opus as WebRTC negotiates it (RFC 7587 section 7): always 48 kHz, two
// channels in the SDP whatever is actually sent.
const (
	opusPayloadType = 111
	opusClockRate   = 48000
	opusChannels    = 2
	chatLabel       = "chat"
)

// Options configures a [Peer].
type Options struct {
	// ICEServers are the STUN/TURN servers of the hosting node (as its
	// welcome names them); nil gathers host candidates only.
	ICEServers []signal.ICEServer
	// RelayOnly uses relayed candidates only (ICETransportPolicyRelay), so
	// that the other side never learns this terminal's addresses. It needs a
	// TURN server in ICEServers.
	RelayOnly bool
	// SettingEngine is a test seam for pion's network settings; nil uses the
	// defaults with multicast DNS disabled. When its LoggerFactory is nil,
	// pion logs to Logger.
	SettingEngine *webrtc.SettingEngine
	// RelayAcceptanceWait is how long the controlling side waits before it
	// nominates a pair with a relayed candidate; 0 means 150 ms. A test that
	// asserts a direct pair on a loaded machine sets it longer, so that a
	// slow direct check cannot lose to the relay.
	RelayAcceptanceWait time.Duration
	// Key is the terminal key that signs the local DTLS fingerprint; nil
	// leaves descriptions unsigned.
	Key ed25519.PrivateKey
	// OnCandidate is called with each local ICE candidate as it is gathered
	// (trickle ICE); the end of gathering is not reported. Nil drops them,
	// which only works where both sides can do without (never in practice).
	OnCandidate func(webrtc.ICECandidateInit)
	// OnTrackPacket, if not nil, is called with each received audio RTP
	// packet, in the receiving goroutine; it must not keep the packet.
	OnTrackPacket func(*rtp.Packet)
	// OnText, if not nil, is called with each text message on the "chat"
	// data channel.
	OnText func(string)
	// OnControl, if not nil, is called with each binary message on the
	// "chat" data channel: the terminals' own control messages (see
	// [Peer.SendControl]), never shown to the user.
	OnControl func([]byte)
	// OnState, if not nil, is called at each change of the connection state.
	OnState func(webrtc.PeerConnectionState)
	// Logger receives the peer's and pion's logs; nil discards them.
	Logger *slog.Logger
	// Continues, if not nil, is a running Peer of the same call whose
	// media this one takes over (make-before-break, see route.go): the
	// new Peer sends the same audio track, records into the same
	// recording, and when Continues ends its Play and recording carry on
	// here. Nil starts a call of its own.
	Continues *Peer
	// PassThrough makes the Peer send the RTP packets given to WriteRTP
	// (already encoded elsewhere: a SIP phone's, through the node's
	// bridge) instead of what Play reads. Not with Continues.
	PassThrough bool
	// OnReport, if not nil, may change each RTCP report block the Peer
	// sends of the other side's audio before it goes: a bridge folds in
	// what the phone on its other leg reports of the same stream, so that
	// the other side's quality covers both legs.
	OnReport func(*rtcp.ReceptionReport)
	// Codecs are the audio codecs the Peer negotiates, in order of
	// preference (its offer lists them so); nil: DefaultCodecs. An answer
	// takes the first of the offer's codecs that is in Codecs and names
	// only that one; both sides send it (Peer.Codec). A Peer with
	// Continues sends the codec of the Peer it continues.
	Codecs []Codec
}

// Peer is one side of an audio call: a pion PeerConnection with one audio
// sendrecv transceiver and a "chat" data channel. Its methods are safe for
// concurrent use.
type Peer struct {
	opts   Options
	codecs []Codec
	log    *slog.Logger
	pc     *webrtc.PeerConnection

	// stats is this PeerConnection's RTP statistics (see readStats); nil
	// if pion did not build the interceptor.
	stats stats.Getter
	// localSSRC and remoteSSRC are the audio streams' (under mu), 0 until
	// known.
	localSSRC, remoteSSRC uint32

	connected   chan struct{}
	firstPacket chan struct{}
	lastPacket  atomic.Int64 // when the latest audio packet arrived, Unix ns
	chatReady   chan struct{}
	ended       chan struct{} // Close called, or the connection failed or closed

	connectedOnce, firstOnce, chatOnce, endedOnce, closeOnce, followOnce sync.Once

	wg       sync.WaitGroup // goroutines started by the Peer
	closeErr error

	// statsMu is held (read) by readStats while it asks pion, and by
	// Close while it marks the Peer closed.
	statsMu sync.RWMutex

	mu    sync.Mutex
	codec Codec                          // the codec sent: track's or rtpTrack's
	track *webrtc.TrackLocalStaticSample // nil with Options.PassThrough
	// rtpTrack replaces track with Options.PassThrough.
	rtpTrack    *webrtc.TrackLocalStaticRTP
	closed      bool
	sender      *webrtc.RTPSender
	chat        *webrtc.DataChannel
	remoteSet   bool
	offered     bool                      // the first offer was made
	remoteUfrag string                    // ICE username fragment of the remote description
	pending     []webrtc.ICECandidateInit // candidates waiting for their remote description
	next        *Peer                     // the Peer that continues this call (route.go)
	handedOver  bool                      // this Peer ended with next carrying on
	detached    bool                      // the shared track is not sent here (route.go)

	sendMu sync.Mutex // serialises attaching and detaching the track

	gate *familyGate // nil without Options.OnCandidate

	recMu   sync.Mutex
	rec     *recorder // guarded by recMu
	recFrom *Peer     // Peer of the last packet recorded (route.go)
}

// pionICEServers are signalled ICE servers as pion takes them.
func pionICEServers(servers []signal.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(servers))
	for _, s := range servers {
		ws := webrtc.ICEServer{URLs: s.URLs, Username: s.Username}
		if s.Credential != "" {
			ws.Credential = s.Credential
		}
		out = append(out, ws)
	}
	return out
}

// New creates a Peer. It gathers no candidates until Offer or Answer.
func New(opts Options) (*Peer, error) {
	if opts.RelayOnly && len(opts.ICEServers) == 0 {
		return nil, ErrNoRelay
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	var se webrtc.SettingEngine
	if opts.SettingEngine != nil {
		se = *opts.SettingEngine
	} else {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	if se.LoggerFactory == nil {
		se.LoggerFactory = pionlog.Factory(log)
	}
	configureICE(&se, &opts)

	codecs, err := checkCodecs(opts.Codecs)
	if err != nil {
		return nil, err
	}
	m := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: c.capability(),
			PayloadType:        webrtc.PayloadType(c.PayloadType()),
		}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("media: register %s: %w", c, err)
		}
	}
	ir := &interceptor.Registry{}
	getter, err := registerInterceptors(m, ir, opts.OnReport)
	if err != nil {
		return nil, fmt.Errorf("media: interceptors: %w", err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))

	cfg := webrtc.Configuration{ICEServers: pionICEServers(opts.ICEServers)}
	if opts.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("media: new peer connection: %w", err)
	}
	var track *webrtc.TrackLocalStaticSample
	var rtpTrack *webrtc.TrackLocalStaticRTP
	codec := codecs[0]
	if prev := opts.Continues; prev != nil && !opts.PassThrough {
		// One track, bound to both connections: one packetizer, so both
		// legs carry the same sequence numbers and timestamps.
		prev.mu.Lock()
		track, codec = prev.track, prev.codec
		prev.mu.Unlock()
	} else if track, rtpTrack, err = newTrack(codec, opts.PassThrough); err != nil {
		return nil, errors.Join(err, pc.Close())
	}

	p := &Peer{
		opts:        opts,
		codecs:      codecs,
		log:         log,
		pc:          pc,
		stats:       *getter,
		codec:       codec,
		track:       track,
		rtpTrack:    rtpTrack,
		connected:   make(chan struct{}),
		firstPacket: make(chan struct{}),
		chatReady:   make(chan struct{}),
		ended:       make(chan struct{}),
	}
	if prev := opts.Continues; prev != nil {
		if err := prev.link(p); err != nil {
			return nil, errors.Join(err, pc.Close())
		}
	}
	if opts.OnCandidate != nil {
		p.gate = &familyGate{emit: opts.OnCandidate, addRemote: p.addHeldCandidate}
		pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
			if s == webrtc.ICEConnectionStateConnected {
				p.gate.release(-1)
			}
		})
	}
	pc.OnICECandidate(p.onCandidate)
	if sctp := pc.SCTP(); sctp != nil && sctp.Transport() != nil {
		sctp.Transport().ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
			if pair != nil && pair.Local != nil && pair.Remote != nil {
				log.Debug("Selected candidate pair", "local", pair.Local.String(), "remote", pair.Remote.String())
			}
		})
	}
	pc.OnConnectionStateChange(p.onState)
	pc.OnTrack(p.onTrack)
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() == chatLabel {
			p.setChat(dc)
		}
	})
	return p, nil
}

func (p *Peer) onCandidate(c *webrtc.ICECandidate) {
	switch {
	case p.gate == nil:
	case c == nil:
		p.gate.done()
	default:
		p.gate.add(c.ToJSON())
	}
}

func (p *Peer) onState(s webrtc.PeerConnectionState) {
	p.log.Debug("Connection state", "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
		p.connectedOnce.Do(func() { close(p.connected) })
		if prev := p.opts.Continues; prev != nil {
			prev.sendTrack(false, p) // the audio goes this way now
		}
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		p.end()
	}
	if p.opts.OnState != nil {
		p.opts.OnState(s)
	}
}

// onTrack runs in a goroutine of pion's; it reads the remote audio until
// the connection ends.
func (p *Peer) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	if t.Kind() != webrtc.RTPCodecTypeAudio {
		return
	}
	if !p.goLocked() {
		return
	}
	defer p.wg.Done()
	// The other side's Sender Reports come to the receiver: read, they
	// give our reports their LSR/DLSR (the other side's round trip).
	if p.goLocked() {
		go func() {
			defer p.wg.Done()
			for {
				if _, _, err := r.ReadRTCP(); err != nil {
					return
				}
			}
		}()
	}
	p.log.Debug("Remote track", "ssrc", uint32(t.SSRC()), "codec", t.Codec().MimeType)
	p.mu.Lock()
	p.remoteSSRC = uint32(t.SSRC())
	p.mu.Unlock()
	var pt uint8
	codec := CodecUnknown
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		if codec == CodecUnknown || pkt.PayloadType != pt {
			// The track's codec follows the payload type of its packets.
			pt, codec = pkt.PayloadType, CodecOf(t.Codec().MimeType)
		}
		p.firstOnce.Do(func() { close(p.firstPacket) })
		p.lastPacket.Store(time.Now().UnixNano())
		if p.opts.OnTrackPacket != nil {
			p.opts.OnTrackPacket(pkt)
		}
		p.record(pkt, codec)
	}
}

// goLocked registers a goroutine with p.wg unless the Peer is closed.
func (p *Peer) goLocked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

func (p *Peer) setChat(dc *webrtc.DataChannel) {
	p.mu.Lock()
	p.chat = dc
	p.mu.Unlock()
	dc.OnOpen(func() { p.chatOnce.Do(func() { close(p.chatReady) }) })
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		switch {
		case msg.IsString && p.opts.OnText != nil:
			p.opts.OnText(string(msg.Data))
		case !msg.IsString && p.opts.OnControl != nil:
			p.opts.OnControl(msg.Data)
		}
	})
}

// addSender adds the local audio track: as a new sendrecv transceiver for
// the caller, or on the transceiver of the remote offer for the callee.
func (p *Peer) addSender(offerer bool) error {
	p.mu.Lock()
	have := p.sender != nil
	p.mu.Unlock()
	if have {
		return nil
	}
	var sender *webrtc.RTPSender
	local, _ := p.localTrack()
	if offerer {
		tr, err := p.pc.AddTransceiverFromTrack(local, webrtc.RTPTransceiverInit{
			Direction: webrtc.RTPTransceiverDirectionSendrecv,
		})
		if err != nil {
			return fmt.Errorf("media: add transceiver: %w", err)
		}
		sender = tr.Sender()
	} else {
		s, err := p.pc.AddTrack(local)
		if err != nil {
			return fmt.Errorf("media: add track: %w", err)
		}
		sender = s
	}
	if !p.goLocked() {
		return ErrClosed
	}
	var ssrc uint32
	if enc := sender.GetParameters().Encodings; len(enc) > 0 {
		ssrc = uint32(enc[0].SSRC)
	}
	p.mu.Lock()
	p.sender = sender
	p.localSSRC = ssrc
	p.mu.Unlock()
	// RTCP must be read for the interceptors (reports, stats) to see it.
	go func() {
		defer p.wg.Done()
		for {
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	return nil
}

// WriteRTP sends one RTP packet of a PassThrough Peer, encoded in
// [Peer.Codec] (its payload type and SSRC are the track's; sequence
// numbers and timestamps pass).
func (p *Peer) WriteRTP(pkt *rtp.Packet) error {
	p.mu.Lock()
	tr := p.rtpTrack
	p.mu.Unlock()
	if tr == nil {
		return errors.New("media: WriteRTP needs Options.PassThrough")
	}
	return tr.WriteRTP(pkt)
}

// Offer starts a call as the caller: it adds the "chat" data channel and the
// Opus transceiver (on the first call), sets and returns the local offer.
// It does not wait for candidates; they trickle to Options.OnCandidate.
func (p *Peer) Offer() (signal.Description, error) {
	if p.isClosed() {
		return signal.Description{}, ErrClosed
	}
	if err := p.addSender(true); err != nil {
		return signal.Description{}, err
	}
	p.mu.Lock()
	haveChat := p.chat != nil
	p.mu.Unlock()
	if !haveChat {
		dc, err := p.pc.CreateDataChannel(chatLabel, nil)
		if err != nil {
			return signal.Description{}, fmt.Errorf("media: data channel: %w", err)
		}
		p.setChat(dc)
	}
	return p.offer(nil)
}

// addHeldCandidate adds a remote candidate the family gate held.
func (p *Peer) addHeldCandidate(c webrtc.ICECandidateInit) {
	if err := p.pc.AddICECandidate(c); err != nil {
		p.log.Debug("Held candidate rejected", "candidate", c.Candidate, "err", err)
	}
}

// RestartICE creates a new offer with fresh ICE credentials (RFC 8445
// section 9), for moving a running call to another route; the answer goes
// to Accept as usual.
func (p *Peer) RestartICE() (signal.Description, error) {
	if p.isClosed() {
		return signal.Description{}, ErrClosed
	}
	return p.offer(&webrtc.OfferOptions{ICERestart: true})
}

func (p *Peer) offer(o *webrtc.OfferOptions) (signal.Description, error) {
	if p.gate != nil {
		p.gate.reset()
		p.mu.Lock()
		first := !p.offered && o == nil
		p.offered = true
		p.mu.Unlock()
		if first && !p.opts.RelayOnly {
			// The caller is the controlling agent: it nominates.
			p.gate.holdForIPv6()
		}
	}
	offer, err := p.pc.CreateOffer(o)
	if err != nil {
		return signal.Description{}, fmt.Errorf("media: create offer: %w", err)
	}
	if err := p.pc.SetLocalDescription(offer); err != nil {
		return signal.Description{}, fmt.Errorf("media: set local offer: %w", err)
	}
	return describe(webrtc.SDPTypeOffer.String(), preferIPv6SDP(offer.SDP), p.opts.Key)
}

// Answer answers a remote offer as the callee. If remoteKey is not nil the
// offer's fingerprint signature is checked first (errors wrap
// [signal.ErrBadFingerprintSig] or [signal.ErrFingerprintMismatch]). Called again on a
// running call it answers a renegotiation such as an ICE restart.
func (p *Peer) Answer(remote signal.Description, remoteKey ed25519.PublicKey) (signal.Description, error) {
	if p.isClosed() {
		return signal.Description{}, ErrClosed
	}
	if err := p.setRemote(remote, webrtc.SDPTypeOffer, remoteKey); err != nil {
		return signal.Description{}, err
	}
	sc, err := pickCodec(remote.SDP, p.codecs)
	if err != nil {
		return signal.Description{}, err
	}
	if err := p.useCodec(sc); err != nil {
		return signal.Description{}, err
	}
	if err := p.addSender(false); err != nil {
		return signal.Description{}, err
	}
	if p.gate != nil {
		p.gate.reset()
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return signal.Description{}, fmt.Errorf("media: create answer: %w", err)
	}
	if err := p.pc.SetLocalDescription(answer); err != nil {
		return signal.Description{}, fmt.Errorf("media: set local answer: %w", err)
	}
	return describe(webrtc.SDPTypeAnswer.String(), preferIPv6SDP(answer.SDP), p.opts.Key)
}

// Accept sets the remote answer to the caller's offer, checking its
// fingerprint signature first if remoteKey is not nil.
func (p *Peer) Accept(remote signal.Description, remoteKey ed25519.PublicKey) error {
	if p.isClosed() {
		return ErrClosed
	}
	sc, err := pickCodec(remote.SDP, p.codecs)
	if err != nil {
		return err
	}
	if err := p.useCodec(sc); err != nil {
		return err
	}
	return p.setRemote(remote, webrtc.SDPTypeAnswer, remoteKey)
}

func (p *Peer) setRemote(d signal.Description, want webrtc.SDPType, key ed25519.PublicKey) error {
	if webrtc.NewSDPType(d.Type) != want {
		return fmt.Errorf("%w: got %q, want %q", ErrUnexpectedType, d.Type, want)
	}
	if key != nil {
		if err := d.Verify(key); err != nil {
			return err
		}
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: want, SDP: d.SDP}); err != nil {
		return fmt.Errorf("media: set remote %s: %w", want, err)
	}
	p.mu.Lock()
	p.remoteSet = true
	p.remoteUfrag = sdpUfrag(d.SDP)
	var ready []webrtc.ICECandidateInit
	later := p.pending[:0]
	for _, c := range p.pending {
		if p.candidateReadyLocked(c) {
			ready = append(ready, c)
		} else {
			later = append(later, c)
		}
	}
	p.pending = later
	p.mu.Unlock()
	for _, c := range ready {
		if p.gate != nil && !p.gate.remote(c) {
			continue
		}
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Warn("Queued candidate rejected", "candidate", c.Candidate, "err", err)
		}
	}
	return nil
}

// maxPending bounds the candidates queued for a remote description.
const maxPending = 64

// candidateReadyLocked tells whether c belongs to the current remote
// description. Candidates of an ICE restart can arrive before the
// description that introduces their username fragment; pion would drop them.
func (p *Peer) candidateReadyLocked(c webrtc.ICECandidateInit) bool {
	if !p.remoteSet {
		return false
	}
	uf := candidateUfrag(c)
	return uf == "" || uf == p.remoteUfrag
}

// candidateUfrag is the candidate's username fragment: the
// UsernameFragment field or the "ufrag" extension of the candidate
// attribute (RFC 8839 section 5.1).
func candidateUfrag(c webrtc.ICECandidateInit) string {
	if c.UsernameFragment != nil {
		return *c.UsernameFragment
	}
	f := strings.Fields(c.Candidate)
	for i := 8; i+1 < len(f); i += 2 { // extensions follow "typ <type>" at fields 6 and 7
		if f[i] == "ufrag" {
			return f[i+1]
		}
	}
	return ""
}

// sdpUfrag is the first a=ice-ufrag value of an SDP.
func sdpUfrag(sdp string) string {
	for line := range strings.Lines(sdp) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=ice-ufrag:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// AddCandidate adds a remote ICE candidate. A candidate that arrives before
// its remote description (the first one, or that of an ICE restart) is
// queued until that description is set.
func (p *Peer) AddCandidate(c webrtc.ICECandidateInit) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if !p.candidateReadyLocked(c) {
		if len(p.pending) == maxPending {
			p.pending = p.pending[1:]
		}
		p.pending = append(p.pending, c)
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if p.gate != nil && !p.gate.remote(c) {
		return nil
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("media: add candidate: %w", err)
	}
	return nil
}

// openChat returns the "chat" data channel if it is open.
func (p *Peer) openChat() (*webrtc.DataChannel, error) {
	p.mu.Lock()
	dc, closed := p.chat, p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return nil, ErrChatNotOpen
	}
	return dc, nil
}

// SendText sends a text message on the "chat" data channel. Before the
// channel is open it fails with [ErrChatNotOpen]; see [Peer.ChatReady].
func (p *Peer) SendText(s string) error {
	dc, err := p.openChat()
	if err != nil {
		return err
	}
	if err := dc.SendText(s); err != nil {
		return fmt.Errorf("media: send text: %w", err)
	}
	return nil
}

// SendControl sends a binary message on the "chat" data channel; the other
// side gets it in Options.OnControl. Before the channel is open it fails
// with [ErrChatNotOpen].
func (p *Peer) SendControl(b []byte) error {
	dc, err := p.openChat()
	if err != nil {
		return err
	}
	if err := dc.Send(b); err != nil {
		return fmt.Errorf("media: send control: %w", err)
	}
	return nil
}

// Connected is closed when the connection first reaches the connected state
// (ICE and DTLS up).
func (p *Peer) Connected() <-chan struct{} { return p.connected }

// FirstPacket is closed when the first audio RTP packet has arrived.
func (p *Peer) FirstPacket() <-chan struct{} { return p.firstPacket }

// ChatReady is closed when the "chat" data channel is open.
func (p *Peer) ChatReady() <-chan struct{} { return p.chatReady }

// Done is closed when the call has ended: Close was called, or the
// connection failed or was closed by the other side. For a Peer that
// another continues (Options.Continues) that is when the last of them ends.
func (p *Peer) Done() <-chan struct{} { return p.ended }

func (p *Peer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close ends the call and waits for the goroutines the Peer and its
// PeerConnection started. Only the first call does anything; later calls
// wait for it and return its result.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		p.statsMu.Lock()
		p.mu.Lock()
		p.closed = true
		shared := p.next != nil || p.opts.Continues != nil
		p.mu.Unlock()
		p.statsMu.Unlock()
		if shared {
			// Unbind the shared track first: a Play writing on it
			// then never sees this connection's write errors.
			p.sendTrack(false, nil)
		}
		p.end()
		if err := p.pc.GracefulClose(); err != nil {
			p.closeErr = fmt.Errorf("media: close: %w", err)
		}
		if p.gate != nil {
			p.gate.stop()
		}
		p.wg.Wait()
	})
	return p.closeErr
}
