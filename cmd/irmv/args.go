package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersedArgs applies flags that follow the first argument (urfave/cli
// v2 stops parsing at it: `irmv call bob --play f.ogg`) and returns the
// arguments left. "--" ends the flags.
func interspersedArgs(c *cli.Context) ([]string, error) {
	isBool := func(name string) (known, boolean bool) {
		for _, f := range c.Command.Flags {
			for _, n := range f.Names() {
				if n == name {
					_, b := f.(*cli.BoolFlag)
					return true, b
				}
			}
		}
		return false, false
	}
	a := c.Args().Slice()
	var args []string
	for i := 0; i < len(a); i++ {
		s := a[i]
		if s == "--" {
			return append(args, a[i+1:]...), nil
		}
		if len(s) < 2 || s[0] != '-' {
			args = append(args, s)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(s, "-"), "=")
		known, boolean := isBool(name)
		if !known {
			return nil, fmt.Errorf("flag provided but not defined: -%s", name)
		}
		if !hasVal {
			if boolean {
				val = "true"
			} else if i+1 < len(a) {
				i++
				val = a[i]
			} else {
				return nil, fmt.Errorf("flag needs an argument: -%s", name)
			}
		}
		if err := c.Set(name, val); err != nil {
			return nil, flagValueError(c.Command.Flags, name, val, "", err)
		}
	}
	return args, nil
}
