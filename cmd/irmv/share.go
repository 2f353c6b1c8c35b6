package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/share"
)

func shareCommand() *cli.Command {
	return &cli.Command{
		Name:  "share",
		Usage: "register, list, refresh, remove and set the status of the terminals a node hosts",
		Subcommands: []*cli.Command{
			{
				Name:      "add",
				Usage:     "register a terminal and print the node's acknowledgement",
				ArgsUsage: " ",
				Description: `Registers a terminal with the node, which publishes its identifiers into the
directory. At least one of --name, --phone or --uid is needed. The terminal
stays registered for --ttl unless refreshed (irmv share refresh TERMINAL
starts the --ttl again); phones (irmv phone) refresh themselves, hooks
re-register on each DHCP renewal.

With --sip-user and --sip-password (better: IRMV_SIP_PASSWORD) it sets a SIP
phone's credentials instead (the node needs --sip): the phone then registers
itself as sip:USER@node with digest authentication and becomes a terminal
with uid USER, named --name (else its display name), with --phone (else USER
when it is a number). The node keeps only hashes of the password.

A terminal without a key that moved from another node (a handset that joined
this access point) registers with --from, the peer ID of the node it was
registered at, and --from-token, its token there: this node tells the old one,
which checks the token and withdraws its registration, so searches find the
terminal only here.`,
				Flags: append(identifierFlags(),
					&cli.StringFlag{Name: "address", Usage: "current address if it differs from --ip (default: --ip, else the source address)", EnvVars: []string{"IRMV_ADDRESS"}},
					&cli.StringFlag{Name: "status", Usage: "online, idle, busy or offline", Value: "online", EnvVars: []string{"IRMV_STATUS"}},
					&cli.DurationFlag{Name: "ttl", Usage: "lifetime without refresh (10s to 168h; 0: the node's default)", EnvVars: []string{"IRMV_TTL"}},
					&cli.BoolFlag{Name: "private", Usage: "hide the address from searches (calls are always relayed)", EnvVars: []string{"IRMV_PRIVATE"}},
					&cli.StringFlag{Name: "from", Usage: "peer `ID` of the node the terminal was registered at before it moved here", EnvVars: []string{"IRMV_FROM"}},
					&cli.StringFlag{Name: "from-token", Usage: "the terminal's token at --from (a terminal without a key proves the move with it)", EnvVars: []string{"IRMV_FROM_TOKEN"}},
					&cli.StringFlag{Name: "sip-user", Usage: "set credentials for a SIP phone that registers itself as sip:`USER`@node", EnvVars: []string{"IRMV_SIP_USER"}},
					&cli.StringFlag{Name: "sip-password", Usage: "the SIP phone's digest password", EnvVars: []string{"IRMV_SIP_PASSWORD"}},
					nodeFlag, tokenFlag, jsonFlag),
				Action: shareAdd,
			},
			{
				Name:   "list",
				Usage:  "list the terminals the node hosts",
				Flags:  []cli.Flag{nodeFlag, tokenFlag, jsonFlag},
				Action: shareList,
			},
			{
				Name:      "remove",
				Aliases:   []string{"rm"},
				Usage:     "remove a terminal (TERMINAL: the handle irmv share add printed, as irmv share list shows it)",
				ArgsUsage: "TERMINAL",
				Flags:     []cli.Flag{nodeFlag, tokenFlag, jsonFlag},
				Action:    shareRemove,
			},
			{
				Name:      "refresh",
				Usage:     "keep a terminal registered for its --ttl again (TERMINAL: the handle irmv share add printed)",
				ArgsUsage: "TERMINAL",
				Flags:     []cli.Flag{nodeFlag, tokenFlag, jsonFlag},
				Action:    shareRefresh,
			},
			{
				Name:      "status",
				Usage:     "set a terminal's status (TERMINAL: the handle irmv share add printed, as irmv share list shows it)",
				ArgsUsage: "TERMINAL online|idle|busy|offline",
				Flags:     []cli.Flag{nodeFlag, tokenFlag, jsonFlag},
				Action:    shareStatus,
			},
		},
	}
}

func shareAdd(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("share add takes no arguments (got %q): use --name, --phone, --uid, --ip", c.Args().First()), exitError)
	}
	if c.String("sip-user") != "" || c.String("sip-password") != "" {
		return shareAddSIP(c)
	}
	ttl := c.Duration("ttl")
	if ttl%time.Second != 0 {
		return cli.Exit("--ttl must be whole seconds", exitError)
	}
	if ttl < 0 || ttl != 0 && (ttl < share.MinTTL || ttl > share.MaxTTL) {
		return cli.Exit(fmt.Sprintf("--ttl %v: want 0 (the node's default) or %v to %dh", ttl, share.MinTTL, int(share.MaxTTL.Hours())), exitError)
	}
	reg := client.Registration{
		Name: c.String("name"), Phone: c.String("phone"), UID: c.String("uid"), IP: c.String("ip"),
		Address: c.String("address"), Status: c.String("status"), Private: c.Bool("private"),
		TTL: int(ttl / time.Second), From: c.String("from"), FromToken: c.String("from-token"),
	}
	if reg.FromToken != "" && reg.From == "" {
		return cli.Exit("--from-token needs --from (the peer ID of the node the terminal moved from)", exitError)
	}
	if reg.Name == "" && reg.Phone == "" && reg.UID == "" {
		return cli.Exit("give at least one of --name, --phone or --uid", exitError)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ack, err := cl.Register(c.Context, reg)
	if err != nil {
		return registerExit(err, reg.Phone)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, ack)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "registered %s\n", ack.Terminal)
	fmt.Fprintf(w, "  expires  %s unless refreshed: irmv share refresh %s\n", ack.ExpiresAt.Local().Format(time.RFC3339), ack.Terminal)
	printIdentifiers(w, ack.Identifiers.Name, ack.Identifiers.Phone, ack.Identifiers.UID, ack.Identifiers.IP)
	if len(ack.NameTokens) > 0 {
		fmt.Fprintf(w, "  keywords %s\n", strings.Join(ack.NameTokens, ", "))
	}
	fmt.Fprintf(w, "  status   %s, record signed by %s\n", ack.Status, ack.Signer)
	fmt.Fprintf(w, "  token    %s\n", ack.Token)
	return nil
}

// shareAddSIP sets a SIP phone's credentials.
func shareAddSIP(c *cli.Context) error {
	u := client.SIPUser{User: c.String("sip-user"), Password: c.String("sip-password"), Name: c.String("name"), Phone: c.String("phone")}
	switch {
	case u.User == "" || u.Password == "":
		return cli.Exit("give both --sip-user and --sip-password", exitError)
	case c.String("uid") != "" || c.String("ip") != "" || c.String("address") != "" || c.Bool("private") || c.Duration("ttl") != 0 ||
		c.String("from") != "" || c.String("from-token") != "":
		return cli.Exit("with --sip-user only --name and --phone apply: the phone registers itself (uid: the SIP user)", exitError)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	info, err := cl.SetSIPUser(c.Context, u)
	if err != nil {
		return apiExit(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, info)
	}
	fmt.Fprintf(c.App.Writer, "SIP user %s set (realm %s): the phone registers as sip:%s@<this node>\n", info.User, info.Realm, info.User)
	printIdentifiers(c.App.Writer, info.Name, info.Phone, "", "")
	return nil
}

func printIdentifiers(w interface{ Write([]byte) (int, error) }, name, phone, uid, ip string) {
	for _, kv := range [][2]string{{"name", name}, {"phone", phone}, {"uid", uid}, {"ip", ip}} {
		if kv[1] != "" {
			fmt.Fprintf(w, "  %-8s %s\n", kv[0], kv[1])
		}
	}
}

func shareList(c *cli.Context) error {
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ts, err := cl.List(c.Context)
	if err != nil {
		return apiExit(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]any{"terminals": ts})
	}
	if len(ts) == 0 {
		fmt.Fprintln(c.App.ErrWriter, "no terminals")
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TERMINAL\tNAME\tPHONE\tUID\tADDRESS\tSTATUS\tEXPIRES")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Terminal, dash(t.Identifiers.Name), dash(t.Identifiers.Phone),
			dash(t.Identifiers.UID), dash(t.Address), t.Status, time.Until(t.ExpiresAt).Round(time.Second))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shareRemove(c *cli.Context) error {
	args, err := interspersedArgs(c)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if len(args) != 1 {
		return cli.Exit("usage: irmv share remove TERMINAL", exitError)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	t := args[0]
	if err := cl.Remove(c.Context, t); err != nil {
		return terminalExit(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, map[string]string{"removed": t})
	}
	fmt.Fprintf(c.App.Writer, "removed %s\n", t)
	return nil
}

func shareRefresh(c *cli.Context) error {
	args, err := interspersedArgs(c)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if len(args) != 1 {
		return cli.Exit("usage: irmv share refresh TERMINAL", exitError)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ack, err := cl.Heartbeat(c.Context, args[0])
	if err != nil {
		return terminalExit(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, ack)
	}
	fmt.Fprintf(c.App.Writer, "%s expires %s unless refreshed again\n", ack.Terminal, ack.ExpiresAt.Local().Format(time.RFC3339))
	return nil
}

func shareStatus(c *cli.Context) error {
	args, err := interspersedArgs(c)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if len(args) != 2 {
		return cli.Exit("usage: irmv share status TERMINAL online|idle|busy|offline", exitError)
	}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	ack, err := cl.SetStatus(c.Context, args[0], args[1])
	if err != nil {
		return terminalExit(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, ack)
	}
	fmt.Fprintf(c.App.Writer, "%s is %s\n", ack.Terminal, ack.Status)
	return nil
}

// terminalExit is apiExit that, for a terminal the node does not host, says
// what TERMINAL is: users try the uid they registered.
func terminalExit(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return cli.Exit(fmt.Sprintf("%s (HTTP 404): TERMINAL is the handle irmv share add printed (the TERMINAL column of irmv share list)", ae.Message), exitError)
	}
	return apiExit(err)
}

// registerExit is apiExit with regionHint.
func registerExit(err error, phone string) error {
	if h := regionHint(err, phone); h != "" {
		var ae *client.APIError
		errors.As(err, &ae)
		return cli.Exit(fmt.Sprintf("%s (HTTP %d): %s", ae.Message, ae.Status, h), exitError)
	}
	return apiExit(err)
}

// regionHint names the way out when the node refused a phone number in
// national form for want of a region: its --region, or a "+" number.
func regionHint(err error, phone string) string {
	var ae *client.APIError
	p := strings.TrimSpace(phone)
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest && p != "" &&
		strings.Contains(ae.Message, "invalid country code") && !strings.HasPrefix(p, "+") && !strings.HasPrefix(p, "00") {
		return "a national number needs the node's --region (irmv node --region DE), or write it with + and the country code"
	}
	return ""
}
