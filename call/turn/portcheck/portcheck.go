// Package portcheck is the protocol by which a node behind a NAT learns
// whether its STUN/TURN relay answers at the node's public address: it
// asks another node to send a STUN Binding request (RFC 8489) to the
// relay's port at the address the asking node's connection comes from,
// and to say whether a Binding success response came back; and, so that
// a NAT that forwards only the relay's listening port does not pass, to
// send a datagram to a relayed port there too: the asker holds an
// allocation on its own relay (its relayed port one of --turn-ports),
// permits the checker's address on it, and sees whether the datagram
// came through. A node lends its relay at a public address only when
// this confirmed both ports.
//
// Protocol /irmv/turn-check/1.0.0, one request and one answer per stream,
// each a frame of internal/wire (a uvarint length, then JSON):
//
//	request  {"port": 3478, "relay": 50123, "nonce": "<16 bytes, base64>"}
//	                                                      at most MaxRequest bytes
//	answer   {"ip": "203.0.113.4", "answered": true, "sent": true}
//	                                                      at most MaxResponse bytes
//	         or {"error": "..."}
//
// "relay" and "nonce" are optional (without them only the listening
// port is checked). "ip" is the address the checker sent to: the remote
// IP of the very connection the request came over, never an address the
// asker names, so the protocol cannot direct a packet at anyone but the
// asker (or the NAT in front of it); a relayed connection has no such
// address and is refused. One request sends at most Tries Binding
// requests of 28 bytes to that address, TryInterval apart, and waits at
// most Wait in all for the answer, which must be a Binding success with
// the request's transaction ID; only then, and only with "relay", it
// sends at most Tries datagrams of the nonce (NonceSize bytes) to the
// relayed port there, RelayInterval apart, and says so ("sent"). The
// checker sends from the local IP of the connection the request came
// over, which is the address the asker permits. Requests are limited per
// asking node (Rate a second, burst Burst), GlobalRate a second (burst
// GlobalBurst) over all nodes, and Concurrent at once; over a limit the
// answer is an error. An asker takes "answered" only from a checker that
// saw it at the public address it means to check ("ip"), and the relayed
// port as reachable only when the nonce arrived at its allocation within
// RelayWait of a "sent" answer.
package portcheck

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
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
	MaxRequest  = 96
	MaxResponse = 256
	NonceSize   = 16
)

// Limits of a checker.
const (
	Rate          rate.Limit = 1.0 / 30 // per asking node
	Burst                    = 3
	GlobalRate    rate.Limit = 2 // over all asking nodes
	GlobalBurst              = 10
	Concurrent               = 8
	Tries                    = 3
	TryInterval              = 500 * time.Millisecond
	Wait                     = 2 * time.Second
	RelayInterval            = 100 * time.Millisecond
	RelayWait                = time.Second // after the answer, for the datagram to the relayed port
)

// Request asks for a Binding request to Port and, if Relay is not 0, a
// datagram of Nonce to the relayed port Relay.
type Request struct {
	Port  int    `json:"port"`
	Relay int    `json:"relay,omitempty"`
	Nonce []byte `json:"nonce,omitempty"`
}

// Response is the checker's answer.
type Response struct {
	IP       string `json:"ip,omitempty"`
	Answered bool   `json:"answered,omitempty"`
	Sent     bool   `json:"sent,omitempty"` // the nonce went to the relayed port
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
	local, _ := manet.ToIP(st.Conn().LocalMultiaddr())
	resp := s.answer(st.Conn().RemoteMultiaddr(), local, from, req)
	if err := wire.Write(st, &resp, MaxResponse); err != nil {
		s.log.Debug("TURN port check answer failed", "peer", from, "err", err)
	}
}

func (s *Server) answer(remote ma.Multiaddr, local net.IP, from peer.ID, req Request) Response {
	if req.Port < 1 || req.Port > 65535 {
		return Response{Error: "bad port"}
	}
	if req.Relay < 0 || req.Relay > 65535 || req.Relay != 0 && len(req.Nonce) != NonceSize {
		return Response{Error: "bad relay port or nonce"}
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
	if local != nil && (local.IsUnspecified() || local.To4() == nil != (ip.To4() == nil)) {
		local = nil
	}
	ok, err := Probe(ctx, local, &net.UDPAddr{IP: ip, Port: req.Port})
	sent := false
	if ok && req.Relay != 0 {
		sent = sendNonce(ctx, local, &net.UDPAddr{IP: ip, Port: req.Relay}, req.Nonce)
	}
	s.log.Debug("TURN port check", "peer", from, "ip", ip, "port", req.Port, "answered", ok, "relay", req.Relay, "sent", sent, "err", err)
	return Response{IP: ip.String(), Answered: ok, Sent: sent}
}

// sendNonce sends Tries datagrams of nonce to addr from local (nil: any),
// RelayInterval apart; it tells whether it sent them.
func sendNonce(ctx context.Context, local net.IP, addr *net.UDPAddr, nonce []byte) bool {
	conn, err := dialUDP(local, addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	for try := 0; try < Tries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return true
			case <-time.After(RelayInterval):
			}
		}
		// An ICMP error from an earlier datagram fails a later write;
		// the asker tells whether any came through.
		conn.Write(nonce)
	}
	return true
}

// dialUDP is a UDP socket to addr from local (nil: any), or from any if
// local cannot be bound.
func dialUDP(local net.IP, addr *net.UDPAddr) (*net.UDPConn, error) {
	if local != nil {
		if conn, err := net.DialUDP("udp", &net.UDPAddr{IP: local}, addr); err == nil {
			return conn, nil
		}
	}
	return net.DialUDP("udp", nil, addr)
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

// Probe sends up to Tries STUN Binding requests to addr from local (nil:
// any) and tells whether a Binding success with the same transaction ID
// came back before ctx ends.
func Probe(ctx context.Context, local net.IP, addr *net.UDPAddr) (bool, error) {
	conn, err := dialUDP(local, addr)
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

// Relay is an allocation on the asking node's own TURN relay
// (turn.Server.AllocateSelf).
type Relay interface {
	Port() int
	Permit(ip net.IP) error
	ReadFrom(b []byte) (int, net.Addr, error)
	SetReadDeadline(t time.Time) error
}

// Result is what a check found.
type Result struct {
	IP       net.IP // the address the checker sent to
	Answered bool   // the TURN port answered a Binding request there
	Sent     bool   // the checker sent the nonce to the relayed port there
	Relayed  bool   // the nonce reached the allocation
}

// Check asks node p to send a Binding request to port at the address p
// sees this node at and, with relay, a datagram to relay's port there.
// Checks with one relay run one at a time.
func Check(ctx context.Context, h host.Host, p peer.ID, port int, relay Relay) (Result, error) {
	st, err := h.NewStream(ctx, p, Protocol)
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	req := Request{Port: port}
	var got <-chan struct{}
	if relay != nil {
		ip, err := remoteIP(st.Conn().RemoteMultiaddr())
		if err != nil {
			st.Reset()
			return Result{}, err
		}
		if err := relay.Permit(ip); err != nil {
			st.Reset()
			return Result{}, fmt.Errorf("permission for %s: %w", ip, err)
		}
		req.Relay, req.Nonce = relay.Port(), make([]byte, NonceSize)
		rand.Read(req.Nonce)
		var done func()
		got, done = await(relay, req.Nonce)
		defer done()
	}
	if err := wire.Write(st, &req, MaxRequest); err != nil {
		st.Reset()
		return Result{}, err
	}
	st.CloseWrite()
	res, err := readResponse(bufio.NewReader(st))
	if err != nil {
		if !errors.Is(err, ErrRefused) {
			st.Reset()
		}
		return Result{}, err
	}
	if got != nil && res.Sent {
		t := time.NewTimer(RelayWait)
		defer t.Stop()
		select {
		case <-got:
			res.Relayed = true
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return res, nil
}

// await reads relay until nonce arrives (got closed) or done is called.
func await(relay Relay, nonce []byte) (got <-chan struct{}, done func()) {
	g, ended := make(chan struct{}), make(chan struct{})
	relay.SetReadDeadline(time.Time{})
	go func() {
		defer close(ended)
		buf := make([]byte, 1500)
		for {
			n, _, err := relay.ReadFrom(buf)
			if err != nil {
				return
			}
			if bytes.Equal(buf[:n], nonce) {
				close(g)
				return
			}
		}
	}()
	return g, func() {
		relay.SetReadDeadline(time.Now())
		<-ended
	}
}

// readResponse reads and checks an answer.
func readResponse(r io.Reader) (Result, error) {
	var resp Response
	if err := wire.Read(r, &resp, MaxResponse); err != nil {
		return Result{}, err
	}
	if resp.Error != "" {
		return Result{}, fmt.Errorf("%w: %.100s", ErrRefused, resp.Error)
	}
	ip := net.ParseIP(resp.IP)
	if ip == nil {
		return Result{}, fmt.Errorf("%w: no IP address", wire.ErrMalformed)
	}
	return Result{IP: ip, Answered: resp.Answered, Sent: resp.Answered && resp.Sent}, nil
}
