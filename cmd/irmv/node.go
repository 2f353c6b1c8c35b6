package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/irmv/irmv/internal/logging"
	"github.com/irmv/irmv/node"
	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

func nodeCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "YAML file with any of the flags below as keys (flags and environment win over it)", EnvVars: []string{"IRMV_CONFIG"}},
		altsrc.NewStringFlag(&cli.StringFlag{Name: "data-dir", Usage: "identity key and registrations", Value: node.DefaultDataDir(), EnvVars: []string{"IRMV_DATA_DIR"}}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "listen", Usage: "libp2p multiaddrs to listen on (repeat or comma-separate)", Value: cli.NewStringSlice(node.DefaultListen...), EnvVars: []string{"IRMV_LISTEN"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "api", Usage: "terminal API address (HTTP + WebSocket)", Value: node.DefaultAPI, EnvVars: []string{"IRMV_API"}}),
		altsrc.NewStringSliceFlag(&cli.StringSliceFlag{Name: "bootstrap", Usage: "multiaddrs with /p2p/<peer-id> of nodes to join (repeat or comma-separate)", EnvVars: []string{"IRMV_BOOTSTRAP"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "turn", Usage: "UDP address of the node's STUN/TURN relay for its terminals, or off", Value: node.DefaultTURN, EnvVars: []string{"IRMV_TURN"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "turn-relay-ip", Usage: "address relayed candidates carry (default: the relay's own, or the first LAN address)", EnvVars: []string{"IRMV_TURN_RELAY_IP"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "region", Usage: "default country (ISO 3166, e.g. DE) for phone numbers in national form", EnvVars: []string{"IRMV_REGION"}}),
		altsrc.NewBoolFlag(&cli.BoolFlag{Name: "mdns", Usage: "discover other nodes on the LAN", Value: true, EnvVars: []string{"IRMV_MDNS"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "profile", Usage: "resource limits: server or ap (small access points)", Value: "server", EnvVars: []string{"IRMV_PROFILE"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error", Value: "info", EnvVars: []string{"IRMV_LOG_LEVEL"}}),
		altsrc.NewStringFlag(&cli.StringFlag{Name: "log-format", Usage: "text or json", Value: "text", EnvVars: []string{"IRMV_LOG_FORMAT"}}),
	}
	return &cli.Command{
		Name:  "node",
		Usage: "run a node",
		Description: `Runs an irmv node: a libp2p host on TCP and QUIC, the Kademlia DHT (/irmv),
mDNS discovery, the register of hosted terminals and the terminal API.
With no flags it runs with a persistent identity in the default data dir.
Precedence: flag, then IRMV_* environment variable, then --config file, then default.
Stop it with Ctrl-C or SIGTERM.`,
		Flags:  flags,
		Before: altsrc.InitInputSourceWithContext(flags, configSource),
		Action: runNode,
	}
}

// configSource loads --config when it is given; without it there is no
// config file and defaults apply.
func configSource(c *cli.Context) (altsrc.InputSourceContext, error) {
	path := c.String("config")
	if path == "" {
		return &altsrc.MapInputSource{}, nil
	}
	src, err := altsrc.NewYamlSourceFromFile(path)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("config %s: %v", path, err), exitError)
	}
	return src, nil
}

func runNode(c *cli.Context) error {
	log, err := logging.New(os.Stderr, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	var relayIP net.IP
	if s := c.String("turn-relay-ip"); s != "" {
		if relayIP = net.ParseIP(s); relayIP == nil {
			return cli.Exit(fmt.Sprintf("--turn-relay-ip %q is not an IP address", s), exitError)
		}
	}
	n, err := node.New(node.Options{
		TURNRelayIP: relayIP,
		DataDir:     c.String("data-dir"),
		Listen:      c.StringSlice("listen"),
		API:         c.String("api"),
		Bootstrap:   c.StringSlice("bootstrap"),
		Region:      c.String("region"),
		MDNS:        c.Bool("mdns"),
		Profile:     c.String("profile"),
		TURN:        c.String("turn"),
		Logger:      log,
	})
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	fmt.Fprintf(c.App.ErrWriter, "irmv node %s\n  api   http://%s\n", n.ID(), n.APIAddr())
	for _, a := range n.Addrs() {
		fmt.Fprintf(c.App.ErrWriter, "  addr  %s\n", a)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	s := <-sig
	log.Info("Stopping", "signal", s.String())
	signal.Stop(sig)
	if err := n.Close(); err != nil {
		return cli.Exit("close: "+err.Error(), exitError)
	}
	return nil
}
