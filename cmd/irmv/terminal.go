//go:build !irmv_node_only

package main

import "github.com/urfave/cli/v2"

// terminalCommands are the commands that act as a terminal or run whole
// networks in-process. They link pion's media stack and plotting, which
// firmware builds (-tags irmv_node_only) leave out; add new such commands
// here and tag their files the same way.
func terminalCommands() []*cli.Command {
	return []*cli.Command{
		phoneCommand(),
		callCommand(),
		simCommand(),
		demoCommand(),
	}
}
