//go:build irmv_json_config

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/urfave/cli/v2"
)

// configFormat names the --config file format of this build. Firmware
// builds (tag irmv_json_config) read JSON, which is also valid YAML, and
// so link neither urfave/cli's altsrc nor a YAML parser (0.33 MB on arm).
const configFormat = "JSON"

// configFlags returns flags unchanged and a Before hook that sets every
// flag not given on the command line or in the environment from the
// --config file: an object with flag names as keys, strings, booleans and
// arrays of strings as values.
func configFlags(flags []cli.Flag) ([]cli.Flag, cli.BeforeFunc) {
	kinds := map[string]string{}
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			kinds[f.Name] = "string"
		case *cli.StringSliceFlag:
			kinds[f.Name] = "list"
		case *cli.BoolFlag:
			kinds[f.Name] = "bool"
		}
	}
	delete(kinds, "config")
	return flags, func(c *cli.Context) error {
		path := c.String("config")
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return cli.Exit(fmt.Sprintf("config: %v", err), exitError)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return cli.Exit(fmt.Sprintf("config %s: not a JSON object (this build reads JSON): %v", path, err), exitError)
		}
		for name, raw := range m {
			if err := setFromConfig(c, kinds[name], name, raw); err != nil {
				return cli.Exit(fmt.Sprintf("config %s: %v", path, err), exitError)
			}
		}
		return nil
	}
}

func setFromConfig(c *cli.Context, kind, name string, raw json.RawMessage) error {
	var vals []string
	switch kind {
	case "":
		return fmt.Errorf("unknown key %q", name)
	case "string":
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s: want a string", name)
		}
		vals = []string{v}
	case "bool":
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s: want true or false", name)
		}
		vals = []string{strconv.FormatBool(v)}
	case "list":
		if err := json.Unmarshal(raw, &vals); err != nil {
			return fmt.Errorf("%s: want an array of strings", name)
		}
	}
	if c.IsSet(name) {
		return nil // the command line and the environment win
	}
	for _, v := range vals {
		if err := c.Set(name, v); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
	}
	return nil
}
