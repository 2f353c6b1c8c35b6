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
// the username and refuses new allocations for usernames whose expiry has
// passed. The long-term credential mechanism of RFC 8489 section 9.2 then
// authenticates each request with that password. An allocation made in
// time is refreshed with the same credentials for up to MaxCallLength past
// their expiry, so a credential needs to last only until a call is set up,
// not as long as the call.
//
// Foreign users (ForeignPrefix: the terminals of other nodes) hold at most
// Options.MaxForeignAllocations allocations at a time per user (that is,
// per node they came through), and Options.MaxForeignTotal all together;
// the relay answers more with 486 Allocation Quota Reached (RFC 8656
// section 7.2).
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
	"sync/atomic"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/internal/pionlog"
)

// DefaultRealm is the realm used when Options.Realm is empty.
const DefaultRealm = "irmv"

// Options configures a [Server].
type Options struct {
	// ListenAddr is the UDP address to listen on, e.g. "127.0.0.1:3478" or
	// "[::1]:3478"; port 0 picks a free one. Relays are bound to the same
	// IP. An unspecified IP ("0.0.0.0:3478", "[::]:3478", ":3478") means
	// all addresses of both families: IPv4 if RelayIP is an IPv4 address,
	// and IPv6 if there is an IPv6 relay address (RelayIP, RelayIP6, or
	// the one found), each on its own socket, on the same port where it is
	// free. Required.
	ListenAddr string
	// RelayIP is the address given out in relayed candidates, the one peers
	// can reach the relay at (e.g. the node's public address). Required.
	RelayIP net.IP
	// RelayIP6 is the IPv6 address of the relay where ListenAddr's IP is
	// unspecified and RelayIP is an IPv4 address; nil: this machine's
	// first global IPv6 address, else its first unique local one (RFC
	// 4193), else no IPv6 socket. Ignored for a specific ListenAddr IP.
	RelayIP6 net.IP
	// MinPort and MaxPort bound the UDP ports of relayed addresses, so
	// that a firewall in front of the relay can let exactly those in;
	// both 0: any port the system picks.
	MinPort, MaxPort uint16
	// Realm is the authentication realm; empty means DefaultRealm.
	Realm string
	// Secret is the HMAC key of the credentials; nil picks a random one, so
	// that only this Server's Credentials are valid.
	Secret []byte
	// MaxForeignAllocations bounds the allocations a foreign user
	// (ForeignPrefix + a node's peer ID) holds at once; zero means
	// DefaultMaxForeignAllocations.
	MaxForeignAllocations int
	// MaxForeignTotal bounds the allocations all foreign users hold
	// together (peer IDs are free); zero means DefaultMaxForeignTotal.
	MaxForeignTotal int
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultMaxForeignAllocations: a call relayed here takes an allocation
// per terminal, so this is some eight calls at once per other node.
const DefaultMaxForeignAllocations = 16

// DefaultMaxForeignTotal: some 256 relayed calls at once for other nodes'
// terminals; each allocation holds a socket and a few goroutines.
const DefaultMaxForeignTotal = 512

// MaxCallLength is how long past its credentials' expiry an allocation is
// still refreshed.
const MaxCallLength = 24 * time.Hour

// Server is a running STUN/TURN relay.
//
// A relay listening on both families allocates relayed addresses of the
// family a client asks for (REQUESTED-ADDRESS-FAMILY, RFC 6156 section
// 4.1.1), by default that of the socket the client reached (pion/turn v5
// server). Terminals get a STUN and a TURN URL per family.
type Server struct {
	srv       *turn.Server
	socks     []*socket // IPv4 first
	realm     string
	secret    []byte
	log       *slog.Logger
	relays    *trackedRelays
	relayIPs  []net.IP // the addresses relayed candidates carry
	closeOnce sync.Once
	closeErr  error

	foreignMu sync.Mutex
	foreign   map[string]time.Time // client address of a ForeignPrefix user → its credentials' expiry

	public atomic.Pointer[net.IP] // SetPublicIP's address; nil: none

	maxForeignAllocs int
	maxForeignTotal  int
	allocsMu         sync.Mutex
	allocs           map[string]int // live allocations by foreign user
	foreignTotal     int            // their sum
}

// ForeignPrefix begins the user names of credentials a node gives the
// terminals of other nodes (for the route through the callee's node's
// relay). Such a client may relay only to this relay's own relayed
// addresses, where the terminals it calls are reached: not to the node's
// LAN or the Internet at large, as a terminal of this node may.
const ForeignPrefix = "peer-"

// maxForeign bounds the client addresses remembered as foreign; beyond
// it (after dropping expired ones) a foreign client is refused.
const maxForeign = 4096

// socket is one listening socket of the relay.
type socket struct {
	conn *trackedConn
	url  string // host:port for STUN/TURN URLs
}

// New starts a relay listening on Options.ListenAddr.
func New(opts Options) (*Server, error) {
	if opts.ListenAddr == "" {
		return nil, ErrNoListenAddr
	}
	if opts.RelayIP == nil {
		return nil, ErrNoRelayIP
	}
	if opts.MinPort > opts.MaxPort || opts.MinPort == 0 && opts.MaxPort != 0 {
		return nil, fmt.Errorf("%w: %d-%d", ErrBadPorts, opts.MinPort, opts.MaxPort)
	}
	s := &Server{realm: opts.Realm, secret: opts.Secret, log: opts.Logger, maxForeignAllocs: opts.MaxForeignAllocations, allocs: map[string]int{}}
	if s.maxForeignAllocs <= 0 {
		s.maxForeignAllocs = DefaultMaxForeignAllocations
	}
	s.maxForeignTotal = opts.MaxForeignTotal
	if s.maxForeignTotal <= 0 {
		s.maxForeignTotal = DefaultMaxForeignTotal
	}
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
	host, port, err := net.SplitHostPort(opts.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("turn: listen: %w", err)
	}
	// All addresses, or one (an IP, or a host name as the system resolves
	// it).
	bind := net.ParseIP(host)
	all := host == "" || bind != nil && bind.IsUnspecified()
	s.relays = &trackedRelays{}
	var configs []turn.PacketConnConfig
	closeAll := func() {
		for _, k := range s.socks {
			_ = k.conn.Close()
		}
	}
	add := func(network, addr string, relayIP net.IP) error {
		conn, err := net.ListenPacket(network, addr)
		if err != nil {
			return err
		}
		local, _ := conn.LocalAddr().(*net.UDPAddr)
		if local == nil {
			return errors.Join(fmt.Errorf("unexpected address %v", conn.LocalAddr()), conn.Close())
		}
		// Terminals reach the relay at its bind address, or at the relay
		// address where it listens on all addresses.
		urlIP := local.IP
		if urlIP.IsUnspecified() {
			urlIP = relayIP
		}
		k := &socket{
			conn: &trackedConn{PacketConn: conn, done: make(chan struct{})},
			url:  net.JoinHostPort(urlIP.String(), strconv.Itoa(local.Port)),
		}
		s.socks = append(s.socks, k)
		s.relayIPs = append(s.relayIPs, relayIP)
		var gen turn.RelayAddressGenerator = &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: local.IP.String()}
		if opts.MaxPort != 0 {
			gen = &turn.RelayAddressGeneratorPortRange{RelayAddress: relayIP, Address: local.IP.String(), MinPort: opts.MinPort, MaxPort: opts.MaxPort}
		}
		s.relays.set(network, gen)
		configs = append(configs, turn.PacketConnConfig{
			PacketConn:            k.conn,
			RelayAddressGenerator: s.relays,
			PermissionHandler:     s.permit(permitPeer(local.IP)),
		})
		s.log.Info("TURN relay listening", "addr", conn.LocalAddr().String(), "relay_ip", relayIP.String())
		return nil
	}
	if !all {
		if err := add(udpNetwork(opts.ListenAddr), opts.ListenAddr, opts.RelayIP); err != nil {
			return nil, fmt.Errorf("turn: listen: %w", err)
		}
	} else {
		relay6 := opts.RelayIP
		if relay6.To4() != nil {
			if err := add("udp4", net.JoinHostPort("0.0.0.0", port), opts.RelayIP); err != nil {
				return nil, fmt.Errorf("turn: listen: %w", err)
			}
			relay6 = opts.RelayIP6
			if relay6 == nil {
				relay6 = firstIPv6()
			}
			// The IPv4 socket's port, so that one port serves both.
			port = strconv.Itoa(s.socks[0].conn.LocalAddr().(*net.UDPAddr).Port)
		}
		if relay6 != nil {
			err := add("udp6", net.JoinHostPort("::", port), relay6)
			if err != nil && len(s.socks) > 0 && opts.RelayIP6 == nil {
				// No IPv6 here after all (disabled, or the port taken):
				// serve IPv4 alone.
				s.log.Warn("TURN relay not listening on IPv6", "port", port, "err", err)
			} else if err != nil {
				closeAll()
				return nil, fmt.Errorf("turn: listen on IPv6: %w", err)
			}
		}
	}
	srv, err := turn.NewServer(turn.ServerConfig{
		Realm:        s.realm,
		AuthHandler:  s.authHandler,
		QuotaHandler: s.quota,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(_, _ net.Addr, _, userID, _ string, _ net.Addr, _ int) { s.countAlloc(userID, 1) },
			OnAllocationDeleted: func(_, _ net.Addr, _, userID, _ string) { s.countAlloc(userID, -1) },
		},
		PacketConnConfigs: configs,
		LoggerFactory:     pionlog.Factory(s.log),
	})
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("turn: start: %w", err)
	}
	s.srv = srv
	return s, nil
}

// firstIPv6 is this machine's first global IPv6 address, else its first
// unique local one, nil if it has neither.
func firstIPv6() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ula net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() != nil || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		if !ipn.IP.IsPrivate() {
			return ipn.IP
		}
		if ula == nil {
			ula = ipn.IP
		}
	}
	return ula
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

// permit applies the foreign-client rule (ForeignPrefix) on top of base.
func (s *Server) permit(base turn.PermissionHandler) turn.PermissionHandler {
	return func(client net.Addr, peer net.IP) bool {
		if !base(client, peer) {
			return false
		}
		if !s.isForeign(client) {
			return true
		}
		for _, ip := range s.relayIPs {
			if ip.Equal(peer) {
				return true
			}
		}
		if pub := s.public.Load(); pub != nil && pub.Equal(peer) {
			return true
		}
		s.log.Debug("TURN permission refused to a foreign client", "client", client.String(), "peer", peer.String())
		return false
	}
}

// noteForeign remembers that client authenticated as a foreign user until
// exp; false if too many are remembered.
func (s *Server) noteForeign(client net.Addr, exp time.Time) bool {
	s.foreignMu.Lock()
	defer s.foreignMu.Unlock()
	if s.foreign == nil {
		s.foreign = map[string]time.Time{}
	}
	key := client.String()
	if _, ok := s.foreign[key]; !ok && len(s.foreign) >= maxForeign {
		now := time.Now()
		for k, e := range s.foreign {
			if now.After(e) {
				delete(s.foreign, k)
			}
		}
		if len(s.foreign) >= maxForeign {
			return false
		}
	}
	if exp.After(s.foreign[key]) {
		s.foreign[key] = exp
	}
	return true
}

func (s *Server) isForeign(client net.Addr) bool {
	if client == nil {
		return false
	}
	s.foreignMu.Lock()
	defer s.foreignMu.Unlock()
	_, ok := s.foreign[client.String()]
	return ok
}

// Addr is the address the relay listens on (the IPv4 one where it listens
// on both families).
func (s *Server) Addr() net.Addr { return s.socks[0].conn.LocalAddr() }

// Addrs are the addresses the relay listens on, IPv4 first.
func (s *Server) Addrs() []net.Addr {
	a := make([]net.Addr, len(s.socks))
	for i, k := range s.socks {
		a[i] = k.conn.LocalAddr()
	}
	return a
}

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

// authHandler is the pion AuthHandler.
func (s *Server) authHandler(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	key, ok = s.authenticate(ra.Username, ra.Realm, ra.SrcAddr, ra.Method == stun.MethodAllocate)
	return ra.Username, key, ok
}

// authenticate gives the key for a valid username, ok false otherwise: for
// a new allocation an unexpired one, for the requests of an allocation
// (refresh, permissions, channels, which pion accepts only from the
// allocation's own client) one that expired less than MaxCallLength ago.
func (s *Server) authenticate(username, realm string, src net.Addr, allocate bool) ([]byte, bool) {
	exp, _, found := strings.Cut(username, ":")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if !found || err != nil {
		s.log.Debug("TURN username malformed", "username", username, "src", src.String())
		return nil, false
	}
	valid := time.Unix(sec, 0)
	if !allocate {
		valid = valid.Add(MaxCallLength)
	}
	if !time.Now().Before(valid) {
		s.log.Debug("TURN credentials expired", "username", username, "src", src.String(), "allocate", allocate)
		return nil, false
	}
	if _, user, _ := strings.Cut(username, ":"); strings.HasPrefix(user, ForeignPrefix) && src != nil {
		if !s.noteForeign(src, time.Unix(sec, 0).Add(MaxCallLength)) { // as long as its allocations may live
			s.log.Debug("TURN: too many foreign clients", "src", src.String())
			return nil, false
		}
	}
	return turn.GenerateAuthKey(username, realm, s.password(username)), true
}

// foreignUser is the user of a ForeignPrefix username ("<expiry>:<user>"),
// "" for any other.
func foreignUser(username string) string {
	_, user, _ := strings.Cut(username, ":")
	if !strings.HasPrefix(user, ForeignPrefix) {
		return ""
	}
	return user
}

// quota is the pion QuotaHandler: a foreign user may hold
// MaxForeignAllocations allocations at once, all of them together
// MaxForeignTotal.
func (s *Server) quota(username, _ string, src net.Addr) bool {
	user := foreignUser(username)
	if user == "" {
		return true
	}
	s.allocsMu.Lock()
	defer s.allocsMu.Unlock()
	if s.allocs[user] >= s.maxForeignAllocs || s.foreignTotal >= s.maxForeignTotal {
		s.log.Debug("TURN allocation quota reached", "user", user, "src", src.String(), "foreign", s.foreignTotal)
		return false
	}
	return true
}

// countAlloc follows the allocations of foreign users.
func (s *Server) countAlloc(username string, d int) {
	user := foreignUser(username)
	if user == "" {
		return
	}
	s.allocsMu.Lock()
	defer s.allocsMu.Unlock()
	s.foreignTotal += d
	if s.allocs[user] += d; s.allocs[user] <= 0 {
		delete(s.allocs, user)
	}
}

// SetPublicIP makes ip, an IPv4 address at which a NAT in front of the
// relay forwards to it (a 1:1 NAT, a DMZ host, a port forward of the TURN
// and relay ports), the address of new IPv4 relayed candidates and of the
// URLs given to foreign users. The node's own terminals keep the address
// they reach the relay at directly. nil withdraws it (the NAT no longer
// forwards): new relayed candidates carry the relay's own address again.
func (s *Server) SetPublicIP(ip net.IP) {
	if ip == nil {
		if s.public.Swap(nil) != nil {
			s.relays.public.Store(nil)
			s.log.Info("TURN relay's public address withdrawn")
		}
		return
	}
	if ip = ip.To4(); ip == nil {
		return
	}
	s.public.Store(&ip)
	s.relays.public.Store(&ip)
	s.log.Info("TURN relay's public address", "ip", ip.String())
}

// PublicIP is the address SetPublicIP set, else the one relayed
// candidates carry (the IPv4 one where the relay listens on both).
func (s *Server) PublicIP() net.IP {
	if p := s.public.Load(); p != nil {
		return *p
	}
	return s.relayIPs[0]
}

// ICEServers returns the relay as STUN and TURN servers for a pion or browser
// peer connection, with credentials for user valid for ttl: a STUN and a
// TURN URL per address family the relay listens on, IPv4 first.
func (s *Server) ICEServers(user string, ttl time.Duration) []signal.ICEServer {
	username, password, _ := s.Credentials(user, ttl)
	pub := s.public.Load()
	var stunURLs, turnURLs []string
	for _, k := range s.socks {
		url := k.url
		if _, port, err := net.SplitHostPort(k.url); err == nil && pub != nil && strings.HasPrefix(user, ForeignPrefix) && s.isV4(k) {
			url = net.JoinHostPort(pub.String(), port) // terminals in other homes reach it there
		}
		stunURLs = append(stunURLs, "stun:"+url)
		turnURLs = append(turnURLs, "turn:"+url+"?transport=udp")
	}
	return []signal.ICEServer{
		{URLs: stunURLs},
		{URLs: turnURLs, Username: username, Credential: password},
	}
}

// isV4 tells whether k is an IPv4 socket.
func (s *Server) isV4(k *socket) bool {
	a, ok := k.conn.LocalAddr().(*net.UDPAddr)
	return ok && a.IP.To4() != nil
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
		for _, k := range s.socks {
			select {
			case <-k.conn.done: // the read loop has ended and is closing the allocations
			case <-t.C:
				return
			}
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

// trackedRelays allocates relays in the family asked for, on the socket of
// that family, and counts those open.
type trackedRelays struct {
	v4, v6 turn.RelayAddressGenerator // nil: no socket of that family
	public atomic.Pointer[net.IP]     // IPv4 relayed addresses carry it instead; nil: as generated
	wg     sync.WaitGroup
}

func (g *trackedRelays) set(network string, r turn.RelayAddressGenerator) {
	if network == "udp6" {
		g.v6 = r
	} else {
		g.v4 = r
	}
}

func (g *trackedRelays) family(network string) (turn.RelayAddressGenerator, error) {
	r := g.v4
	if strings.HasSuffix(network, "6") {
		r = g.v6
	}
	if r == nil {
		return nil, fmt.Errorf("%w: %s", errNoFamily, network)
	}
	return r, nil
}

func (g *trackedRelays) Validate() error {
	for _, r := range []turn.RelayAddressGenerator{g.v4, g.v6} {
		if r != nil {
			if err := r.Validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *trackedRelays) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	r, err := g.family(conf.Network)
	if err != nil {
		return nil, nil, err
	}
	conn, addr, err := r.AllocatePacketConn(conf)
	if err != nil {
		return nil, nil, err
	}
	if pub := g.public.Load(); pub != nil && r == g.v4 {
		if ua, ok := addr.(*net.UDPAddr); ok {
			addr = &net.UDPAddr{IP: *pub, Port: ua.Port}
		}
	}
	g.wg.Add(1)
	return &relayConn{PacketConn: conn, closed: g.wg.Done}, addr, nil
}

// AllocateListener and AllocateConn are for TCP relays (RFC 6062), which
// the relay does not offer.
func (g *trackedRelays) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCP
}

func (g *trackedRelays) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCP
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
// (IPv4, or a host name, resolved as IPv4).
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
