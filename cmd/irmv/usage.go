package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/urfave/cli/v2"
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
	msg := fmt.Sprintf("unknown command %q", name)
	if s := cli.SuggestCommand(cmds, name); s != "" {
		msg += ". " + s
	}
	return cli.Exit(msg+fmt.Sprintf(" (%s --help lists the commands)", where), exitError)
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

// checkPlay checks that --play names a readable Ogg/Opus file, before
// anyone is searched for or rung.
func checkPlay(path string) error {
	if path == "" {
		return nil
	}
	if err := media.CheckOpusFile(path); err != nil {
		if errors.Is(err, media.ErrNotOpus) {
			return cli.Exit(fmt.Sprintf("--play %s: not an Ogg/Opus file (convert it, e.g. ffmpeg -i IN -c:a libopus OUT.ogg)", path), exitError)
		}
		return cli.Exit(fmt.Sprintf("--play: %v", err), exitError)
	}
	return nil
}

// checkRecordDir checks that --record names a directory that exists or
// can be made, and that files can be written in it.
func checkRecordDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cli.Exit(fmt.Sprintf("--record: %v", err), exitError)
	}
	return checkWritable("--record", dir)
}

// checkRecordFile checks that --record FILE can be created.
func checkRecordFile(file string) error {
	if file == "" {
		return nil
	}
	if strings.HasSuffix(file, string(os.PathSeparator)) {
		return cli.Exit(fmt.Sprintf("--record %s: want a file name, not a directory", file), exitError)
	}
	if fi, err := os.Stat(file); err == nil && fi.IsDir() {
		return cli.Exit(fmt.Sprintf("--record %s: is a directory; want a file name", file), exitError)
	}
	dir := filepath.Dir(file)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return cli.Exit(fmt.Sprintf("--record %s: directory %s does not exist", file, dir), exitError)
	}
	return checkWritable("--record", dir)
}

func checkWritable(flag, dir string) error {
	f, err := os.CreateTemp(dir, ".irmv-write-check-*")
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s %s: cannot write there: %v", flag, dir, errors.Unwrap(err)), exitError)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
