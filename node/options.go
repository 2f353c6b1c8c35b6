package node

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultAPI is the terminal API's default address: loopback only.
const DefaultAPI = "127.0.0.1:7370"

// Options configure a Node. The zero value of each field is documented; only
// DataDir is required.
type Options struct {
	// DataDir holds the identity key and the registrations. Required.
	DataDir string
	// Listen are libp2p multiaddrs to listen on; nil: DefaultListen.
	Listen []string
	// API is the terminal API's TCP address; "": DefaultAPI. Port 0 picks
	// a free port (see Node.APIAddr).
	API string
	// APIHosts are more names (or addresses) clients may use in the Host
	// header of API requests, e.g. the access point's DNS name; nil: only
	// the address a connection arrives at (any loopback name on loopback).
	// Other Hosts are refused, against DNS rebinding.
	APIHosts []string
	// APIReadTimeout bounds reading one API request, body included (a live
	// WebSocket is exempt); 0: DefaultAPIReadTimeout.
	APIReadTimeout time.Duration
	// APIIdleTimeout closes API keep-alive connections idle this long; 0:
	// DefaultAPIIdleTimeout.
	APIIdleTimeout time.Duration
	// APIMaxConnsPerClient caps the open API connections of one client
	// address beyond loopback (IPv6: its /64); more are closed at once.
	// 0: DefaultAPIMaxConnsPerClient.
	APIMaxConnsPerClient int
	// Bootstrap are multiaddrs with /p2p/ peer IDs of nodes to join.
	Bootstrap []string
	// HTTPS, if set, is the address of a second listener serving the same
	// API and web page over HTTPS, for browsers on the LAN.
	HTTPS string
	// HTTPSCert and HTTPSKey are PEM files for it; empty: a self-signed
	// certificate kept in DataDir.
	HTTPSCert, HTTPSKey string
	// Region is the default country (ISO 3166 alpha-2) for phone numbers
	// written in national form; "": only international forms parse.
	Region string
	// MDNS turns on LAN discovery of other nodes.
	MDNS bool
	// Profile tunes resource limits and the DHT's bucket size (kad.go):
	// "server" (default) or "ap" for small access points.
	Profile string
	// TerminalTTL is how long a registration lives without refresh; 0: the
	// register's default.
	TerminalTTL time.Duration
	// RepublishInterval is how often hosted identifiers are announced to
	// the DHT again; 0: DefaultRepublish.
	RepublishInterval time.Duration
	// ProvideValidity is how long this node keeps provider records that
	// others announce; 0: DefaultProvideValidity.
	ProvideValidity time.Duration
	// TURN is the UDP address of the node's STUN/TURN relay for the
	// terminals it hosts; "": DefaultTURN; "off": no relay.
	TURN string
	// TURNRelayIP is the address relayed candidates carry; nil: the TURN
	// address's IP, or for an unspecified one the first non-loopback
	// IPv4 address of this machine.
	TURNRelayIP net.IP
	// TURNRelayIP6 is the IPv6 address relayed candidates carry when the
	// relay listens on all addresses; nil: this machine's first global,
	// else unique-local, IPv6 address (none: no IPv6 relay).
	TURNRelayIP6 net.IP
	// TURNPorts is the UDP port range "MIN-MAX" of the relay's relayed
	// addresses, for a firewall to open; "": any port.
	TURNPorts string
	// Reachability is whether other nodes can dial this one: "auto" (or
	// ""): AutoNAT finds out; "public" or "private" say so. A private
	// node runs the DHT as a client and reserves slots on relays; a
	// public one runs the DHT as a server and a relay service.
	Reachability string
	// PortMap asks the router in front of the node to forward the listen
	// ports (UPnP IGD or NAT-PMP), so that a node behind a home router
	// can be public. Off: no such traffic (tests). Builds without
	// HasPortMap refuse it.
	PortMap bool
	// WANCheck is how often a public address at which a NAT forwards to
	// the node (wan.go) is checked again; 0: DefaultWANCheck, at least
	// MinWANCheck.
	WANCheck time.Duration
	// RelayDuration and RelayData limit each connection this node relays
	// for others (when it is public); 0: DefaultRelayDuration,
	// DefaultRelayData.
	RelayDuration time.Duration
	RelayData     int64
	// RingTimeout ends calls that are not answered; 0: call's default.
	RingTimeout time.Duration
	// ICERefresh is how often a connected terminal gets fresh STUN/TURN
	// credentials (a new welcome); 0: ten minutes.
	ICERefresh time.Duration
	// SIP is where the SIP side (package sip) listens, UDP and TCP; "":
	// DefaultSIPAP in the "ap" profile, off in "server"; "off": off.
	SIP string
	// SIPRealm is the digest realm; "": sip.DefaultRealm.
	SIPRealm string
	// SIPDigest are the digest algorithms SIP phones are challenged with,
	// in order; nil: sip.DefaultAlgorithms.
	SIPDigest []string
	// SIPOpen are networks (CIDR) whose phones register without
	// credentials; nil: none.
	SIPOpen []string
	// SIPRate is the SIP requests a second per source; 0: sip.DefaultRate.
	SIPRate float64
	// SIPTLS, if set, is where the SIP side also listens for SIP over
	// TLS (a host alone: port 5061), with the HTTPS certificate
	// (HTTPSCert/HTTPSKey, else the node's self-signed one).
	SIPTLS string
	// SIPSDESTLSOnly keeps SRTP keys (SDES) off SIP over UDP and TCP.
	SIPSDESTLSOnly bool
	// Logger receives the node's logs; nil: slog.Default().
	Logger *slog.Logger
}

// APMemoryLimit is the Go runtime's soft memory limit suggested for the
// "ap" profile (runtime/debug.SetMemoryLimit). The node never sets it
// itself, as it is process-wide; cmd/irmv applies it for --profile ap.
// 20 MiB keeps a node with 1,000 terminals under 40 MB RSS; 32 MiB would
// not bind there. Past ~3,000 terminals the GC works harder, not longer
// heaps (capped by the runtime at about half the CPU).
const APMemoryLimit int64 = 20 << 20

// DefaultSIPAP is where the SIP side listens in the "ap" profile: every
// address, so that phones on the LAN reach it.
const DefaultSIPAP = ":5060"

// DefaultTURN is where the node's STUN/TURN relay listens by default.
const DefaultTURN = "0.0.0.0:3478"

// DefaultRepublish is how often hosted identifiers are re-announced. It is
// well under DefaultProvideValidity so records never lapse while a terminal
// stays.
const DefaultRepublish = 10 * time.Minute

// DefaultProvideValidity is the lifetime of provider records: short,
// because terminals move between access points.
const DefaultProvideValidity = 30 * time.Minute

// DefaultDataDir is the data directory used when none is given:
// $XDG_DATA_HOME/irmv, else ~/.local/share/irmv.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "irmv")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "irmv")
	}
	return "irmv-data"
}

func (o *Options) setDefaults() error {
	if o.DataDir == "" {
		return fmt.Errorf("%w: DataDir must be set", ErrBadOptions)
	}
	if o.Listen == nil {
		o.Listen = DefaultListen
	}
	if o.API == "" {
		o.API = DefaultAPI
	}
	switch o.Profile {
	case "":
		o.Profile = "server"
	case "server", "ap":
	default:
		return fmt.Errorf("%w: profile %q (want server or ap)", ErrBadOptions, o.Profile)
	}
	for i, h := range o.APIHosts {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(h), "["), "]")
		if h == "" || strings.ContainsAny(h, "/ \t") {
			return fmt.Errorf("%w: API host %q: want a name or address without port", ErrBadOptions, o.APIHosts[i])
		}
		o.APIHosts[i] = h
	}
	if o.SIP == "" && o.Profile == "ap" {
		o.SIP = DefaultSIPAP
	}
	switch o.Reachability {
	case "":
		o.Reachability = ReachAuto
	case ReachAuto, ReachPublic, ReachPrivate:
	default:
		return fmt.Errorf("%w: reachability %q (want auto, public or private)", ErrBadOptions, o.Reachability)
	}
	if o.PortMap && !HasPortMap {
		return fmt.Errorf("%w: this build has no port mapping (built with irmv_no_portmap)", ErrBadOptions)
	}
	if o.RelayDuration < 0 || o.RelayData < 0 {
		return fmt.Errorf("%w: relay limits must not be negative", ErrBadOptions)
	}
	if o.RelayDuration == 0 {
		o.RelayDuration = DefaultRelayDuration
	}
	if o.WANCheck < 0 || o.WANCheck > 0 && o.WANCheck < MinWANCheck {
		return fmt.Errorf("%w: wan check interval %v: want at least %v", ErrBadOptions, o.WANCheck, MinWANCheck)
	}
	if o.WANCheck == 0 {
		o.WANCheck = DefaultWANCheck
	}
	if o.RelayData == 0 {
		o.RelayData = DefaultRelayData
	}
	if o.TURN == "" {
		o.TURN = DefaultTURN
	}
	// Checked even when TURN or SIP is off: a mistyped value should not
	// wait to surface until the day the feature is turned on.
	if _, _, err := turnPorts(o.TURNPorts); err != nil {
		return err
	}
	for _, a := range o.SIPDigest {
		if u := strings.ToUpper(a); u != "SHA-256" && u != "MD5" {
			return fmt.Errorf("%w: --sip-digest %q: want SHA-256 or MD5", ErrBadOptions, a)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"RepublishInterval", o.RepublishInterval}, {"ProvideValidity", o.ProvideValidity}, {"TerminalTTL", o.TerminalTTL}, {"RingTimeout", o.RingTimeout}, {"APIReadTimeout", o.APIReadTimeout}, {"APIIdleTimeout", o.APIIdleTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s %s is negative", ErrBadOptions, d.name, d.v)
		}
	}
	if o.APIReadTimeout == 0 {
		o.APIReadTimeout = DefaultAPIReadTimeout
	}
	if o.APIIdleTimeout == 0 {
		o.APIIdleTimeout = DefaultAPIIdleTimeout
	}
	switch {
	case o.APIMaxConnsPerClient < 0:
		return fmt.Errorf("%w: APIMaxConnsPerClient %d is negative", ErrBadOptions, o.APIMaxConnsPerClient)
	case o.APIMaxConnsPerClient == 0:
		o.APIMaxConnsPerClient = DefaultAPIMaxConnsPerClient
	}
	if o.RepublishInterval == 0 {
		o.RepublishInterval = DefaultRepublish
	}
	if o.ProvideValidity == 0 {
		o.ProvideValidity = DefaultProvideValidity
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// turnPorts reads the relay's port range "MIN-MAX" (Options.TURNPorts);
// zeros for "" (any port).
func turnPorts(s string) (lo, hi uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	bad := fmt.Errorf("%w: --turn-ports %q: want MIN-MAX, 1 <= MIN <= MAX <= 65535", ErrBadOptions, s)
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return 0, 0, bad
	}
	l, err1 := strconv.ParseUint(a, 10, 16)
	h, err2 := strconv.ParseUint(b, 10, 16)
	if err1 != nil || err2 != nil || l == 0 || l > h {
		return 0, 0, bad
	}
	return uint16(l), uint16(h), nil
}
