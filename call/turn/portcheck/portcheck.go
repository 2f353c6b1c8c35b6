// Package portcheck is the protocol by which a node behind a NAT learns
// whether its STUN/TURN relay answers at the node's public address: it
// asks another node to send a STUN Binding request (RFC 8489) to the
// relay's port at the address the asking node's connection comes from,
// and to say whether a Binding success response came back. A node lends
// its relay at a public address only when this confirmed the port.
//
// Protocol /irmv/turn-check/1.0.0, one request and one answer per stream,
// each a frame of internal/wire (a uvarint length, then JSON):
//
//	request  {"port": 3478}                               at most MaxRequest bytes
//	answer   {"ip": "203.0.113.4", "answered": true}      at most MaxResponse bytes
//	         or {"error": "..."}
//
// "ip" is the address the checker sent to: the remote IP of the very
// connection the request came over, never an address the asker names, so
// the protocol cannot direct a packet at anyone but the asker (or the NAT
// in front of it); a relayed connection has no such address and is
// refused. One request sends at most Tries Binding requests of 28 bytes
// to that address, TryInterval apart, and waits at most Wait in all for
// the answer, which must be a Binding success with the request's
// transaction ID. Requests are limited per asking node (Rate a second,
// burst Burst), GlobalRate a second (burst GlobalBurst) over all nodes,
// and Concurrent at once; over a limit the answer is an error. An asker
// takes "answered" only from a checker that saw it at the public address
// it means to check ("ip").
package portcheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/pion/stun/v4"
	"golang.org/x/time/rate"

	"github.com/irmv/irmv/internal/peerrate"
	"github.com/irmv/irmv/internal/wire"
)

// Protocol is the libp2p protocol ID.
const Protocol = "/irmv/turn-check/1.0.0"

// Message size limits.
const (
	MaxRequest  = 64
	MaxResponse = 256
)

// Limits of a checker.
const (
	Rate        rate.Limit = 1.0 / 30 // per asking node
	Burst                  = 3
	GlobalRate  rate.Limit = 2 // over all asking nodes
	GlobalBurst            = 10
	Concurrent             = 8
	Tries                  = 3
	TryInterval            = 500 * time.Millisecond
	Wait                   = 2 * time.Second
)

// Request asks for a Binding request to Port.
type Request struct {
	Port int `json:"port"`
}

// Response is the checker's answer.
type Response struct {
	IP       string `json:"ip,omitempty"`
	Answered bool   `json:"answered,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ErrRefused is returned, wrapped, when the checker answers with an error
// (over a limit, a relayed connection, a bad port).
var ErrRefused = errors.New("port check refused")

// Server answers port checks on a host.
type Server struct {
	h        host.Host
	log      *slog.Logger
	limiters *peerrate.Limiters
	all      *rate.Limiter
	slots    chan struct{}
}

// Serve answers requests on h until Close. A nil logger discards.
func Serve(h host.Host, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{h: h, log: log, limiters: peerrate.New(Rate, Burst),
		all: rate.NewLimiter(GlobalRate, GlobalBurst), slots: make(chan struct{}, Concurrent)}
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
	st.SetDeadline(time.Now().Add(Wait + 5*time.Second))
	from := st.Conn().RemotePeer()
	var req Request
	if err := wire.Read(bufio.NewReader(st), &req, MaxRequest); err != nil {
		st.Reset()
		return
	}
	resp := s.answer(st.Conn().RemoteMultiaddr(), from, req)
	if err := wire.Write(st, &resp, MaxResponse); err != nil {
		s.log.Debug("TURN port check answer failed", "peer", from, "err", err)
	}
}

func (s *Server) answer(remote ma.Multiaddr, from peer.ID, req Request) Response {
	if req.Port < 1 || req.Port > 65535 {
		return Response{Error: "bad port"}
	}
	ip, err := remoteIP(remote)
	if err != nil {
		return Response{Error: err.Error()}
	}
	if !s.limiters.Allow(from) || !s.all.Allow() {
		return Response{Error: "over quota"}
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		return Response{Error: "busy"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	ok, err := Probe(ctx, &net.UDPAddr{IP: ip, Port: req.Port})
	s.log.Debug("TURN port check", "peer", from, "ip", ip, "port", req.Port, "answered", ok, "err", err)
	return Response{IP: ip.String(), Answered: ok}
}

// remoteIP is the IP a connection comes from; an error for a relayed one.
func remoteIP(remote ma.Multiaddr) (net.IP, error) {
	if _, err := remote.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return nil, errors.New("relayed connection")
	}
	ip, err := manet.ToIP(remote)
	if err != nil {
		return nil, errors.New("no IP address")
	}
	return ip, nil
}

// Probe sends up to Tries STUN Binding requests to addr and tells whether
// a Binding success with the same transaction ID came back before ctx
// ends.
func Probe(ctx context.Context, addr *net.UDPAddr) (bool, error) {
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 1500)
	for try := 0; try < Tries && ctx.Err() == nil; try++ {
		if _, err := conn.Write(req.Raw); err != nil {
			return false, err
		}
		conn.SetReadDeadline(time.Now().Add(TryInterval))
		for ctx.Err() == nil {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break // the next try
				}
				// An ICMP port unreachable: nothing listens there.
				return false, err
			}
			m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if m.Decode() == nil && m.Type == stun.BindingSuccess && m.TransactionID == req.TransactionID {
				return true, nil
			}
		}
	}
	return false, ctx.Err()
}

// Check asks node p to send a Binding request to port at the address p
// sees this node at; it returns that address and whether the relay
// answered there.
func Check(ctx context.Context, h host.Host, p peer.ID, port int) (net.IP, bool, error) {
	st, err := h.NewStream(ctx, p, Protocol)
	if err != nil {
		return nil, false, err
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := wire.Write(st, &Request{Port: port}, MaxRequest); err != nil {
		st.Reset()
		return nil, false, err
	}
	st.CloseWrite()
	ip, ok, err := readResponse(bufio.NewReader(st))
	if err != nil && !errors.Is(err, ErrRefused) {
		st.Reset()
	}
	return ip, ok, err
}

// readResponse reads and checks an answer.
func readResponse(r io.Reader) (net.IP, bool, error) {
	var resp Response
	if err := wire.Read(r, &resp, MaxResponse); err != nil {
		return nil, false, err
	}
	if resp.Error != "" {
		return nil, false, fmt.Errorf("%w: %.100s", ErrRefused, resp.Error)
	}
	ip := net.ParseIP(resp.IP)
	if ip == nil {
		return nil, false, fmt.Errorf("%w: no IP address", wire.ErrMalformed)
	}
	return ip, resp.Answered, nil
}
