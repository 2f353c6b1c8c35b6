//go:build !irmv_node_only

package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/irmv/irmv/sim"
	"github.com/urfave/cli/v2"
)

func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "simulate a network of irmv nodes in memory and measure lookups, flooding and churn",
		Description: `Runs N irmv nodes in this process on go-libp2p's mocknet (no sockets),
each composed like a real node (kad-dht, terminal register, publisher,
flooding, search), registers terminals, floods, kills a share of the nodes
and looks terminals up. --nodes takes a list (100,300,1000) for a size sweep;
--plot draws latency and hops against size.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "nodes", Usage: "network size, or a comma-separated list for a sweep", Value: "100", EnvVars: []string{"IRMV_SIM_NODES"}},
			&cli.IntFlag{Name: "terminals-per-node", Value: sim.DefaultTerminalsPerNode, EnvVars: []string{"IRMV_SIM_TERMINALS"}},
			&cli.DurationFlag{Name: "latency", Usage: "one-way latency of every link", Value: sim.DefaultLatency, EnvVars: []string{"IRMV_SIM_LATENCY"}},
			&cli.IntFlag{Name: "lookups", Usage: "exact lookups (half before, half after churn)", Value: sim.DefaultLookups, EnvVars: []string{"IRMV_SIM_LOOKUPS"}},
			&cli.Float64Flag{Name: "churn", Usage: "share of nodes killed abruptly mid-run (0..0.9)", EnvVars: []string{"IRMV_SIM_CHURN"}},
			&cli.Uint64Flag{Name: "seed", Value: 1, EnvVars: []string{"IRMV_SIM_SEED"}},
			&cli.IntFlag{Name: "degree", Usage: "random peers each node dials at start", Value: sim.DefaultDegree, EnvVars: []string{"IRMV_SIM_DEGREE"}},
			&cli.IntFlag{Name: "parallel", Usage: "lookups in flight at once", Value: sim.DefaultParallel, EnvVars: []string{"IRMV_SIM_PARALLEL"}},
			&cli.IntFlag{Name: "flood-samples", Usage: "flood queries measured (-1: skip flooding)", Value: sim.DefaultFloodSamples, EnvVars: []string{"IRMV_SIM_FLOOD_SAMPLES"}},
			&cli.DurationFlag{Name: "dead-dial", Usage: "how long a dial to a killed node takes to fail", Value: sim.DefaultDeadDial, EnvVars: []string{"IRMV_SIM_DEAD_DIAL"}},
			&cli.BoolFlag{Name: "trim", Usage: "after its routing-table refresh, each node drops connections to peers outside its table (as a connection manager would)", EnvVars: []string{"IRMV_SIM_TRIM"}},
			&cli.IntFlag{Name: "alpha", Usage: "DHT lookup concurrency (0: kad-dht default, 10)", EnvVars: []string{"IRMV_SIM_ALPHA"}},
			&cli.IntFlag{Name: "beta", Usage: "DHT lookup resiliency (0: kad-dht default, 3)", EnvVars: []string{"IRMV_SIM_BETA"}},
			&cli.StringFlag{Name: "plot", Usage: "draw latency and hops against size into this PNG", EnvVars: []string{"IRMV_SIM_PLOT"}},
			jsonFlag,
		},
		Action: runSim,
	}
}

func runSim(c *cli.Context) error {
	var sizes []int
	for _, s := range strings.Split(c.String("nodes"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 3 {
			return cli.Exit(fmt.Sprintf("--nodes: %q is not a size of at least 3", s), exitError)
		}
		sizes = append(sizes, n)
	}
	var results []*sim.Result
	for _, n := range sizes {
		bar := &progressBar{w: c.App.ErrWriter, label: fmt.Sprintf("%d nodes", n)}
		res, err := sim.Run(c.Context, sim.Config{
			Nodes:            n,
			TerminalsPerNode: c.Int("terminals-per-node"),
			Latency:          c.Duration("latency"),
			Lookups:          c.Int("lookups"),
			Churn:            c.Float64("churn"),
			Seed:             c.Uint64("seed"),
			Degree:           c.Int("degree"),
			Parallel:         c.Int("parallel"),
			FloodSamples:     c.Int("flood-samples"),
			DeadDial:         c.Duration("dead-dial"),
			Alpha:            c.Int("alpha"),
			Beta:             c.Int("beta"),
			Trim:             c.Bool("trim"),
			Progress:         bar.update,
		})
		bar.finish()
		if err != nil {
			return cli.Exit(fmt.Sprintf("sim with %d nodes: %v", n, err), exitError)
		}
		results = append(results, res)
		if c.Bool("json") {
			if err := printJSON(c.App.Writer, res); err != nil {
				return err
			}
		} else {
			printSim(c.App.Writer, res)
		}
	}
	if f := c.String("plot"); f != "" {
		if err := sim.Plot(results, f); err != nil {
			return cli.Exit("plot: "+err.Error(), exitError)
		}
	}
	return nil
}

func printSim(w io.Writer, r *sim.Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "network\t%d nodes, %d terminals each, %.0f ms links, %d killed (churn %.0f%%), seed %d\n",
		r.Nodes, r.TerminalsPerNode, r.LatencyMS, r.Killed, 100*r.Churn, r.Seed)
	if b := r.BeforeChurn; b != nil {
		fmt.Fprintf(tw, "lookups before churn\t%d: %.1f%% found, hops p50 %.0f, latency p50 %.1f ms, p99 %.1f ms\n",
			b.Lookups, 100*b.SuccessRate, b.HopsP50, b.LatencyMSP50, b.LatencyMSP99)
	}
	fmt.Fprintf(tw, "exact lookups\t%d: %.1f%% found\n", r.Lookups, 100*r.SuccessRate)
	fmt.Fprintf(tw, "hops\tp50 %.0f, p90 %.0f, max %.0f (DHT depth + direct ask)\n", r.HopsP50, r.HopsP90, r.HopsMax)
	fmt.Fprintf(tw, "latency\tp50 %.1f ms, p90 %.1f ms, p99 %.1f ms (%.1f link round trips at p50; DHT names the host after %.1f ms at p50)\n",
		r.LatencyMSP50, r.LatencyMSP90, r.LatencyMSP99, r.RoundTripsP50, r.DHTMSP50)
	if r.FloodFullMessages > 0 {
		fmt.Fprintf(tw, "flooding\t%.1f messages per dynamic query (%.0f%% found); found 2 hops away: %.1f messages (%d samples) = %.0f%% of a full TTL-7 flood (%.0f messages)\n",
			r.FloodMessagesPerQuery, 100*r.FloodFoundRate, r.FloodHop2Messages, r.FloodHop2Samples, 100*r.FloodHop2Ratio, r.FloodFullMessages)
		fmt.Fprintf(tw, "flood reach by TTL 1..7\t%s nodes (max handled per query %.0f, duplicates dropped %.0f)\n",
			joinFloats(r.FloodReachByTTL), r.FloodMaxHandledPerQ, r.FloodDuplicatesPerQ)
	}
	fmt.Fprintf(tw, "registration\tp50 %.2f ms, p99 %.2f ms\n", r.RegisterMSP50, r.RegisterMSP99)
	fmt.Fprintf(tw, "publishing\t%d identifiers, provide p50 %.0f ms, p99 %.0f ms, all stored in %.1f s\n",
		r.Identifiers, r.ProvideMSP50, r.ProvideMSP99, r.PublishS)
	fmt.Fprintf(tw, "network\tset-up %.1f s, routing table p50 %.0f, %.0f connections per node, %d links\n",
		r.SetupS, r.RoutingTableP50, r.ConnsPerNode, r.Links)
	fmt.Fprintf(tw, "memory\tpeak RSS %.0f MB, heap %.0f MB, %d goroutines; wall %.0f s\n", r.PeakRSSMB, r.HeapMB, r.Goroutines, r.WallS)
	tw.Flush()
}

func joinFloats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(s, ", ")
}

// progressBar draws one line on stderr, redrawn at most ten times a second.
type progressBar struct {
	w     io.Writer
	label string
	mu    sync.Mutex
	last  time.Time
	phase string
	drawn bool
}

func (b *progressBar) update(phase string, done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if phase == b.phase && done < total && time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.phase, b.last, b.drawn = phase, time.Now(), true
	const width = 30
	fill := 0
	if total > 0 {
		fill = width * done / total
	}
	fmt.Fprintf(b.w, "\r\033[K%s %-26s [%s%s] %d/%d", b.label, phase, strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, total)
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
