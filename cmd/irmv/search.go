package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/irmv/irmv/search"
	"github.com/urfave/cli/v2"
)

func searchCommand() *cli.Command {
	return &cli.Command{
		Name:      "search",
		Usage:     "find terminals anywhere in the network by name, phone number, unique ID or IP",
		ArgsUsage: "QUERY",
		Description: `Prints the terminals matching QUERY as they are found. QUERY is a phone
number in any written form, an IP address, a name or part of one (any words,
any case, with or without accents), or kind:value (name:, phone:, uid:, ip:).
Exit status: 0 found, 1 nothing found, 2 error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "via", Usage: "auto (DHT, then flooding), dht or flood", Value: "auto", EnvVars: []string{"IRMV_VIA"}},
			&cli.DurationFlag{Name: "timeout", Usage: "how long to look", Value: search.DefaultTimeout, EnvVars: []string{"IRMV_TIMEOUT"}},
			&cli.IntFlag{Name: "limit", Usage: "stop after this many results", Value: search.DefaultLimit, EnvVars: []string{"IRMV_LIMIT"}},
			nodeFlag, jsonFlag,
		},
		Action: runSearch,
	}
}

func runSearch(c *cli.Context) error {
	args, err := interspersedArgs(c)
	if err != nil {
		return cli.Exit(err.Error(), exitError)
	}
	if len(args) == 0 {
		return cli.Exit("usage: irmv search QUERY", exitError)
	}
	if strings.TrimSpace(strings.Join(args, "")) == "" {
		return cli.Exit("usage: irmv search QUERY: QUERY is empty", exitError)
	}
	if c.Int("limit") < 1 || c.Int("limit") > search.MaxLimit {
		return cli.Exit(fmt.Sprintf("--limit %d: want 1 to %d", c.Int("limit"), search.MaxLimit), exitError)
	}
	if d := c.Duration("timeout"); d <= 0 || d > search.MaxTimeout {
		return cli.Exit(fmt.Sprintf("--timeout %s: want more than 0 and at most %s", d, search.MaxTimeout), exitError)
	}
	q := search.Query{Text: strings.Join(args, " "), Via: c.String("via"), Limit: c.Int("limit"), Timeout: c.Duration("timeout")}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	asJSON := c.Bool("json")
	var (
		mu    sync.Mutex
		found int
		tw    = tabwriter.NewWriter(c.App.Writer, 2, 4, 2, ' ', 0)
	)
	stop := startSpinner(c, q.Text, func() int { mu.Lock(); defer mu.Unlock(); return found })
	// The node gives up at the timeout; allow it time to say so.
	ctx, cancel := context.WithTimeout(c.Context, q.Timeout+10*time.Second)
	defer cancel()
	err = cl.Search(ctx, q, func(r search.Result) error {
		mu.Lock()
		defer mu.Unlock()
		stop()
		found++
		if asJSON {
			return printJSON(c.App.Writer, r)
		}
		if found == 1 {
			fmt.Fprintln(tw, "NAME\tPHONE\tUID\tADDRESS\tSTATUS\tVIA\tNODE")
		}
		addr := dash(r.Address)
		if r.Private {
			addr = "(private)"
		}
		verified := ""
		if !r.Verified {
			verified = " (unverified)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s %.0fms\t%s%s\n", dash(r.Identifiers.Name), dash(r.Identifiers.Phone), dash(r.Identifiers.UID),
			addr, r.Status, r.Via, r.ElapsedMS, shortID(r.Node), verified)
		return tw.Flush()
	})
	stop()
	if err != nil {
		return apiExit(err)
	}
	if found == 0 {
		if !asJSON {
			fmt.Fprintf(c.App.ErrWriter, "nothing found for %q\n", q.Text)
		}
		return cli.Exit("", exitNotFound)
	}
	return nil
}

// shortID shortens a peer ID for tables.
func shortID(id string) string {
	if len(id) > 12 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// startSpinner shows a progress line on stderr while a search waits, when
// stderr is a terminal. The returned stop is idempotent.
func startSpinner(c *cli.Context, what string, found func() int) func() {
	f, ok := c.App.ErrWriter.(*os.File)
	if !ok || !isTerminal(f) {
		return func() {}
	}
	done := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		frames := `|/-\`
		start := time.Now()
		for i := 0; ; i++ {
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-time.After(100 * time.Millisecond):
			}
			fmt.Fprintf(f, "\r%c searching for %q… %.1fs", frames[i%4], what, time.Since(start).Seconds())
		}
	}()
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}
