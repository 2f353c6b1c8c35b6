//go:build !irmv_json_config

package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// configFormat names the --config file format of this build.
const configFormat = "YAML"

// configFlags lets every flag but --config also come from the --config
// file (urfave/cli's altsrc); flags and environment win over it.
func configFlags(flags []cli.Flag) ([]cli.Flag, cli.BeforeFunc) {
	out := make([]cli.Flag, len(flags))
	for i, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			if f.Name == "config" {
				out[i] = f
				continue
			}
			out[i] = altsrc.NewStringFlag(f)
		case *cli.StringSliceFlag:
			out[i] = altsrc.NewStringSliceFlag(f)
		case *cli.BoolFlag:
			out[i] = altsrc.NewBoolFlag(f)
		default:
			panic(fmt.Sprintf("configFlags: no config source for %T", f)) // a programming error, caught by any run
		}
	}
	return out, altsrc.InitInputSourceWithContext(out, configSource)
}

// configSource loads --config when it is given; without it there is no
// config file and defaults apply.
func configSource(c *cli.Context) (altsrc.InputSourceContext, error) {
	path := c.String("config")
	if path == "" {
		return &altsrc.MapInputSource{}, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, cli.Exit(fmt.Sprintf("config: %v", err), exitError)
	}
	src, err := altsrc.NewYamlSourceFromFile(path)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("config %s: %v", path, err), exitError)
	}
	return src, nil
}
