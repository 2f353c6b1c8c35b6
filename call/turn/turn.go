// Package turn is a node's STUN and TURN relay (RFC 8489, RFC 8656) for
// the calls of its terminals, built on pion/turn.
//
// Terminals behind NATs that cannot reach each other directly relay their
// media through the node. The relay answers STUN binding requests from
// anyone and allocates relays only for holders of short-lived credentials
// that the node hands out to its registered terminals, in the style of the
// TURN REST API (draft-uberti-behave-turn-rest-00 section 2.2):
//
//	username = "<expiry unix seconds>:<user>"
//	password = base64(HMAC-SHA1(secret, username))
//
// The relay needs no state per credential: it recomputes the password from
// the username and refuses usernames whose expiry has passed. The long-term
// credential mechanism of RFC 8489 section 9.2 then authenticates each
// request with that password.
package turn

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 8489 long-term credentials and the TURN REST API use HMAC-SHA1
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/turn/v4"
	"github.com/pion/webrtc/v4"
)

// DefaultRealm is the realm used when Options.Realm is empty.
const DefaultRealm = "irmv"

// Options configures a [Server].
type Options struct {
	// ListenAddr is the UDP address to listen on, e.g. "127.0.0.1:3478";
	// port 0 picks a free one. Relays are bound to the same IP. Required.
	ListenAddr string
	// RelayIP is the address given out in relayed candidates, the one peers
	// can reach the relay at (e.g. the node's public address). Required.
	RelayIP net.IP
	// Realm is the authentication realm; empty means DefaultRealm.
	Realm string
	// Secret is the HMAC key of the credentials; nil picks a random one, so
	// that only this Server's Credentials are valid.
	Secret []byte
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server is a running STUN/TURN relay.
type Server struct {
	srv       *turn.Server
	conn      net.PacketConn
	realm     string
	secret    []byte
	log       *slog.Logger
	url       string // host:port for STUN/TURN URLs
	listen    *trackedConn
	relays    *trackedRelays
	closeOnce sync.Once
	closeErr  error
}

// New starts a relay listening on Options.ListenAddr.
func New(opts Options) (*Server, error) {
	if opts.ListenAddr == "" {
		return nil, ErrNoListenAddr
	}
	if opts.RelayIP == nil {
		return nil, ErrNoRelayIP
	}
	s := &Server{realm: opts.Realm, secret: opts.Secret, log: opts.Logger}
	if s.realm == "" {
		s.realm = DefaultRealm
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.secret == nil {
		s.secret = make([]byte, 32)
		if _, err := rand.Read(s.secret); err != nil {
			return nil, fmt.Errorf("turn: secret: %w", err)
		}
	}
	conn, err := net.ListenPacket(udpNetwork(opts.ListenAddr), opts.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("turn: listen: %w", err)
	}
	local, _ := conn.LocalAddr().(*net.UDPAddr)
	if local == nil {
		return nil, errors.Join(fmt.Errorf("turn: listen: unexpected address %v", conn.LocalAddr()), conn.Close())
	}
	bindIP := local.IP.String()
	// Terminals reach the relay at its bind address, or at RelayIP where it
	// listens on all addresses.
	urlIP := local.IP
	if urlIP.IsUnspecified() {
		urlIP = opts.RelayIP
	}
	s.url = net.JoinHostPort(urlIP.String(), strconv.Itoa(local.Port))
	s.listen = &trackedConn{PacketConn: conn, done: make(chan struct{})}
	s.relays = &trackedRelays{RelayAddressGenerator: &turn.RelayAddressGeneratorStatic{
		RelayAddress: opts.RelayIP,
		Address:      bindIP,
	}}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:       s.realm,
		AuthHandler: s.authenticate,
		PacketConnConfigs: []turn.PacketConnConfig{{
			PacketConn:            s.listen,
			RelayAddressGenerator: s.relays,
			PermissionHandler:     permitPeer(local.IP),
		}},
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("turn: start: %w", err), conn.Close())
	}
	s.srv, s.conn = srv, conn
	s.log.Info("TURN relay listening", "addr", conn.LocalAddr().String(), "relay_ip", opts.RelayIP.String())
	return s, nil
}

// permitPeer is the relay's permission policy: it relays to terminals,
// never to this machine's own loopback (its API, other services) or to
// multicast and unspecified addresses. A relay bound to loopback serves
// tests and local demos, whose peers are on loopback.
func permitPeer(bind net.IP) turn.PermissionHandler {
	local := bind.IsLoopback()
	return func(_ net.Addr, peer net.IP) bool {
		switch {
		case peer.IsUnspecified(), peer.IsMulticast():
			return false
		case peer.IsLoopback():
			return local
		}
		return true
	}
}

// Addr is the address the relay listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Credentials returns TURN credentials for user that are valid for ttl
// (rounded down to whole seconds). user should not contain ':'.
func (s *Server) Credentials(user string, ttl time.Duration) (username, password string, expires time.Time) {
	expires = time.Now().Add(ttl).Truncate(time.Second)
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + user
	return username, s.password(username), expires
}

func (s *Server) password(username string) string {
	mac := hmac.New(sha1.New, s.secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// authenticate is the pion AuthHandler: the key for a valid, unexpired
// username, ok false otherwise.
func (s *Server) authenticate(username, realm string, src net.Addr) ([]byte, bool) {
	exp, _, found := strings.Cut(username, ":")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if !found || err != nil {
		s.log.Debug("TURN username malformed", "username", username, "src", src.String())
		return nil, false
	}
	if time.Now().Unix() >= sec {
		s.log.Debug("TURN credentials expired", "username", username, "src", src.String())
		return nil, false
	}
	return turn.GenerateAuthKey(username, realm, s.password(username)), true
}

// ICEServers returns the relay as STUN and TURN servers for a pion or browser
// peer connection, with credentials for user valid for ttl.
func (s *Server) ICEServers(user string, ttl time.Duration) []webrtc.ICEServer {
	username, password, _ := s.Credentials(user, ttl)
	addr := s.url
	return []webrtc.ICEServer{
		{URLs: []string{"stun:" + addr}},
		{
			URLs:       []string{"turn:" + addr + "?transport=udp"},
			Username:   username,
			Credential: password,
		},
	}
}

// closeWait bounds how long Close waits for pion's goroutines.
const closeWait = 5 * time.Second

// Close stops the relay and its allocations and waits until their sockets
// are closed (pion's Server.Close does not wait: its read loop closes the
// allocations after it returns). Only the first call does anything; later
// ones return its result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.srv.Close()
		t := time.NewTimer(closeWait)
		defer t.Stop()
		select {
		case <-s.listen.done: // the read loop has ended and is closing the allocations
		case <-t.C:
			return
		}
		relaysClosed := make(chan struct{})
		go func() {
			s.relays.wg.Wait()
			close(relaysClosed)
		}()
		select {
		case <-relaysClosed:
		case <-t.C:
			s.log.Warn("TURN relays still open after Close")
		}
	})
	return s.closeErr
}

// trackedConn reports when a read fails: pion's read loop then ends.
type trackedConn struct {
	net.PacketConn
	done chan struct{}
	once sync.Once
}

func (c *trackedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err != nil {
		c.once.Do(func() { close(c.done) })
	}
	return n, addr, err
}

// trackedRelays counts the relay sockets that are open.
type trackedRelays struct {
	turn.RelayAddressGenerator
	wg sync.WaitGroup
}

func (g *trackedRelays) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	conn, addr, err := g.RelayAddressGenerator.AllocatePacketConn(network, requestedPort)
	if err != nil {
		return nil, nil, err
	}
	g.wg.Add(1)
	return &relayConn{PacketConn: conn, closed: g.wg.Done}, addr, nil
}

type relayConn struct {
	net.PacketConn
	closed func()
	once   sync.Once
}

func (c *relayConn) Close() error {
	err := c.PacketConn.Close()
	c.once.Do(c.closed)
	return err
}

// udpNetwork is "udp6" for an IPv6 listen address and "udp4" otherwise
// (IPv4, a host name, or none, which listens on all IPv4 addresses as
// before).
func udpNetwork(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "udp4"
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		return "udp6"
	}
	return "udp4"
}
