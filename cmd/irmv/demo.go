//go:build !irmv_node_only

package main

import (
	"context"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/internal/demo"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run three nodes and three phones on 127.0.0.1: search, call, record (no setup)",
		Description: `Starts three irmv nodes in this process on 127.0.0.1 (mDNS off), registers
a phone on each, searches for them by phone number, unique ID and name,
printing how each was found, then calls one and plays a short speech
sample that the callee records, with a timeline of set-up, quality and
route. Everything is removed at the end; --dir keeps the nodes' data and
the recording.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "keep data and the recording here (default: a temporary directory)", EnvVars: []string{"IRMV_DEMO_DIR"}},
		},
		Action: func(c *cli.Context) error {
			ctx, cancel := context.WithTimeout(c.Context, time.Minute)
			defer cancel()
			if _, err := demo.Run(ctx, c.App.Writer, demo.Options{Dir: c.String("dir")}); err != nil {
				return cli.Exit("demo: "+err.Error(), exitError)
			}
			return nil
		},
	}
}
