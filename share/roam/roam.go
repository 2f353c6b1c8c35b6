// Package roam tells the node a terminal was registered at before that the
// terminal moved, so that one terminal has one registration in the
// network: the newest.
//
// # Protocol
//
// When a terminal registers at node B and was registered at node A (the
// registration names A in From, or B finds A's record of the same key by a
// search), B opens a stream of Protocol to A and sends one Notice: the
// terminal's new record, signed by the terminal's key, or attested by B
// with the terminal's token at A for a terminal without a key. A answers
// one Reply and closes. Each message is one frame of internal/wire (uvarint
// length + JSON) of at most MaxMessage bytes.
//
// A checks that the record verifies and names B (the stream's
// authenticated peer) as its host, then that it supersedes A's own: signed
// by the same key with a higher sequence number, or, without a key, that
// the token is the terminal's at A. Then A removes its registration, stops
// announcing the terminal's identifiers, tells the terminal's WebSocket
// (Options.OnSuperseded) and replies Removed. Otherwise the Reply says why
// (Error) and, for an older record, A's sequence number.
//
// For a terminal without a key, B tells A named in From before it answers
// the registration: when A refuses (a wrong token), B removes a
// registration it just made and answers the error. B retries a notice whose stream cannot be
// opened (A is down) in the background for RetryFor, with backoff. Until A withdraws, searches refuse A's record
// of a keyed terminal as older wherever both are seen (package search).
// Each peer may send RateLimit notices a second (burst RateBurst);
// excess and malformed streams are reset and counted.
package roam

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/irmv/irmv/internal/peerrate"
	"github.com/irmv/irmv/internal/wire"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/share"
)

// Protocol is the node-to-node move notice.
const Protocol = "/irmv/move/1.0.0"

// Limits and timing.
const (
	MaxMessage = 8 << 10
	// RetryFor is how long a notice to an unreachable node is retried.
	RetryFor = 10 * time.Minute
	// RateLimit and RateBurst bound the notices one peer may send.
	RateLimit = 20
	RateBurst = 40
	// maxPending bounds notices in flight (with their retries).
	maxPending   = 1024
	streamTimout = 10 * time.Second
	findTimeout  = 3 * time.Second
	// firstTry bounds the attempt made while the registration waits.
	firstTry = 3 * time.Second
)

// Notice tells a node that a terminal it hosts registered elsewhere.
type Notice struct {
	Record *record.Record `json:"record"`
	// Token is the terminal's token at the receiving node, for a
	// terminal without a key.
	Token string `json:"token,omitempty"`
}

// Reply answers a Notice.
type Reply struct {
	Removed  bool   `json:"removed"`
	Terminal string `json:"terminal,omitempty"` // the handle removed
	Seq      uint64 `json:"seq,omitempty"`      // the receiver's seq, when it refused an older record
	Error    string `json:"error,omitempty"`
	// Code names why a notice was refused: forbidden (wrong token or key),
	// stale (not newer), not_found (no such terminal there), invalid.
	Code string `json:"code,omitempty"`
}

// ErrRefused is returned, wrapped with the node and its reason, when the
// node a registration names in From refused the move (a wrong token, a
// record not newer than its own): the terminal stays registered there.
var ErrRefused = errors.New("the previous node refused the move")

// Options configure a Service.
type Options struct {
	Host     host.Host       // required
	Registry *share.Registry // required
	// Find returns other nodes that host a terminal with b's key; nil:
	// only a registration's From is told.
	Find func(ctx context.Context, b *record.Body) []peer.ID
	// OnSuperseded is called after a hosted terminal was removed because
	// it registered at node; nil: nothing.
	OnSuperseded func(terminal string, node peer.ID)
	Registerer   prometheus.Registerer // may be nil
	Logger       *slog.Logger          // nil: discard
}

// Service answers move notices and sends them for new registrations.
type Service struct {
	o       Options
	log     *slog.Logger
	notices *prometheus.CounterVec

	mu       sync.Mutex
	limiters *peerrate.Limiters
	pending  int

	ctx    context.Context // ends at Close; owned, not passed in
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New starts answering Protocol streams. Close stops it.
func New(o Options) (*Service, error) {
	if o.Host == nil || o.Registry == nil {
		return nil, errors.New("roam.Options: Host and Registry must be set")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	notices := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "irmv_move_notices_total",
		Help: "Move notices by direction (sent, received) and outcome (removed, refused, unreachable, dropped).",
	}, []string{"direction", "outcome"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(notices); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{o: o, log: log, notices: notices, limiters: peerrate.New(RateLimit, RateBurst), ctx: ctx, cancel: cancel}
	o.Host.SetStreamHandler(Protocol, s.handle)
	return s, nil
}

// Close stops answering and sending notices and waits. Only the first
// call acts.
func (s *Service) Close() error {
	s.once.Do(func() {
		s.o.Host.RemoveStreamHandler(Protocol)
		s.cancel()
		s.wg.Wait()
		if s.o.Registerer != nil {
			s.o.Registerer.Unregister(s.notices)
		}
	})
	return nil
}

// handle answers one notice.
func (s *Service) handle(st network.Stream) {
	defer st.Close()
	from := st.Conn().RemotePeer()
	if !s.limiters.Allow(from) {
		s.notices.WithLabelValues("received", "dropped").Inc()
		st.Reset()
		return
	}
	st.SetDeadline(time.Now().Add(streamTimout))
	var n Notice
	if err := wire.Read(bufio.NewReader(st), &n, MaxMessage); err != nil || n.Record == nil || len(n.Token) > share.MaxField {
		s.notices.WithLabelValues("received", "dropped").Inc()
		st.Reset()
		return
	}
	var reply Reply
	sup, err := s.o.Registry.Supersede(n.Record, from, n.Token)
	if err != nil {
		s.notices.WithLabelValues("received", "refused").Inc()
		reply.Error, reply.Code = err.Error(), code(err)
		if errors.Is(err, share.ErrStale) {
			reply.Seq = sup.Seq
		}
		s.log.Debug("Move notice refused", "peer", from, "err", err)
	} else {
		s.notices.WithLabelValues("received", "removed").Inc()
		reply.Removed, reply.Terminal = true, sup.Terminal
		if s.o.OnSuperseded != nil {
			s.o.OnSuperseded(sup.Terminal, from)
		}
	}
	wire.Write(st, &reply, MaxMessage)
}

// code is a Reply's Code for a Supersede error.
func code(err error) string {
	switch {
	case errors.Is(err, share.ErrForbidden):
		return "forbidden"
	case errors.Is(err, share.ErrStale):
		return "stale"
	case errors.Is(err, share.ErrNotFound):
		return "not_found"
	case errors.Is(err, share.ErrInvalid):
		return "invalid"
	}
	return ""
}

// Moved tells the nodes a terminal was registered at before that it is
// now registered here: from (a peer ID, may be empty) with token (for a
// terminal without a key), and for a terminal with a key that is new
// here, the nodes Options.Find names.
//
// For a terminal without a key, from is asked first, at once (for up to
// firstTry), so that the registering user learns of a wrong token:
// Moved then returns an error wrapping ErrRefused and share.ErrForbidden.
// A from that does not host the terminal (not_found), or that answers
// with no reason code (it could not act on it now), is no refusal. A
// terminal with a key proves the move by its signed record, and a phone
// failing over from a dead node must not wait for it: its from, a from
// that cannot be reached and the nodes Find names are told in the
// background.
func (s *Service) Moved(ctx context.Context, rec *record.Record, from, token string, created bool) error {
	b, err := rec.Decoded()
	if err != nil {
		return nil
	}
	self := s.o.Host.ID()
	var to peer.ID
	if from != "" {
		if to, err = peer.Decode(from); err != nil || to == self {
			to = ""
		}
	}
	find := created && len(b.Key) > 0 && s.o.Find != nil
	if to != "" && len(b.Key) == 0 {
		ctx, cancel := context.WithTimeout(ctx, firstTry)
		reply, err := s.sendCtx(ctx, to, rec, token)
		cancel()
		switch {
		case err != nil:
		case reply.Removed || reply.Code == "not_found":
			s.replied(to, reply)
			to = ""
		case reply.Code == "forbidden" || reply.Code == "stale" || reply.Code == "invalid":
			s.replied(to, reply)
			return refusal(to, reply)
		}
		// Otherwise from could not act on it now (closing, a failed
		// write) or names no reason (an older version): told again in
		// the background, as when it cannot be reached.
	}
	if to == "" && !find {
		return nil
	}
	if !s.begin() {
		s.notices.WithLabelValues("sent", "dropped").Inc()
		s.log.Warn("Move notices dropped: too many in flight", "terminal", b.Terminal)
		return nil
	}
	go func() {
		defer s.end()
		targets := map[peer.ID]bool{}
		if to != "" {
			targets[to] = true
		}
		if find {
			ctx, cancel := context.WithTimeout(s.ctx, findTimeout)
			for _, p := range s.o.Find(ctx, b) {
				if p != self {
					targets[p] = true
				}
			}
			cancel()
		}
		var wg sync.WaitGroup
		for p := range targets {
			tok := ""
			if p == to {
				tok = token
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.notify(p, rec, tok)
			}()
		}
		wg.Wait()
	}()
	return nil
}

// refusal is the error for a Reply that kept the terminal at p.
func refusal(p peer.ID, r Reply) error {
	kind := share.ErrForbidden
	if r.Code == "stale" {
		kind = share.ErrStale
	} else if r.Code == "invalid" {
		kind = share.ErrInvalid
	}
	return &refusedError{node: p, kind: kind, reason: r.Error}
}

type refusedError struct {
	node   peer.ID
	kind   error
	reason string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("the previous node %s refused the move: %s", e.node, e.reason)
}

func (e *refusedError) Unwrap() []error { return []error{ErrRefused, e.kind} }

// begin counts a notice in flight unless there are too many or the
// Service is closed.
func (s *Service) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending >= maxPending || s.ctx.Err() != nil {
		return false
	}
	s.pending++
	s.wg.Add(1)
	return true
}

func (s *Service) end() {
	s.mu.Lock()
	s.pending--
	s.mu.Unlock()
	s.wg.Done()
}

// notify sends a notice to p, retrying while p cannot be reached.
func (s *Service) notify(p peer.ID, rec *record.Record, token string) {
	deadline := time.Now().Add(RetryFor)
	backoff := time.Second
	for {
		reply, err := s.send(p, rec, token)
		if err == nil {
			s.replied(p, reply)
			return
		}
		if s.ctx.Err() != nil || time.Now().After(deadline) {
			s.notices.WithLabelValues("sent", "unreachable").Inc()
			s.log.Info("Previous node unreachable", "node", p, "err", err)
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// replied counts and logs p's reply.
func (s *Service) replied(p peer.ID, reply Reply) {
	if reply.Removed {
		s.notices.WithLabelValues("sent", "removed").Inc()
		s.log.Info("Previous node withdrew the terminal", "node", p, "terminal", reply.Terminal)
		return
	}
	s.notices.WithLabelValues("sent", "refused").Inc()
	s.log.Warn("Previous node kept the terminal", "node", p, "reason", reply.Error, "seq", reply.Seq)
}

// send makes one attempt.
func (s *Service) send(p peer.ID, rec *record.Record, token string) (Reply, error) {
	return s.sendCtx(s.ctx, p, rec, token)
}

// sendCtx makes one attempt within ctx (and the Service's life).
func (s *Service) sendCtx(ctx context.Context, p peer.ID, rec *record.Record, token string) (Reply, error) {
	ctx, cancel := context.WithTimeout(ctx, streamTimout)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	// The old node may sit behind a NAT: over a relayed connection too.
	st, err := s.o.Host.NewStream(network.WithAllowLimitedConn(ctx, string(Protocol)), p, Protocol)
	if err != nil {
		return Reply{}, err
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	if err := wire.Write(st, &Notice{Record: rec, Token: token}, MaxMessage); err != nil {
		st.Reset()
		return Reply{}, err
	}
	st.CloseWrite()
	var reply Reply
	if err := wire.Read(bufio.NewReader(st), &reply, MaxMessage); err != nil {
		st.Reset()
		return Reply{}, err
	}
	return reply, nil
}
