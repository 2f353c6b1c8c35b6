//go:build !irmv_json_config

package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"gopkg.in/yaml.v3"
)

// configFormat names the --config file format of this build.
const configFormat = "YAML"

// configFlags lets every flag but --config also come from the --config
// file (urfave/cli's altsrc); flags and environment win over it.
func configFlags(flags []cli.Flag) ([]cli.Flag, cli.BeforeFunc) {
	out := make([]cli.Flag, len(flags))
	known := map[string]bool{}
	lists := map[string]bool{}
	for i, f := range flags {
		for _, name := range f.Names() {
			known[name] = name != "config"
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			if f.Name == "config" {
				out[i] = f
				continue
			}
			out[i] = altsrc.NewStringFlag(f)
		case *cli.StringSliceFlag:
			for _, name := range f.Names() {
				lists[name] = true
			}
			out[i] = altsrc.NewStringSliceFlag(f)
		case *cli.BoolFlag:
			out[i] = altsrc.NewBoolFlag(f)
		default:
			panic(fmt.Sprintf("configFlags: no config source for %T", f)) // a programming error, caught by any run
		}
	}
	// Not altsrc.InitInputSourceWithContext: it buries the reason in
	// "Unable to create input source with context: inner error".
	return out, func(c *cli.Context) error {
		src, err := configSource(c, known, lists)
		if err != nil {
			return err
		}
		if err := altsrc.ApplyInputSourceValues(c, src, out); err != nil {
			return cli.Exit(fmt.Sprintf("config %s: %v", c.String("config"), err), exitError)
		}
		return nil
	}
}

// configSource loads --config when it is given; without it there is no
// config file and defaults apply. Keys that name no flag are an error, as
// in the JSON build: a misspelt key must not leave its flag at the default.
// A list flag (listen, bootstrap, …) may be one value instead of a list.
func configSource(c *cli.Context, known, lists map[string]bool) (altsrc.InputSourceContext, error) {
	path := c.String("config")
	if path == "" {
		return &altsrc.MapInputSource{}, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, cli.Exit(fmt.Sprintf("config: %v", err), exitError)
	}
	if err := checkKeys(path, known); err != nil {
		return nil, cli.Exit(fmt.Sprintf("config %s: %v", path, err), exitError)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, cli.Exit(fmt.Sprintf("config: %v", err), exitError)
	}
	m := map[any]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, cli.Exit(fmt.Sprintf("config %s: %v", path, err), exitError)
	}
	for k, v := range m {
		if name, ok := k.(string); ok && lists[name] {
			if s, ok := v.(string); ok {
				m[k] = []any{s}
			}
		}
	}
	return altsrc.NewMapInputSource(path, m), nil
}

// checkKeys returns an error naming the first key of the YAML file at path
// that is not in known.
func checkKeys(path string, known map[string]bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of flag names to values", top.Line)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if k := top.Content[i]; !known[k.Value] {
			return fmt.Errorf("unknown key %q (line %d): keys are the flag names of irmv node --help, without --config", k.Value, k.Line)
		}
	}
	return nil
}
