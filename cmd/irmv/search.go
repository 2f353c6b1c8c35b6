package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/search"
)

func searchCommand() *cli.Command {
	return &cli.Command{
		Name:      "search",
		Usage:     "find terminals anywhere in the network by name, phone number, unique ID or IP",
		ArgsUsage: "QUERY",
		Description: `Prints the terminals matching QUERY as they are found (on a terminal), then
all of them ranked, best match first. QUERY is looked up as everything it can
be: a phone number in any written form (national numbers in the node's
--region), an IP address, a unique ID, a name or part of one (each word
begins a different word of the name; any case, accents, letters like ł, ø, æ
or ß, O'Brien as obrien or brien, Cyrillic and Greek also in Latin letters),
or only as kind:value (name:, phone:, uid:, ip:). MATCH says how a terminal
answers: exact (the whole identifier), words (all of the name's words), prefix.
TERMINAL is HANDLE@NODE, for irmv call --terminal. When stdout is not a
terminal (a pipe, a file), each result is one tab-separated line with those
columns, printed as it arrives, without a header (--ranked: all at the end,
ranked, as a table). --json prints one JSON object per line as it arrives,
each with "match".
Exit status: 0 found, 1 nothing found, 2 error.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "via", Usage: "auto (DHT, then flooding), dht or flood", Value: "auto", EnvVars: []string{"IRMV_VIA"}},
			&cli.DurationFlag{Name: "timeout", Usage: "how long to look", Value: search.DefaultTimeout, EnvVars: []string{"IRMV_TIMEOUT"}},
			&cli.IntFlag{Name: "limit", Usage: "stop after this many results", Value: search.DefaultLimit, EnvVars: []string{"IRMV_LIMIT"}},
			&cli.BoolFlag{Name: "ranked", Usage: "when stdout is not a terminal, wait for the end and print the ranked table instead of a line per result as it arrives", EnvVars: []string{"IRMV_RANKED"}},
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
	switch v := c.String("via"); v {
	case client.ViaAuto, client.ViaDHT, client.ViaFlood:
	default:
		return cli.Exit(fmt.Sprintf("--via %q: want auto, dht or flood", v), exitError)
	}
	if d := c.Duration("timeout"); d <= 0 || d > search.MaxTimeout {
		return cli.Exit(fmt.Sprintf("--timeout %s: want more than 0 and at most %s", d, search.MaxTimeout), exitError)
	}
	q := client.Query{Text: strings.Join(args, " "), Via: c.String("via"), Limit: c.Int("limit"), Timeout: c.Duration("timeout")}
	cl, err := newClient(c)
	if err != nil {
		return err
	}
	asJSON := c.Bool("json")
	// On a terminal, results show as they arrive and are then redrawn
	// ranked. Elsewhere each is a line as it arrives, so a pipe reader
	// sees the first one at once; --ranked prints the ranked table at
	// the end instead.
	out, _ := c.App.Writer.(*os.File)
	live := !asJSON && out != nil && isTerminal(out)
	lineEach := !asJSON && !live && !c.Bool("ranked")
	var (
		mu      sync.Mutex
		results []client.Result
		lines   int
	)
	stop := startSpinner(c, q.Text, func() int { mu.Lock(); defer mu.Unlock(); return len(results) })
	// The node gives up at the timeout; allow it time to say so.
	ctx, cancel := context.WithTimeout(c.Context, q.Timeout+10*time.Second)
	defer cancel()
	err = cl.Search(ctx, q, func(r client.Result) error {
		mu.Lock()
		defer mu.Unlock()
		stop()
		results = append(results, r)
		if asJSON {
			return printJSON(c.App.Writer, r)
		}
		if live {
			n, err := printResults(c.App.Writer, []client.Result{r}, len(results) == 1)
			lines += n
			return err
		}
		if lineEach {
			_, err := io.WriteString(c.App.Writer, strings.Join(resultColumns(r), "\t")+"\n")
			return err
		}
		return nil
	})
	stop()
	if err != nil {
		return apiExit(err)
	}
	if len(results) == 0 {
		if !asJSON {
			fmt.Fprintf(c.App.ErrWriter, "nothing found for %q\n", q.Text)
		}
		return cli.Exit("", exitNotFound)
	}
	if !asJSON && !lineEach {
		search.Rank(results)
		if live {
			fmt.Fprintf(c.App.Writer, "\033[%dA\033[J", lines) // up over the live lines, clear
		}
		if _, err := printResults(c.App.Writer, results, true); err != nil {
			return cli.Exit(err.Error(), exitError)
		}
	}
	return nil
}

// printResults writes results as table rows, with the header if asked,
// and returns how many lines it wrote.
func printResults(w io.Writer, rs []client.Result, header bool) (int, error) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	lines := 0
	if header {
		fmt.Fprintln(tw, "NAME\tPHONE\tUID\tMATCH\tADDRESS\tSTATUS\tVIA\tTERMINAL")
		lines++
	}
	for _, r := range rs {
		fmt.Fprintln(tw, strings.Join(resultColumns(r), "\t"))
		lines++
	}
	return lines, tw.Flush()
}

// resultColumns are a result's NAME, PHONE, UID, MATCH, ADDRESS, STATUS,
// VIA and TERMINAL columns.
func resultColumns(r client.Result) []string {
	addr := dash(r.Address)
	if r.Private {
		addr = "(private)"
	}
	verified := ""
	if !r.Verified {
		verified = " (unverified)"
	}
	return []string{dash(r.Identifiers.Name), dash(r.Identifiers.Phone), dash(r.Identifiers.UID), r.Match.String(), addr,
		r.Status.String(), fmt.Sprintf("%s %.0fms", r.Via, r.ElapsedMS), pickOf(r) + verified}
}

// pickOf is how a person names one result exactly (irmv call --terminal).
func pickOf(r client.Result) string {
	return r.Terminal + "@" + r.Node
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
