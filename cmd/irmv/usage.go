package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
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

// badValue, badBool and badEnv match urfave/cli's flag parse errors.
var (
	badValue = regexp.MustCompile(`^invalid value "(.*)" for flag -([\w-]+): (.*)$`)
	badBool  = regexp.MustCompile(`^invalid boolean value "(.*)" for -([\w-]+): (.*)$`)
	badEnv   = regexp.MustCompile(`^could not parse "(.*)" as \w+ value from environment variable "(\w+)" for flag ([\w-]+): (.*)$`)
)

// usageError replaces urfave/cli's "Incorrect Usage" and help dump with one
// line that names the flag (or its environment variable) and says what
// value it wants: the unit of a duration, a number, true or false.
func usageError(c *cli.Context, err error, _ bool) error {
	msg := err.Error()
	if m := badValue.FindStringSubmatch(msg); m != nil {
		return flagValueError(c.Command.Flags, m[2], m[1], "", errors.New(m[3]))
	}
	if m := badBool.FindStringSubmatch(msg); m != nil {
		return flagValueError(c.Command.Flags, m[2], m[1], "", errors.New(m[3]))
	}
	if m := badEnv.FindStringSubmatch(msg); m != nil {
		return flagValueError(c.Command.Flags, m[3], m[1], m[2], errors.New(m[4]))
	}
	return cli.Exit(msg+" (--help lists the flags)", exitError)
}

// flagValueError says why val is no value for the flag name, given on the
// command line or, when env is set, in that environment variable.
func flagValueError(flags []cli.Flag, name, val, env string, err error) error {
	label := func(v string) string {
		if env != "" {
			return fmt.Sprintf("%s=%s (--%s)", env, v, name)
		}
		return fmt.Sprintf("--%s %s", name, v)
	}
	what := label(strconv.Quote(val))
	for _, f := range flags {
		if !hasName(f, name) {
			continue
		}
		switch f.(type) {
		case *cli.DurationFlag:
			if _, perr := time.ParseDuration(val + "s"); perr == nil {
				return cli.Exit(fmt.Sprintf("%s: a duration needs a unit, e.g. %ss (ms, s, m, h)", label(val), val), exitError)
			}
			return cli.Exit(what+": not a duration; write it like 5s, 500ms or 2m", exitError)
		case *cli.Float64Flag:
			return cli.Exit(what+": not a number; write it like 5 or 2.5", exitError)
		case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
			return cli.Exit(what+": not a whole number; write it like 20", exitError)
		}
		// A boolean, also wrapped for --config (altsrc): the one kind of
		// flag that takes no value.
		if v, ok := f.(interface{ TakesValue() bool }); ok && !v.TakesValue() {
			return cli.Exit(what+": want true or false", exitError)
		}
	}
	return cli.Exit(fmt.Sprintf("%s: %v", what, err), exitError)
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
