package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/irmv/irmv/internal/logging"
	"github.com/irmv/irmv/node"
)

func nodeCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: configFormat + " file with any of the flags below as keys (flags and environment win over it)", EnvVars: []string{"IRMV_CONFIG"}},
		&cli.StringFlag{Name: "data-dir", Usage: "identity key and registrations", Value: node.DefaultDataDir(), EnvVars: []string{"IRMV_DATA_DIR"}},
		&cli.StringSliceFlag{Name: "listen", Usage: "libp2p multiaddrs to listen on (repeat or comma-separate)", Value: cli.NewStringSlice(node.DefaultListen...), EnvVars: []string{"IRMV_LISTEN"}},
		&cli.StringFlag{Name: "api", Usage: "terminal API address (HTTP + WebSocket)", Value: node.DefaultAPI, EnvVars: []string{"IRMV_API"}},
		&cli.StringSliceFlag{Name: "api-host", Usage: "more names (or addresses) browsers may reach the API by, e.g. the access point's DNS name (repeat or comma-separate); other Host headers are refused", EnvVars: []string{"IRMV_API_HOST"}},
		&cli.StringSliceFlag{Name: "bootstrap", Usage: "multiaddrs with /p2p/<peer-id> of nodes to join (repeat or comma-separate)", EnvVars: []string{"IRMV_BOOTSTRAP"}},
		&cli.StringFlag{Name: "https", Usage: "also serve the API and web page over HTTPS here (e.g. 0.0.0.0:7443), for browsers on the LAN; prints the certificate's SHA-256 to check in the browser", EnvVars: []string{"IRMV_HTTPS"}},
		&cli.StringFlag{Name: "https-cert", Usage: "PEM certificate for --https (default: a self-signed one in the data dir)", EnvVars: []string{"IRMV_HTTPS_CERT"}},
		&cli.StringFlag{Name: "https-key", Usage: "PEM key for --https-cert", EnvVars: []string{"IRMV_HTTPS_KEY"}},
		&cli.StringFlag{Name: "turn", Usage: "UDP address of the node's STUN/TURN relay for its terminals, or off", Value: node.DefaultTURN, EnvVars: []string{"IRMV_TURN"}},
		&cli.StringFlag{Name: "turn-ports", Usage: "UDP port range MIN-MAX of relayed addresses, for a firewall to open (default: any)", EnvVars: []string{"IRMV_TURN_PORTS"}},
		&cli.StringFlag{Name: "turn-relay-ip", Usage: "address relayed candidates carry (default: the relay's own, or the first public, else LAN, address)", EnvVars: []string{"IRMV_TURN_RELAY_IP"}},
		&cli.StringFlag{Name: "turn-relay-ip6", Usage: "IPv6 address relayed candidates carry when --turn listens on all addresses (default: the first global, else unique-local, IPv6 address)", EnvVars: []string{"IRMV_TURN_RELAY_IP6"}},
		&cli.StringFlag{Name: "sip", Usage: sipUsage(), EnvVars: []string{"IRMV_SIP"}},
		&cli.StringFlag{Name: "sip-realm", Usage: "digest realm of --sip (changing it invalidates the stored password hashes; default irmv)", EnvVars: []string{"IRMV_SIP_REALM"}},
		&cli.StringSliceFlag{Name: "sip-digest", Usage: "digest algorithms --sip challenges phones with, in order: SHA-256, MD5 (default MD5: old phones, e.g. baresip 1.x, fail on a SHA-256 challenge)", EnvVars: []string{"IRMV_SIP_DIGEST"}},
		&cli.StringSliceFlag{Name: "sip-open", Usage: "trusted networks (CIDR) whose phones register with --sip without credentials (default: none)", EnvVars: []string{"IRMV_SIP_OPEN"}},
		&cli.StringFlag{Name: "sip-tls", Usage: "also take SIP over TLS here (a host alone: port 5061), with the --https-cert certificate (default: the node's self-signed one), e.g. 0.0.0.0:5061 (default: off)", EnvVars: []string{"IRMV_SIP_TLS"}},
		&cli.BoolFlag{Name: "sip-sdes-plain", Usage: "send and take SRTP keys (SDES, in the SDP) over SIP on UDP and TCP too, where whoever sees the signalling reads them; false: SRTP for phones on --sip-tls only", Value: true, EnvVars: []string{"IRMV_SIP_SDES_PLAIN"}},
		&cli.StringFlag{Name: "sip-rate", Usage: "SIP requests a second each source address may send, more are dropped (default 50)", EnvVars: []string{"IRMV_SIP_RATE"}},
		&cli.StringFlag{Name: "relay-duration", Usage: "how long this node, when public, relays one connection between two other nodes, e.g. 1h (default: 24h; calls move to a new connection when one ends)", EnvVars: []string{"IRMV_RELAY_DURATION"}},
		&cli.StringFlag{Name: "wan-check", Usage: "how often a node behind a NAT that forwards to it checks that its public address still reaches it (AutoNAT v2), e.g. 1m (default: 5m)", EnvVars: []string{"IRMV_WAN_CHECK"}},
		&cli.BoolFlag{Name: "portmap", Usage: portmapUsage(), EnvVars: []string{"IRMV_PORTMAP"}},
		&cli.StringFlag{Name: "reachability", Usage: "auto (AutoNAT finds out), public or private (behind a NAT: DHT client, reachable through relays)", Value: node.ReachAuto, EnvVars: []string{"IRMV_REACHABILITY"}},
		&cli.StringFlag{Name: "region", Usage: "default country (ISO 3166, e.g. DE) for phone numbers in national form", EnvVars: []string{"IRMV_REGION"}},
		&cli.BoolFlag{Name: "mdns", Usage: mdnsUsage(), Value: node.HasMDNS, EnvVars: []string{"IRMV_MDNS"}},
		&cli.StringFlag{Name: "profile", Usage: "resource limits: server or ap (small access points)", Value: "server", EnvVars: []string{"IRMV_PROFILE"}},
		&cli.StringFlag{Name: "memory-limit", Usage: "Go runtime soft memory limit, e.g. 24MiB, or off (default: GOMEMLIMIT, else 20MiB with --profile ap, else off)", EnvVars: []string{"IRMV_MEMORY_LIMIT"}},
		&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", Value: "info", EnvVars: []string{"IRMV_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Usage: "text or json", Value: "text", EnvVars: []string{"IRMV_LOG_FORMAT"}},
	}
	flags, before := configFlags(flags)
	return &cli.Command{
		Name:        "node",
		Usage:       "run a node",
		Description: nodeDescription(),
		Flags:       flags,
		Before:      before,
		Action:      runNode,
	}
}

func runNode(c *cli.Context) error {
	log, err := logging.New(os.Stderr, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if err := applyMemoryLimit(c); err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if err := checkHostPorts(c, "listen", "bootstrap"); err != nil {
		return err
	}
	var relayIP net.IP
	if s := c.String("turn-relay-ip"); s != "" {
		if relayIP = net.ParseIP(s); relayIP == nil {
			return cli.Exit(fmt.Sprintf("--turn-relay-ip %q is not an IP address", s), exitError)
		}
	}
	var relayIP6 net.IP
	if s := c.String("turn-relay-ip6"); s != "" {
		if relayIP6 = net.ParseIP(s); relayIP6 == nil || relayIP6.To4() != nil {
			return cli.Exit(fmt.Sprintf("--turn-relay-ip6 %q is not an IPv6 address", s), exitError)
		}
	}
	// Caught from before the addresses are printed: a supervisor (or a
	// test) that stops the node as soon as it is up gets a clean stop.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	var sipRate float64
	if s := c.String("sip-rate"); s != "" {
		if sipRate, err = strconv.ParseFloat(s, 64); err != nil || sipRate <= 0 {
			return cli.Exit(fmt.Sprintf("--sip-rate %q: want a positive number of requests a second", s), exitError)
		}
	}
	var relayDur time.Duration
	if s := c.String("relay-duration"); s != "" {
		if relayDur, err = time.ParseDuration(s); err != nil || relayDur <= 0 {
			return cli.Exit(fmt.Sprintf("--relay-duration %q: want a positive duration such as 1h", s), exitError)
		}
	}
	var wanCheck time.Duration
	if s := c.String("wan-check"); s != "" {
		if wanCheck, err = time.ParseDuration(s); err != nil || wanCheck <= 0 {
			return cli.Exit(fmt.Sprintf("--wan-check %q: want a positive duration such as 5m", s), exitError)
		}
	}
	n, err := node.New(node.Options{
		TURNRelayIP:    relayIP,
		TURNRelayIP6:   relayIP6,
		TURNPorts:      c.String("turn-ports"),
		DataDir:        c.String("data-dir"),
		Listen:         c.StringSlice("listen"),
		API:            c.String("api"),
		APIHosts:       c.StringSlice("api-host"),
		Bootstrap:      c.StringSlice("bootstrap"),
		Region:         c.String("region"),
		MDNS:           c.Bool("mdns"),
		Profile:        c.String("profile"),
		Reachability:   c.String("reachability"),
		PortMap:        c.Bool("portmap"),
		RelayDuration:  relayDur,
		WANCheck:       wanCheck,
		TURN:           c.String("turn"),
		HTTPS:          c.String("https"),
		SIP:            c.String("sip"),
		SIPRealm:       c.String("sip-realm"),
		SIPOpen:        c.StringSlice("sip-open"),
		SIPDigest:      c.StringSlice("sip-digest"),
		SIPRate:        sipRate,
		SIPTLS:         c.String("sip-tls"),
		SIPSDESTLSOnly: !c.Bool("sip-sdes-plain"),
		HTTPSCert:      c.String("https-cert"),
		HTTPSKey:       c.String("https-key"),
		Logger:         log,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		// bbolt's lock on the registrations: another node runs on this data dir.
		return cli.Exit(fmt.Sprintf("%v: --data-dir %s is in use by another irmv node (give each node its own)", err, c.String("data-dir")), exitError)
	}
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	fmt.Fprintf(c.App.ErrWriter, "irmv node %s\n  api   http://%s\n", n.ID(), n.APIAddr())
	if u := n.HTTPSURL(); u != "" {
		fmt.Fprintf(c.App.ErrWriter, "  https %s (certificate SHA-256 %s)\n", u, n.HTTPSFingerprint())
	}
	if a := n.SIPAddr(); a != nil {
		fmt.Fprintf(c.App.ErrWriter, "  sip   %s (udp, tcp)\n", a)
	}
	for _, a := range n.Addrs() {
		fmt.Fprintf(c.App.ErrWriter, "  addr  %s\n", a)
	}
	s := <-sig
	log.Info("Stopping", "signal", s.String())
	signal.Stop(sig)
	if err := n.Close(); err != nil {
		return cli.Exit("close: "+err.Error(), exitError)
	}
	return nil
}

// checkHostPorts refuses a host:port given where a multiaddr belongs
// (--listen 127.0.0.1:4101), naming the multiaddr meant.
func checkHostPorts(c *cli.Context, flags ...string) error {
	for _, f := range flags {
		for _, v := range c.StringSlice(f) {
			ap, err := netip.ParseAddrPort(v)
			if err != nil {
				continue
			}
			ma := fmt.Sprintf("/ip4/%s/tcp/%d", ap.Addr(), ap.Port())
			if ap.Addr().Is6() {
				ma = fmt.Sprintf("/ip6/%s/tcp/%d", ap.Addr(), ap.Port())
			}
			if f == "bootstrap" {
				ma += "/p2p/<peer-id>"
			}
			return cli.Exit(fmt.Sprintf("--%s %s: want a multiaddr, e.g. %s", f, v, ma), exitError)
		}
	}
	for _, v := range c.StringSlice("bootstrap") {
		if strings.HasPrefix(v, "/") && !strings.Contains(v, "/p2p/") {
			return cli.Exit(fmt.Sprintf("--bootstrap %s: needs the node's peer ID at the end, %s/p2p/<peer-id>, as that node prints its addresses", v, v), exitError)
		}
	}
	return nil
}

// applyMemoryLimit sets the Go runtime's soft memory limit: --memory-limit
// if given, else GOMEMLIMIT as the runtime already read it, else
// node.APMemoryLimit for --profile ap. A small router has no room for the
// heap to grow to twice the live data, as it would by GOGC alone.
func applyMemoryLimit(c *cli.Context) error {
	s := c.String("memory-limit")
	switch {
	case s != "":
	case os.Getenv("GOMEMLIMIT") != "":
		return nil
	case c.String("profile") == "ap":
		debug.SetMemoryLimit(node.APMemoryLimit)
		return nil
	default:
		return nil
	}
	n, err := parseByteSize(s)
	if err != nil {
		return fmt.Errorf("--memory-limit %q: %v", s, err)
	}
	debug.SetMemoryLimit(n)
	return nil
}

// parseByteSize reads a size as GOMEMLIMIT writes it (a number of bytes
// with an optional B, KiB, MiB, GiB or TiB suffix), also accepting kB, MB,
// GB (powers of 1000); "off" means no limit.
func parseByteSize(s string) (int64, error) {
	if s == "off" {
		return math.MaxInt64, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"kB", 1e3}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a byte count such as 32MiB, or off")
	}
	if n > math.MaxInt64/mult {
		return math.MaxInt64, nil
	}
	return n * mult, nil
}

func sipUsage() string {
	if node.HasSIP {
		return "UDP and TCP address of the SIP side for SIP phones (registrar), or off (default: " + node.DefaultSIPAP + " with --profile ap, else off)"
	}
	return "UDP and TCP address of the SIP side for SIP phones (not in this build)"
}

func portmapUsage() string {
	if node.HasPortMap {
		return "ask the router in front of this machine to forward the listen ports (UPnP or NAT-PMP)"
	}
	return "ask the router to forward the listen ports (not in this build: open them in the router's firewall)"
}

func mdnsUsage() string {
	if node.HasMDNS {
		return "discover other nodes on the LAN"
	}
	return "discover other nodes on the LAN (not in this build: join with --bootstrap)"
}

func nodeDescription() string {
	transports, lan, sip := "TCP and QUIC", " mDNS discovery on the LAN,", ""
	if !node.HasQUIC {
		transports = "TCP (this build has no QUIC)"
	}
	if !node.HasMDNS {
		lan = ""
	}
	if node.HasSIP {
		sip = ";\nwith --sip, a registrar for SIP phones"
	}
	return "Runs an irmv node: a libp2p host on " + transports + ` (--listen, port 4001 on every
address), the Kademlia DHT (/irmv),` + lan + `
a STUN/TURN relay for its terminals (--turn, UDP 3478), the register of hosted
terminals, and the terminal API and web page (--api, http://127.0.0.1:7370)` + sip + `.
With no flags it runs with a persistent identity in the default data dir. A second
node on the same machine needs its own --data-dir, --listen, --turn and --api.
Precedence: flag, then IRMV_* environment variable, then --config file, then default.
Stop it with Ctrl-C or SIGTERM.`
}
