//go:build !irmv_node_only

package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/irmv/irmv/sim"
)

func simCommand() *cli.Command {
	return &cli.Command{
		Name:  "sim",
		Usage: "simulate a network of irmv nodes in memory and measure lookups, flooding and churn",
		Description: `Runs N irmv nodes in this process on go-libp2p's mocknet (no sockets),
each composed like a real node (kad-dht, terminal register, publisher,
flooding, search), registers terminals, floods, kills a share of the nodes
and looks terminals up. --nodes takes a list (100,300,1000) for a size sweep;
--plot draws latency, hops, messages and memory against size (log x);
--with adds the results of earlier runs (their --json output) to the plot;
with --nodes none it runs nothing and only plots them.
--compare runs each named variant of the DHT options on the same network
(same size and seed) and prints them side by side: a variant is "today"
(the flags as given) or key=value pairs joined by "+", keys bucket, alpha,
beta, trim, kad-streams, wait-identify, evict, refresh, republish, heal,
kad-provide (these eight 0/1), provide-timeout-ms, ap-percent
(--access-points in percent); e.g. --compare wait-identify=1,today,bucket=40,alpha=20+beta=5.
Lookups after churn run right after it unless --evict-after-churn,
--refresh-after-churn or --republish-after-churn let the live nodes first
do what a running network does within minutes.
The 1,000-node runs want GOMEMLIMIT (e.g. GOMEMLIMIT=6GiB).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "nodes", Usage: "network size, or a comma-separated list for a sweep (none: only plot --with)", Value: "100", EnvVars: []string{"IRMV_SIM_NODES"}},
			&cli.IntFlag{Name: "terminals-per-node", Usage: "terminals each node registers and publishes", Value: sim.DefaultTerminalsPerNode, EnvVars: []string{"IRMV_SIM_TERMINALS"}},
			&cli.DurationFlag{Name: "latency", Usage: "one-way latency of every link", Value: sim.DefaultLatency, EnvVars: []string{"IRMV_SIM_LATENCY"}},
			&cli.IntFlag{Name: "lookups", Usage: "exact lookups (half before, half after churn)", Value: sim.DefaultLookups, EnvVars: []string{"IRMV_SIM_LOOKUPS"}},
			&cli.Float64Flag{Name: "churn", Usage: "share of nodes killed abruptly mid-run (0..0.9)", EnvVars: []string{"IRMV_SIM_CHURN"}},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the random choices (topology, terminals, churn, lookups)", Value: 1, EnvVars: []string{"IRMV_SIM_SEED"}},
			&cli.IntFlag{Name: "degree", Usage: "random peers each node dials at start", Value: sim.DefaultDegree, EnvVars: []string{"IRMV_SIM_DEGREE"}},
			&cli.IntFlag{Name: "parallel", Usage: "lookups in flight at once", Value: sim.DefaultParallel, EnvVars: []string{"IRMV_SIM_PARALLEL"}},
			&cli.IntFlag{Name: "flood-samples", Usage: "flood queries measured (-1: skip flooding)", Value: sim.DefaultFloodSamples, EnvVars: []string{"IRMV_SIM_FLOOD_SAMPLES"}},
			&cli.DurationFlag{Name: "dead-dial", Usage: "how long a dial to a killed node takes to fail", Value: sim.DefaultDeadDial, EnvVars: []string{"IRMV_SIM_DEAD_DIAL"}},
			&cli.BoolFlag{Name: "trim", Usage: "after its routing-table refresh, each node drops connections to peers outside its table (as a connection manager would)", EnvVars: []string{"IRMV_SIM_TRIM"}},
			&cli.IntFlag{Name: "alpha", Usage: "DHT lookup concurrency (0: kad-dht default, 10)", EnvVars: []string{"IRMV_SIM_ALPHA"}},
			&cli.IntFlag{Name: "beta", Usage: "DHT lookup resiliency (0: kad-dht default, 3)", EnvVars: []string{"IRMV_SIM_BETA"}},
			&cli.IntFlag{Name: "bucket-size", Usage: "DHT k: bucket size and provider-record replication (0: kad-dht default, 20)", EnvVars: []string{"IRMV_SIM_BUCKET_SIZE"}},
			&cli.Float64Flag{Name: "private", Usage: "share of nodes behind NAT (0..0.9): DHT clients reached through a relay (twice the link latency on connections they did not dial)", EnvVars: []string{"IRMV_SIM_PRIVATE"}},
			&cli.Float64Flag{Name: "access-points", Usage: "share of nodes with the access-point profile's DHT k, 20, whatever --bucket-size says (0..0.9); lookups are reported by class", EnvVars: []string{"IRMV_SIM_ACCESS_POINTS"}},
			&cli.BoolFlag{Name: "kad-streams", Usage: "keep kad-dht's own message sender (a stream held open per peer asked: about 3 goroutines each) instead of a stream per DHT message", EnvVars: []string{"IRMV_SIM_KAD_STREAMS"}},
			&cli.BoolFlag{Name: "wait-identify", Usage: "on a new connection, send DHT messages and the lookup request only after identify (go-libp2p's host.NewStream, irmv before issue 22) instead of at once", EnvVars: []string{"IRMV_SIM_WAIT_IDENTIFY"}},
			&cli.BoolFlag{Name: "evict-after-churn", Usage: "after churn, each live node dials its routing-table peers and drops those that fail (kad-dht's refresh does so for peers not queried for ~43 min)", EnvVars: []string{"IRMV_SIM_EVICT_AFTER_CHURN"}},
			&cli.BoolFlag{Name: "refresh-after-churn", Usage: "after churn, each live node runs kad-dht's routing-table refresh (every 10 min in a node) before the lookups", EnvVars: []string{"IRMV_SIM_REFRESH_AFTER_CHURN"}},
			&cli.BoolFlag{Name: "republish-after-churn", Usage: "after churn, each live node announces its identifiers again (every 10 min in a node) before the lookups", EnvVars: []string{"IRMV_SIM_REPUBLISH_AFTER_CHURN"}},
			&cli.BoolFlag{Name: "kad-provide", Usage: "publish with kad-dht's own Provide (success even when no peer took the record) instead of the node's", EnvVars: []string{"IRMV_SIM_KAD_PROVIDE"}},
			&cli.DurationFlag{Name: "provide-timeout", Usage: "bound of each announcement of the publishers (0: the node's, 30s); a short one starves them", EnvVars: []string{"IRMV_SIM_PROVIDE_TIMEOUT"}},
			&cli.StringSliceFlag{Name: "compare", Usage: "variants of the DHT options to run side by side (today, or key=value+key=value; keys " + simVariantKeys + ")", EnvVars: []string{"IRMV_SIM_COMPARE"}},
			&cli.StringFlag{Name: "plot", Usage: "draw latency, hops, messages and memory against size into this PNG", EnvVars: []string{"IRMV_SIM_PLOT"}},
			&cli.StringSliceFlag{Name: "with", Usage: "files of earlier results (--json output) to add to the plot", EnvVars: []string{"IRMV_SIM_WITH"}},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the whole command to this file", EnvVars: []string{"IRMV_SIM_CPUPROFILE"}},
			&cli.StringFlag{Name: "memprofile", Usage: "write a heap profile of the last size, taken after its lookups, to this file", EnvVars: []string{"IRMV_SIM_MEMPROFILE"}},
			jsonFlag,
		},
		Action: runSim,
	}
}

func runSim(c *cli.Context) error {
	var sizes []int
	for _, s := range strings.Split(c.String("nodes"), ",") {
		if s == "none" && len(c.StringSlice("with")) > 0 {
			break // only plot earlier results
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 3 {
			return cli.Exit(fmt.Sprintf("--nodes: %q is not a size of at least 3", s), exitError)
		}
		sizes = append(sizes, n)
	}
	base := sim.Config{
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
		BucketSize:       c.Int("bucket-size"),
		Private:          c.Float64("private"),
		AccessPoints:     c.Float64("access-points"),
		KadStreams:       c.Bool("kad-streams"),
		WaitIdentify:     c.Bool("wait-identify"),
		Trim:             c.Bool("trim"),
		Evict:            c.Bool("evict-after-churn"),
		Refresh:          c.Bool("refresh-after-churn"),
		Republish:        c.Bool("republish-after-churn"),
		KadProvide:       c.Bool("kad-provide"),
		ProvideTimeout:   c.Duration("provide-timeout"),
	}
	variants := []sim.Config{base}
	if specs := c.StringSlice("compare"); len(specs) > 0 {
		variants = variants[:0]
		for _, spec := range specs {
			v, err := simVariant(base, spec)
			if err != nil {
				return cli.Exit("--compare: "+err.Error(), exitError)
			}
			variants = append(variants, v)
		}
	}
	if f := c.String("cpuprofile"); f != "" {
		pf, err := os.Create(f)
		if err != nil {
			return cli.Exit("--cpuprofile: "+err.Error(), exitError)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return cli.Exit("--cpuprofile: "+err.Error(), exitError)
		}
		defer pprof.StopCPUProfile()
	}
	var earlier []*sim.Result
	for _, f := range c.StringSlice("with") {
		rs, err := readSimResults(f)
		if err != nil {
			return cli.Exit("--with: "+err.Error(), exitError)
		}
		earlier = append(earlier, rs...)
	}
	var results []*sim.Result
	for k, n := range sizes {
		for vi, v := range variants {
			cfg := v
			cfg.Nodes = n
			label := fmt.Sprintf("%d nodes", n)
			if cfg.Variant != "" {
				label += " " + cfg.Variant
			}
			bar := &progressBar{w: c.App.ErrWriter, label: label}
			if f, ok := c.App.ErrWriter.(*os.File); !ok || !isTerminal(f) {
				bar.plain = true
			}
			cfg.Progress = bar.update
			if f := c.String("memprofile"); f != "" && k == len(sizes)-1 && vi == len(variants)-1 {
				cfg.Live = func() { writeHeapProfile(c.App.ErrWriter, f) }
			}
			res, err := sim.Run(c.Context, cfg)
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
	}
	if len(variants) > 1 && !c.Bool("json") {
		printComparison(c.App.Writer, results)
	}
	if f := c.String("plot"); f != "" {
		// With variants, the plot follows the first one.
		var plotted []*sim.Result
		for _, r := range results {
			if r.Variant == variants[0].Variant {
				plotted = append(plotted, r)
			}
		}
		plotted = append(earlier, plotted...)
		slices.SortStableFunc(plotted, func(a, b *sim.Result) int { return a.Nodes - b.Nodes })
		if err := sim.Plot(plotted, f); err != nil {
			return cli.Exit("plot: "+err.Error(), exitError)
		}
	}
	return nil
}

const simVariantKeys = "bucket, alpha, beta, trim, kad-streams, wait-identify, evict, refresh, republish, heal, kad-provide, provide-timeout-ms, ap-percent"

// simVariant applies a --compare variant to the base configuration.
func simVariant(base sim.Config, spec string) (sim.Config, error) {
	v := base
	v.Variant = strings.TrimSpace(spec)
	if v.Variant == "today" {
		return v, nil
	}
	for _, kv := range strings.Split(v.Variant, "+") {
		key, val, ok := strings.Cut(kv, "=")
		n, err := strconv.Atoi(val)
		if !ok || err != nil || n < 0 {
			return v, fmt.Errorf("%q: want key=number (%s)", kv, simVariantKeys)
		}
		switch key {
		case "bucket":
			v.BucketSize = n
		case "alpha":
			v.Alpha = n
		case "beta":
			v.Beta = n
		case "trim":
			v.Trim = n != 0
		case "kad-streams":
			v.KadStreams = n != 0
		case "wait-identify":
			v.WaitIdentify = n != 0
		case "evict":
			v.Evict = n != 0
		case "refresh":
			v.Refresh = n != 0
		case "republish":
			v.Republish = n != 0
		case "heal":
			v.Heal = n != 0
		case "kad-provide":
			v.KadProvide = n != 0
		case "provide-timeout-ms":
			v.ProvideTimeout = time.Duration(n) * time.Millisecond
		case "ap-percent":
			v.AccessPoints = float64(n) / 100
		default:
			return v, fmt.Errorf("%q: unknown key %q (%s)", kv, key, simVariantKeys)
		}
	}
	return v, nil
}

// readSimResults reads the results an earlier `irmv sim --json` printed.
func readSimResults(file string) ([]*sim.Result, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*sim.Result
	dec := json.NewDecoder(f)
	for {
		var r sim.Result
		if err := dec.Decode(&r); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if r.Nodes < 3 {
			return nil, fmt.Errorf("%s: a result without nodes", file)
		}
		out = append(out, &r)
	}
}

// printComparison prints the variants' lookups side by side.
func printComparison(w io.Writer, rs []*sim.Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nnodes\tvariant\tfound\thops p50/p90\tround trips p50/p99\tcounted p50/p90/p99\tfirst step\tlatency p50/p99 ms\tDHT names host p50 ms\twarm asks\tmsgs per lookup\tsetup msgs per node\tafter churn: table/dead p50\theal msgs per node\tpeak RSS MB\tlive MB\tgoroutines")
	for _, r := range rs {
		fmt.Fprintf(tw, "%d\t%s\t%.1f%%\t%.0f/%.0f\t%.2f/%.2f\t%.1f/%.1f/%.1f\t%.0f%%\t%.1f/%.1f\t%.1f\t%.0f%%\t%.1f\t%.0f\t%.0f/%.0f\t%.0f\t%.0f\t%.0f\t%d\n",
			r.Nodes, r.Variant, 100*r.SuccessRate, r.HopsP50, r.HopsP90, r.RoundTripsP50, r.RoundTripsP99, r.CountedRTP50, r.CountedRTP90, r.CountedRTP99, 100*r.FirstStepShare,
			r.LatencyMSP50, r.LatencyMSP99, r.DHTMSP50, 100*r.WarmShare, r.MessagesPerLookup, r.SetupMessagesPerNode,
			r.RoutingTableAfterChurnP50, r.DeadInRoutingTableP50, r.HealMessagesPerNode, r.PeakRSSMB, r.LiveMB, r.Goroutines)
	}
	tw.Flush()
}

func printSim(w io.Writer, r *sim.Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "network\t%d nodes, %d terminals each, %.0f ms links, %d killed (churn %.0f%%), seed %d\n",
		r.Nodes, r.TerminalsPerNode, r.LatencyMS, r.Killed, 100*r.Churn, r.Seed)
	if b := r.BeforeChurn; b != nil {
		fmt.Fprintf(tw, "lookups before churn\t%d: %.1f%% found, hops p50 %.0f, latency p50 %.1f ms, p99 %.1f ms\n",
			b.Lookups, 100*b.SuccessRate, b.HopsP50, b.LatencyMSP50, b.LatencyMSP99)
		printMisses(tw, b.Misses, b.MissDetails)
	}
	fmt.Fprintf(tw, "exact lookups\t%d: %.1f%% found\n", r.Lookups, 100*r.SuccessRate)
	printMisses(tw, r.Misses, r.MissDetails)
	fmt.Fprintf(tw, "hops\tp50 %.0f, p90 %.0f, max %.0f (DHT depth + direct ask)\n", r.HopsP50, r.HopsP90, r.HopsMax)
	fmt.Fprintf(tw, "latency\tp50 %.1f ms, p90 %.1f ms, p99 %.1f ms (%.2f link round trips at p50, %.2f at p99; DHT names the host after %.1f ms at p50; %.0f%% asked a host already connected)\n",
		r.LatencyMSP50, r.LatencyMSP90, r.LatencyMSP99, r.RoundTripsP50, r.RoundTripsP99, r.DHTMSP50, 100*r.WarmShare)
	fmt.Fprintf(tw, "round trips counted\tp50 %.1f, p90 %.1f, p99 %.1f (requests on the lookup's path, plus identify on new connections with --wait-identify: not inflated by a busy CPU); first DHT step reached the record in %.0f%%\n",
		r.CountedRTP50, r.CountedRTP90, r.CountedRTP99, 100*r.FirstStepShare)
	for _, c := range slices.Sorted(maps.Keys(r.ByClass)) {
		p := r.ByClass[c]
		fmt.Fprintf(tw, "  %s\t%d: %.1f%% found, hops p50 %.0f, %.2f round trips p50, %.2f p99; counted %.1f p50, %.1f p99\n",
			c, p.Lookups, 100*p.SuccessRate, p.HopsP50, p.RoundTripsP50, p.RoundTripsP99, p.CountedRTP50, p.CountedRTP99)
	}
	if r.FloodFullMessages > 0 {
		fmt.Fprintf(tw, "flooding\t%.1f messages per dynamic query (%.0f%% found); found 2 hops away: %.1f messages (%d samples) = %.0f%% of a full TTL-7 flood (%.0f messages)\n",
			r.FloodMessagesPerQuery, 100*r.FloodFoundRate, r.FloodHop2Messages, r.FloodHop2Samples, 100*r.FloodHop2Ratio, r.FloodFullMessages)
		fmt.Fprintf(tw, "flood reach by TTL 1..7\t%s nodes (max handled per query %.0f, duplicates dropped %.0f)\n",
			joinFloats(r.FloodReachByTTL), r.FloodMaxHandledPerQ, r.FloodDuplicatesPerQ)
	}
	fmt.Fprintf(tw, "registration\tp50 %.2f ms, p99 %.2f ms\n", r.RegisterMSP50, r.RegisterMSP99)
	fmt.Fprintf(tw, "publishing\t%d identifiers, provide p50 %.0f ms, p99 %.0f ms, all stored in %.1f s\n",
		r.Identifiers, r.ProvideMSP50, r.ProvideMSP99, r.PublishS)
	fmt.Fprintf(tw, "announcements\t%s\n", countsText(r.ProvideOutcomes))
	fmt.Fprintf(tw, "records stored\tby %.0f of the publisher's k DHT servers closest to the key at p50, %.0f at p1, %.0f at least; on none of them: %d; on no node but the host: %d\n",
		r.ClosestHoldersP50, r.ClosestHoldersP1, r.ClosestHoldersMin, r.RecordsOffClosest, r.RecordsOnlyAtHost)
	fmt.Fprintf(tw, "network\tset-up %.1f s, routing table p50 %.0f, %.0f connections per node, %d links\n",
		r.SetupS, r.RoutingTableP50, r.ConnsPerNode, r.Links)
	if r.Killed > 0 {
		fmt.Fprintf(tw, "after churn\trouting table p50 %.0f, of it dead p50 %.0f", r.RoutingTableAfterChurnP50, r.DeadInRoutingTableP50)
		if r.Evict || r.Refresh || r.Republish || r.Heal {
			fmt.Fprintf(tw, " (after %s: %.1f s, %.0f messages and %.1f peers evicted per live node)", healing(r), r.HealS, r.HealMessagesPerNode, r.EvictedPerNode)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "messages\t%.0f streams per node to set up and publish, %.0f over the run; %.1f per lookup (all nodes)\n",
		r.SetupMessagesPerNode, r.MessagesPerNode, r.MessagesPerLookup)
	fmt.Fprintf(tw, "memory\tpeak RSS %.0f MB (%.2f MB per node), live heap and stacks %.0f MB (%.2f MB per node), %d goroutines (%.1f per node); wall %.0f s\n",
		r.PeakRSSMB, r.RSSPerNodeMB, r.LiveMB, r.LivePerNodeMB, r.Goroutines, r.GoroutinesPerNode, r.WallS)
	tw.Flush()
}

// healing names what the live nodes did after churn.
func healing(r *sim.Result) string {
	var s []string
	for _, x := range []struct {
		on   bool
		name string
	}{{r.Heal, "healing"}, {r.Evict, "evicting"}, {r.Refresh, "refreshing"}, {r.Republish, "republishing"}} {
		if x.on {
			s = append(s, x.name)
		}
	}
	return strings.Join(s, ", ")
}

func joinFloats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(s, ", ")
}

// progressBar draws one line on stderr, redrawn at most ten times a second;
// plain (stderr is no terminal: a log) it writes a line per phase instead.
type progressBar struct {
	w     io.Writer
	label string
	plain bool
	mu    sync.Mutex
	last  time.Time
	phase string
	drawn bool
}

func (b *progressBar) update(phase string, done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.plain {
		if phase != b.phase {
			b.phase = phase
			fmt.Fprintf(b.w, "%s: %s\n", b.label, phase)
		}
		return
	}
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

// writeHeapProfile writes the heap profile after a collection; a failure is
// reported and the run goes on.
func writeHeapProfile(errw io.Writer, file string) {
	f, err := os.Create(file)
	if err == nil {
		runtime.GC()
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if g, gerr := os.Create(file + ".goroutines"); gerr == nil {
		pprof.Lookup("goroutine").WriteTo(g, 1)
		g.Close()
	}
	if err != nil {
		fmt.Fprintln(errw, "memprofile:", err)
	}
}

// printMisses prints how many lookups missed for each reason, and whom
// the DHT query of each asked when it named no provider.
func printMisses(w io.Writer, m map[string]int, details []string) {
	for _, why := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(w, "  missed\t%d: %s\n", m[why], why)
	}
	for _, d := range details {
		fmt.Fprintf(w, "  a miss\t%s\n", d)
	}
}

// countsText lists counts by key, most first: "ok 1900, timed out 3".
func countsText(m map[string]int) string {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Or(m[b]-m[a], strings.Compare(a, b)) })
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(out, ", ")
}
