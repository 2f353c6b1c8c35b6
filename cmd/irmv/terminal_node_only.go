//go:build irmv_node_only

package main

import "github.com/urfave/cli/v2"

// terminalCommands is empty in node-only (firmware) builds: no phone, call,
// sim or demo, and none of the pion media stack they link.
func terminalCommands() []*cli.Command { return nil }
