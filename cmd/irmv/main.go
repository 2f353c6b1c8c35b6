// Command irmv runs an irmv node and its terminal-side tools: share,
// search, phone and call. See `irmv --help`.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		code := exitError
		if ec, ok := err.(interface{ ExitCode() int }); ok {
			code = ec.ExitCode()
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "irmv:", msg)
			}
		} else {
			fmt.Fprintln(os.Stderr, "irmv:", err)
		}
		os.Exit(code)
	}
}
