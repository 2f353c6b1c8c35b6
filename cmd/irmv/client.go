package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/client"
)

// Flags every client command shares.
var (
	nodeFlag  = &cli.StringFlag{Name: "node", Usage: "URL of the node's terminal API", Value: client.DefaultNode, EnvVars: []string{"IRMV_NODE"}}
	tokenFlag = &cli.StringFlag{Name: "token", Usage: "bearer token: the terminal's (from its ack) or the node's admin token (<data-dir>/admin.token); not needed on a loopback API", EnvVars: []string{"IRMV_TOKEN"}}
	jsonFlag  = &cli.BoolFlag{Name: "json", Usage: "print JSON (one object per line for streams) and nothing else on stdout", EnvVars: []string{"IRMV_JSON"}}
)

// Identifier flags of share add and phone.
func identifierFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "name", Usage: "the terminal's name, as written (searchable by any of its words)", EnvVars: []string{"IRMV_NAME"}},
		&cli.StringFlag{Name: "phone", Usage: "phone number in any common form (national forms use the node's --region)", EnvVars: []string{"IRMV_PHONE"}},
		&cli.StringFlag{Name: "uid", Usage: "any other unique identity number (MAC, IMEI, SIP URI, …)", EnvVars: []string{"IRMV_UID"}},
		&cli.StringFlag{Name: "ip", Usage: "the terminal's current IP address (searchable too; default: the address it registers from)", EnvVars: []string{"IRMV_IP"}},
	}
}

func newClient(c *cli.Context) (*client.Client, error) {
	cl, err := client.New(c.String("node"), c.String("token"))
	if err != nil {
		return nil, cli.Exit(err.Error(), exitError)
	}
	return cl, nil
}

// apiExit turns a client error into a CLI exit with the node's message.
func apiExit(err error) error {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return cli.Exit(fmt.Sprintf("%s (HTTP %d)", ae.Message, ae.Status), exitError)
	}
	msg := err.Error()
	if errors.Is(err, client.ErrUnreachable) {
		// What matters comes first, not the steps that led to it
		// ("phone: prepare registration: ").
		if i := strings.Index(msg, client.ErrUnreachable.Error()); i > 0 {
			msg = msg[i:]
		}
	}
	return cli.Exit(msg, exitError)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}

func printIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
