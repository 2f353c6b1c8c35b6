package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/irmv/irmv/call"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/share"
)

// Defaults.
const (
	// DefaultRealm is the digest realm. HA1 hashes depend on it: change
	// it and every password must be set again.
	DefaultRealm = "irmv"
	// DefaultMinExpires is the shortest registration accepted (423 below).
	DefaultMinExpires = 60 * time.Second
	// DefaultMaxExpires caps the expiry over TCP, DefaultMaxExpiresUDP over
	// UDP: short, so that a phone behind a NAT re-registers before the
	// NAT forgets its mapping.
	DefaultMaxExpires    = time.Hour
	DefaultMaxExpiresUDP = 120 * time.Second
	// DefaultExpires is the expiry of a REGISTER that names none.
	DefaultExpires = time.Hour
	// DefaultRate is the requests a second each source address may send
	// (burst: twice that); more are dropped and counted.
	DefaultRate = 50
	// ttlGrace keeps the terminal registered a little past the binding's
	// expiry, so that a phone that re-registers on time never flickers.
	ttlGrace = 15 * time.Second
	// maxSources bounds the per-source rate limiters kept.
	maxSources = 4096
	// DefaultTLSPort is SIP over TLS's port (RFC 3261) when TLSAddr
	// names a host only.
	DefaultTLSPort = 5061
	// MaxMessage bounds one SIP message (more: dropped, a TCP connection
	// closed). A REGISTER or an INVITE with SDP takes 1-4 KiB; sipgo's
	// 64 KiB let 1,024 TCP connections each hold a message just under it
	// (an access point: 40 MB to 156 MB).
	MaxMessage = 16 << 10
)

// DefaultAlgorithms is the digest challenge by default: MD5 only. Phones
// built on libre 1.x (Debian's baresip among them) give up on a 401 that
// offers any algorithm they do not know, instead of taking the one they
// do (RFC 8760 section 2.4); offer SHA-256 where the phones handle it.
var DefaultAlgorithms = []string{"MD5"}

// Directory is what the SIP side needs from the register of hosted
// terminals (share.Registry implements it).
type Directory interface {
	RegisterChecked(reg client.Registration, mayUpdate func(terminal string) error) (client.Ack, error)
	Heartbeat(terminal string) (client.Ack, error)
	Remove(terminal string) error
}

// Options configure a Server.
type Options struct {
	// Addr is where the server listens, on UDP and TCP (the same port).
	// Port 0 picks one free on both. Required.
	Addr string
	// TLSAddr, if set, is where the server also listens for SIP over TLS
	// (a host alone: DefaultTLSPort), with TLSConfig's certificate.
	TLSAddr   string
	TLSConfig *tls.Config
	// SDESOverTLSOnly keeps SRTP keys (SDES) off cleartext transports:
	// calls over UDP and TCP get plain RTP (488 when the phone requires
	// RTP/SAVP), and phones registered over them are offered no key.
	SDESOverTLSOnly bool
	// DBPath is the bbolt file for credentials and bindings. Required.
	DBPath string
	// Directory registers phones as hosted terminals. Required.
	Directory Directory
	// Normalizer tells whether a user part is a phone number; nil: a user
	// part is never taken for one.
	Normalizer *ident.Normalizer
	// Realm is the digest realm; "": DefaultRealm.
	Realm string
	// Algorithms are the digest algorithms challenged with, in order of
	// preference: "SHA-256" and "MD5" (RFC 8760); nil: DefaultAlgorithms.
	// Credentials of either are checked whatever the challenge offered.
	Algorithms []string
	// OpenNets are source networks whose phones register without
	// credentials (a trusted LAN); nil: every phone authenticates.
	OpenNets []netip.Prefix
	// MinExpires, MaxExpires and MaxExpiresUDP bound a binding's expiry;
	// 0: the defaults.
	MinExpires, MaxExpires, MaxExpiresUDP time.Duration
	// Switch, if set, takes the calls of registered phones: each bound
	// phone's terminal is attached to it as a call.Line, and the bridge
	// (bridge.go) carries calls between the phone and irmv terminals.
	Switch Switch
	// Resolve finds the terminal a phone dials (search.Service.Resolve);
	// nil: phones cannot call.
	Resolve Resolver
	// ICEServers gives the bridge's WebRTC side of a phone's call its
	// STUN/TURN servers; nil: host candidates only.
	ICEServers func(terminal string) []signal.ICEServer
	// Rate is the requests a second per source address; 0: DefaultRate.
	Rate float64
	// Registerer receives metrics; nil: none.
	Registerer prometheus.Registerer
	// Logger logs; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock, a test seam; nil: time.Now.
	Now func() time.Time
	// udpLimits, a test seam: the new UDP sources that start a read
	// loop generation and the recent ones kept (udp.go).
	udpLimits *[2]int
}

func (o *Options) setDefaults() error {
	if o.Addr == "" || o.DBPath == "" || o.Directory == nil {
		return errors.New("sip.Options: Addr, DBPath and Directory must be set")
	}
	if o.TLSAddr != "" {
		if o.TLSConfig == nil || len(o.TLSConfig.Certificates) == 0 && o.TLSConfig.GetCertificate == nil {
			return errors.New("sip.Options: TLSAddr needs TLSConfig with a certificate")
		}
		if _, _, err := net.SplitHostPort(o.TLSAddr); err != nil {
			o.TLSAddr = net.JoinHostPort(strings.Trim(o.TLSAddr, "[]"), strconv.Itoa(DefaultTLSPort))
		}
	}
	if o.Realm == "" {
		o.Realm = DefaultRealm
	}
	if o.Algorithms == nil {
		o.Algorithms = DefaultAlgorithms
	}
	o.Algorithms = slices.Clone(o.Algorithms)
	if len(o.Algorithms) == 0 || len(o.Algorithms) > 2 {
		return fmt.Errorf("sip.Options: Algorithms %q: want SHA-256, MD5 or both", o.Algorithms)
	}
	for i, a := range o.Algorithms {
		switch strings.ToUpper(a) {
		case "SHA-256", "MD5":
			o.Algorithms[i] = strings.ToUpper(a)
		default:
			return fmt.Errorf("sip.Options: digest algorithm %q: want SHA-256 or MD5", a)
		}
	}
	if o.MinExpires == 0 {
		o.MinExpires = DefaultMinExpires
	}
	if o.MaxExpires == 0 {
		o.MaxExpires = DefaultMaxExpires
	}
	if o.MaxExpiresUDP == 0 {
		o.MaxExpiresUDP = DefaultMaxExpiresUDP
	}
	if o.MaxExpiresUDP > o.MaxExpires {
		o.MaxExpiresUDP = o.MaxExpires
	}
	if o.MinExpires < share.MinTTL || o.MinExpires > o.MaxExpiresUDP {
		return fmt.Errorf("sip.Options: MinExpires %s must be within %s..%s", o.MinExpires, share.MinTTL, o.MaxExpiresUDP)
	}
	if o.MaxExpires+ttlGrace > share.MaxTTL {
		return fmt.Errorf("sip.Options: MaxExpires %s is over %s", o.MaxExpires, share.MaxTTL-ttlGrace)
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Rate < 0 {
		return fmt.Errorf("sip.Options: Rate %v is negative", o.Rate)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Server is the node's SIP side: a registrar for the phones it hosts.
type Server struct {
	o       Options
	log     *slog.Logger
	m       *metrics
	db      *bbolt.DB
	users   *users
	nonces  *nonces
	used    usedCredentials // digest answers taken, against replay
	guesses guessGuard      // wrong digest answers, by source and user
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	udp     net.PacketConn
	udpSrc  atomic.Pointer[udpSources] // sipgo's UDP read loop by generations (udp.go)
	tcp     net.Listener
	tls     net.Listener // nil without TLSAddr

	client *sipgo.Client
	// dialogs (calls both ways) over UDP and TCP, and over TLS: there
	// the node's Contact names its TLS port, and in-dialog requests go
	// back over the phone's connection (a phone is not dialled back).
	dialogs, dialogsTLS *sipgo.DialogUA

	mu         sync.Mutex
	bindings   map[string]*binding // by AOR user
	sources    map[netip.Addr]*rate.Limiter
	lines      map[string]*call.Line  // by AOR: the phone's terminal on the switch
	lineTerm   map[string]string      // by AOR: the terminal of lines[aor]
	calls      map[string]*bridgeCall // by irmv call ID
	sipCalls   map[string]*bridgeCall // by SIP Call-ID
	placing    map[string]int         // by AOR: calls the phone placed (takeCall)
	placingAll int
	done       chan struct{} // closed by Close

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New opens the credential store, listens on UDP and TCP and serves until
// Close.
func New(o Options) (*Server, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{o: o, log: o.Logger, nonces: newNonces(), bindings: map[string]*binding{}, sources: map[netip.Addr]*rate.Limiter{},
		lines: map[string]*call.Line{}, lineTerm: map[string]string{}, calls: map[string]*bridgeCall{}, sipCalls: map[string]*bridgeCall{}, placing: map[string]int{}, done: make(chan struct{})}
	s.m = newMetrics(s, o.Registerer)
	var err error
	if s.db, err = bbolt.Open(o.DBPath, 0o600, &bbolt.Options{Timeout: 5 * time.Second}); err != nil {
		return nil, fmt.Errorf("sip: open %s: %w", o.DBPath, err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketBindings} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("sip: %s: %w", o.DBPath, err)
	}
	if s.users, err = loadUsers(s.db, o.Realm); err == nil {
		err = s.loadBindings()
	}
	if err != nil {
		s.db.Close()
		return nil, fmt.Errorf("sip: load %s: %w", o.DBPath, err)
	}
	if err := s.listen(); err != nil {
		s.Close()
		return nil, err
	}
	for _, b := range s.Bindings() {
		s.attach(b.AOR, b.Terminal)
	}
	return s, nil
}

func (s *Server) listen() error {
	sipLog := slog.New(&countingHandler{next: s.log.Handler(), m: s.m})
	var err error
	parser := sip.NewParser()
	parser.MaxMessageLength = MaxMessage
	s.ua, err = sipgo.NewUA(
		sipgo.WithUserAgent("irmv"),
		sipgo.WithUserAgentParser(parser),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(sipLog),
			sip.WithTransportLayerReadFilter(s.readFilter),
		),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog)),
	)
	if err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	s.srv.OnRegister(s.onRegister)
	s.srv.OnOptions(s.onOptions)
	if s.client, err = sipgo.NewClient(s.ua, sipgo.WithClientLogger(sipLog)); err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	s.srv.OnInvite(s.onInvite)
	s.srv.OnAck(s.onAck)
	s.srv.OnBye(s.onBye)
	s.srv.OnCancel(s.onCancel)
	s.srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		s.respond(tx, req, 405, "Method Not Allowed", sip.NewHeader("Allow", allow))
	})

	if s.udp, s.tcp, err = listenUDPTCP(s.o.Addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(s.o.Addr)
	port := s.udp.LocalAddr().(*net.UDPAddr).Port
	chost := host
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		chost = "127.0.0.1" // replaced per dialog by what the phone sent to
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "irmv", Host: chost, Port: port}}
	s.dialogs = &sipgo.DialogUA{Client: s.client, ContactHDR: contact}
	if s.o.TLSAddr != "" {
		if s.tls, err = net.Listen("tcp", s.o.TLSAddr); err != nil {
			return fmt.Errorf("sip: listen tls %s: %w", s.o.TLSAddr, err)
		}
		contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "irmv", Host: chost, Port: s.tls.Addr().(*net.TCPAddr).Port,
			UriParams: sip.HeaderParams{{K: "transport", V: "tls"}}}}
		s.dialogsTLS = &sipgo.DialogUA{Client: s.client, ContactHDR: contact, RewriteContact: true}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	u := newUDPSources(s.udp, s.ua.TransportLayer().Pool("udp"), func(c net.PacketConn) { s.srv.ServeUDP(c) }, s.udpLive, s.o.Now)
	if s.o.udpLimits != nil {
		u.rotateAfter, u.keepMax = s.o.udpLimits[0], s.o.udpLimits[1]
	}
	s.udpSrc.Store(u)
	s.wg.Add(3)
	go func() { defer s.wg.Done(); u.run(ctx, &s.wg) }()
	go func() { defer s.wg.Done(); s.srv.ServeTCP(s.limit(s.tcp, "TCP")) }()
	if s.tls != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.srv.ServeTLS(&tlsListener{Listener: s.limit(s.tls, "TLS"), conf: s.o.TLSConfig, m: s.m})
		}()
	}
	go func() { defer s.wg.Done(); s.sweepLoop(ctx) }()
	if s.tls != nil {
		s.log.Info("SIP listening", "addr", s.udp.LocalAddr().String(), "tls", s.tls.Addr().String(), "realm", s.o.Realm)
	} else {
		s.log.Info("SIP listening", "addr", s.udp.LocalAddr().String(), "realm", s.o.Realm)
	}
	return nil
}

// limit puts the connection limits (conns.go) on a TCP listener.
func (s *Server) limit(ln net.Listener, transport string) net.Listener {
	return &tcpLimiter{Listener: ln, first: tcpFirstRead, idle: s.o.MaxExpires + ttlGrace, open: map[netip.Addr]int{}, full: map[netip.Addr]bool{},
		refused: func(src netip.Addr, first bool) {
			s.m.dropped.WithLabelValues("connections").Inc()
			if first {
				s.log.Warn("SIP connections limited", "transport", transport, "source", src, "per_source", MaxTCPPerSource, "all", MaxTCP)
			}
		}}
}

// dialogUA is the dialog side for a request's transport.
func (s *Server) dialogUA(transport string) *sipgo.DialogUA {
	if s.dialogsTLS != nil && strings.EqualFold(transport, "TLS") {
		return s.dialogsTLS
	}
	return s.dialogs
}

// allow lists the methods the node answers.
const allow = "REGISTER, OPTIONS, INVITE, ACK, CANCEL, BYE"

// Addr is the address the server listens on (UDP; TCP has the same).
func (s *Server) Addr() net.Addr { return s.udp.LocalAddr() }

// TLSAddr is where the server listens for SIP over TLS, nil without.
func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// Close stops the server and waits. Only the first call acts.
func (s *Server) Close() error {
	s.once.Do(func() {
		close(s.done)
		s.mu.Lock()
		aors := make([]string, 0, len(s.lines))
		for aor := range s.lines {
			aors = append(aors, aor)
		}
		s.mu.Unlock()
		for _, aor := range aors {
			s.detach(aor)
		}
		if s.cancel != nil {
			s.cancel()
		}
		if s.srv != nil {
			s.srv.Close()
		}
		if s.udp != nil {
			s.udp.Close()
		}
		if s.tcp != nil {
			s.tcp.Close()
		}
		if s.tls != nil {
			s.tls.Close()
		}
		if s.ua != nil {
			s.ua.Close()
		}
		s.wg.Wait()
		s.db.Close()
	})
	return nil
}

// readFilter drops what a source sends beyond its rate (before parsing).
func (s *Server) readFilter(p sip.TransportReadProps, data []byte) ([]byte, error) {
	var ip netip.Addr
	switch a := p.RemoteAddr.(type) {
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	}
	if s.allowSource(sourceKey(ip)) {
		if u := s.udpSrc.Load(); u != nil && p.Transport == "UDP" {
			u.heard(p.RemoteAddr)
		}
		return data, nil
	}
	s.m.dropped.WithLabelValues("rate").Inc()
	return nil, nil
}

// udpLive lists the UDP sources requests may go to: registered phones'
// flows and bridged calls' phones.
func (s *Server) udpLive() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.bindings {
		if strings.EqualFold(b.Transport, "UDP") {
			out = append(out, b.Source)
		}
	}
	for _, bc := range s.calls {
		if bc.dialog.flow != "" {
			out = append(out, bc.dialog.flow)
		}
	}
	return out
}

func (s *Server) allowSource(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A full table forgets full buckets first: a flood from many
	// addresses does not hand a source that spent its burst a new one.
	now := s.o.Now()
	return bucket(s.sources, ip, maxSources, rate.Limit(s.o.Rate), int(2*s.o.Rate)+1, now).AllowN(now, 1)
}

// respond answers req; a failure to send is the phone's problem.
func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("SIP response not sent", "code", code, "err", err)
	}
}

// refuse answers req and forgets its transaction at once, as a stateless
// server would: anyone may cause these answers (a challenge, 400, 403), and
// over UDP a transaction would be kept 32 s and its answer sent up to 10
// times (to a source that may be forged). A retransmitted request is
// answered again.
func (s *Server) refuse(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	s.respond(tx, req, code, reason, hdrs...)
	tx.Terminate()
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 200, "OK", sip.NewHeader("Allow", allow))
}

// AddUser sets (or replaces) a SIP user's credentials.
func (s *Server) AddUser(nu client.SIPUser) (client.SIPUserInfo, error) { return s.users.set(nu) }

// RemoveUser deletes a SIP user's credentials; its binding stays until it
// expires or the phone unregisters.
func (s *Server) RemoveUser(user string) error { return s.users.remove(user) }

// Users lists the SIP users (without hashes).
func (s *Server) Users() []client.SIPUserInfo { return s.users.list() }

// udpReadBuffer is the SIP UDP socket's receive buffer; Linux caps it at
// net.core.rmem_max.
const udpReadBuffer = 1 << 20

// listenUDPTCP listens on addr with UDP and TCP on one port. For port 0,
// TCP takes the port UDP got, and another is tried when TCP finds it taken.
func listenUDPTCP(addr string) (net.PacketConn, net.Listener, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("sip: address %q: %w", addr, err)
	}
	tries := 1
	if p == "0" {
		tries = 20
	}
	for i := 0; ; i++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("sip: listen udp %s: %w", addr, err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err == nil {
			// Bursts of REGISTERs overflowed the default buffer (~100
			// datagrams); each lost one stalls its phone 500 ms.
			_ = udp.(*net.UDPConn).SetReadBuffer(udpReadBuffer)
			return udp, tcp, nil
		}
		udp.Close()
		if i+1 >= tries || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("sip: listen tcp %s: %w", addr, err)
		}
	}
}
