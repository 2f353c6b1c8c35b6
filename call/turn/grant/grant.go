// Package grant is the protocol by which a node whose STUN/TURN relay has a
// public address lends it to the terminals of nodes behind NATs, whose own
// relays hand out private addresses that terminals in other homes cannot
// reach.
//
// Protocol /irmv/turn-grant/1.0.0, one request and one answer per stream,
// each a frame of internal/wire (a uvarint length, then JSON):
//
//	request  {}                                     at most MaxRequest bytes
//	answer   {"ice_servers": [...]} or {"error": "..."}  at most MaxResponse bytes
//
// The answer's ICE servers are the relay's STUN and TURN URLs with
// short-lived credentials (call/turn's TURN REST API style) for the user
// turn.ForeignPrefix + the asking node's peer ID: like any terminal of
// another node, their holders may relay only to the relay's own relayed
// addresses, so both terminals of a call meet on the same relay. Requests
// are limited per asking node (Rate a second, burst Burst; a node over it
// gets an error answer), and the relay itself bounds the allocations the
// terminals of each node hold at once (turn.Options.MaxForeignAllocations),
// however many grants they got. Grants are short-lived: an allocation made
// in time outlives its credentials.
package grant

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/internal/peerrate"
	"github.com/irmv/irmv/internal/wire"
)

// Protocol is the libp2p protocol ID.
const Protocol = "/irmv/turn-grant/1.0.0"

// Message size limits.
const (
	MaxRequest  = 256
	MaxResponse = 8 << 10
)

// Default quota per asking node.
const (
	Rate  rate.Limit = 0.5
	Burst            = 10
)

// ErrRefused is returned, wrapped, when the relay's node answers with an
// error (over quota, no relay).
var ErrRefused = errors.New("grant refused")

// Request asks for ICE servers. It has no fields yet; unknown ones are
// ignored, so later versions may add some.
type Request struct{}

// Response is the answer: ICE servers or an error.
type Response struct {
	ICEServers []signal.ICEServer `json:"ice_servers,omitempty"`
	Error      string             `json:"error,omitempty"`
}

// Issuer gives credentials of the relay for user, e.g. turn.Server.ICEServers
// with a TTL bound in.
type Issuer func(user string) []signal.ICEServer

// Server answers grant requests on a host.
type Server struct {
	h      host.Host
	issue  Issuer
	prefix string
	log    *slog.Logger

	limiters *peerrate.Limiters
}

// Serve answers requests on h with the servers issue gives for
// prefix + the asking peer's ID. Close stops it. A nil logger discards.
func Serve(h host.Host, issue Issuer, prefix string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{h: h, issue: issue, prefix: prefix, log: log, limiters: peerrate.New(Rate, Burst)}
	h.SetStreamHandler(Protocol, s.handle)
	return s
}

// Close stops answering.
func (s *Server) Close() error {
	s.h.RemoveStreamHandler(Protocol)
	return nil
}

func (s *Server) handle(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(10 * time.Second))
	from := st.Conn().RemotePeer()
	var req Request
	if err := wire.Read(bufio.NewReader(st), &req, MaxRequest); err != nil {
		st.Reset()
		return
	}
	var resp Response
	if s.limiters.Allow(from) {
		resp.ICEServers = s.issue(s.prefix + from.String())
		s.log.Debug("TURN grant", "peer", from)
	} else {
		resp.Error = "over quota"
	}
	if err := wire.Write(st, &resp, MaxResponse); err != nil {
		s.log.Debug("TURN grant answer failed", "peer", from, "err", err)
	}
}

// Fetch asks node p for ICE servers of its relay.
func Fetch(ctx context.Context, h host.Host, p peer.ID) ([]signal.ICEServer, error) {
	st, err := h.NewStream(ctx, p, Protocol)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := wire.Write(st, &Request{}, MaxRequest); err != nil {
		st.Reset()
		return nil, err
	}
	st.CloseWrite()
	var resp Response
	if err := wire.Read(bufio.NewReader(st), &resp, MaxResponse); err != nil {
		st.Reset()
		return nil, err
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("%w: %s", ErrRefused, resp.Error)
	}
	if len(resp.ICEServers) == 0 {
		return nil, fmt.Errorf("%w: no ICE servers", wire.ErrMalformed)
	}
	if err := signal.CheckICEServers(resp.ICEServers); err != nil {
		return nil, fmt.Errorf("%w: %v", wire.ErrMalformed, err)
	}
	return resp.ICEServers, nil
}
