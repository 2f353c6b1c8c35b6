package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

// unknownCommand is the action of the app and of commands with
// subcommands: with no argument it shows the help, with one it says that
// the command is unknown (exit 2, not urfave's 3, which is "busy" for call).
func unknownCommand(c *cli.Context) error {
	if !c.Args().Present() {
		if c.Command == nil || c.Command.Name == "" || c.Command.Name == c.App.Name {
			return cli.ShowAppHelp(c)
		}
		return cli.ShowSubcommandHelp(c)
	}
	name := c.Args().First()
	cmds := c.App.Commands
	where := "irmv"
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name && len(c.Command.Subcommands) > 0 {
		cmds = c.Command.Subcommands
		where = "irmv " + c.Command.Name
	}
	return cli.Exit(unknownCommandMsg(cmds, name, where, len(terminalCommands()) > 0), exitError)
}

// terminalOnly are the commands that node-only (firmware) builds leave out.
var terminalOnly = []string{"phone", "call", "sim", "demo"}

// unknownCommandMsg says that name is no command of cmds, suggesting the
// closest one if any is close; in a build without the terminal commands
// (terminal false) it says that one of those is left out of the build.
// urfave/cli's own suggestion always names something, "h" or "" at worst.
func unknownCommandMsg(cmds []*cli.Command, name, where string, terminal bool) string {
	if !terminal && where == "irmv" && slices.Contains(terminalOnly, name) {
		return fmt.Sprintf("irmv %s is not in this build: a node-only (firmware) build has node, share, search and version; %s runs from a full build (go build ./cmd/irmv)", name, name)
	}
	msg := fmt.Sprintf("unknown command %q", name)
	best, closest := "", 0.8 // Jaro-Winkler: "serch" and "search" 0.96, "x" and "h" 0
	for _, cmd := range cmds {
		if cmd.Name == "help" {
			continue
		}
		for _, n := range cmd.Names() {
			if d := smetrics.JaroWinkler(n, name, 0.7, 4); d > closest {
				best, closest = n, d
			}
		}
	}
	if best != "" {
		msg += fmt.Sprintf(". Did you mean %q?", best)
	}
	return msg + fmt.Sprintf(" (%s --help lists the commands)", where)
}

// badValue matches urfave/cli's flag parse errors.
var badValue = regexp.MustCompile(`^invalid value "(.*)" for flag -([\w-]+): (.*)$`)

// usageError replaces urfave/cli's "Incorrect Usage" and help dump with one
// line that names the flag and, for durations, the missing unit.
func usageError(c *cli.Context, err error, _ bool) error {
	if m := badValue.FindStringSubmatch(err.Error()); m != nil {
		return flagValueError(c.Command.Flags, m[2], m[1], errors.New(m[3]))
	}
	return cli.Exit(err.Error()+" (--help lists the flags)", exitError)
}

// flagValueError says why val is no value for the flag name.
func flagValueError(flags []cli.Flag, name, val string, err error) error {
	for _, f := range flags {
		if _, ok := f.(*cli.DurationFlag); !ok || !hasName(f, name) {
			continue
		}
		if _, perr := time.ParseDuration(val + "s"); perr == nil {
			return cli.Exit(fmt.Sprintf("--%s %s: a duration needs a unit, e.g. %ss (ms, s, m, h)", name, val, val), exitError)
		}
		return cli.Exit(fmt.Sprintf("--%s %q: not a duration; write it like 5s, 500ms or 2m", name, val), exitError)
	}
	return cli.Exit(fmt.Sprintf("--%s %q: %v", name, val, err), exitError)
}

func hasName(f cli.Flag, name string) bool {
	for _, n := range f.Names() {
		if n == name {
			return true
		}
	}
	return false
}

// withUsageErrors gives every command the one-line usage errors and the
// unknown-subcommand action.
func withUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = usageError
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = unknownCommand
		}
		withUsageErrors(c.Subcommands)
	}
}
