package main

import (
	"slices"

	"github.com/urfave/cli/v2"
)

// Exit statuses, shared by every command. Search follows grep.
const (
	exitOK       = 0
	exitNotFound = 1 // search: nothing found; call: callee not found
	exitError    = 2 // bad input, node unreachable, internal error
	exitBusy     = 3 // call: callee busy
	exitRejected = 4 // call: callee rejected
	exitNoAnswer = 5 // call: no answer, or callee unavailable
	exitFailed   = 6 // call: set-up or media failed
	// exitAmbiguous: call: several terminals match the identifier equally
	// well, and nobody was called.
	exitAmbiguous = 7

	// exitCancelled: Ctrl-C or SIGTERM before the call was made (the
	// shell's 128 + SIGINT).
	exitCancelled = 130
)

var version = "dev"

func newApp() *cli.App {
	app := &cli.App{
		Name:    "irmv",
		Usage:   "peer-to-peer directory and calling for VoIP terminals",
		Version: version,
		Description: `irmv runs a node on an access point or server that shares the identifiers
of the terminals it hosts (name, phone number, unique ID, IP address) over a
Kademlia DHT, and finds and calls any terminal by them.

Every flag can also be set by the environment variable shown beside it.`,
		Commands: slices.Concat(
			[]*cli.Command{nodeCommand(), shareCommand(), searchCommand()},
			terminalCommands(), // phone, call, sim, demo: not in irmv_node_only builds
			[]*cli.Command{versionCommand()},
		),
		ExitErrHandler: func(*cli.Context, error) {}, // main prints and exits
		Action:         unknownCommand,
		OnUsageError:   usageError,
		Suggest:        true,
	}
	withUsageErrors(app.Commands)
	return app
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			_, err := c.App.Writer.Write([]byte("irmv " + version + "\n"))
			return err
		},
	}
}
