package sim

import (
	"bufio"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Result summarises one run; its JSON form is `irmv sim --json`.
type Result struct {
	Nodes            int     `json:"nodes"`
	TerminalsPerNode int     `json:"terminals_per_node"`
	LatencyMS        float64 `json:"link_latency_ms"`
	Churn            float64 `json:"churn"`
	Killed           int     `json:"killed"`
	Seed             uint64  `json:"seed"`
	Degree           int     `json:"degree"`
	Alpha            int     `json:"alpha,omitempty"`
	Beta             int     `json:"beta,omitempty"`
	Trim             bool    `json:"trim,omitempty"`
	BucketSize       int     `json:"bucket_size,omitempty"`
	Private          float64 `json:"private_share,omitempty"`
	AccessPoints     float64 `json:"access_point_share,omitempty"`
	KadStreams       bool    `json:"kad_streams,omitempty"`
	WaitIdentify     bool    `json:"wait_identify,omitempty"`
	Variant          string  `json:"variant,omitempty"`
	Evict            bool    `json:"evict_after_churn,omitempty"`
	Refresh          bool    `json:"refresh_after_churn,omitempty"`
	Republish        bool    `json:"republish_after_churn,omitempty"`
	Heal             bool    `json:"heal,omitempty"`
	KadProvide       bool    `json:"kad_provide,omitempty"`
	ProvideTimeoutMS float64 `json:"provide_timeout_ms,omitempty"`

	// Exact lookups of terminals on live nodes (after churn when there is
	// churn; before it otherwise).
	Lookups       int     `json:"lookups"`
	SuccessRate   float64 `json:"success_rate"`
	HopsP50       float64 `json:"hops_p50"` // DHT depth + 1 for asking the hosting node
	HopsP90       float64 `json:"hops_p90"`
	HopsMax       float64 `json:"hops_max"`
	LatencyMSP50  float64 `json:"latency_ms_p50"`
	LatencyMSP90  float64 `json:"latency_ms_p90"`
	LatencyMSP99  float64 `json:"latency_ms_p99"`
	RoundTripsP50 float64 `json:"round_trips_p50"` // latency / (2 × link latency)
	RoundTripsP99 float64 `json:"round_trips_p99"`
	// CountedRTP50 and P99 are the round trips counted on each lookup's
	// path (requests, plus identify on new connections) instead of timed:
	// the same figure when the machine has CPU to spare, and still right
	// when it has not.
	CountedRTP50 float64 `json:"counted_round_trips_p50"`
	CountedRTP90 float64 `json:"counted_round_trips_p90"`
	CountedRTP99 float64 `json:"counted_round_trips_p99"`
	// FirstStepShare: see Phase.FirstStep.
	FirstStepShare float64 `json:"first_step_share"`
	// WarmShare is the share of found lookups whose asker was connected
	// to the hosting node already (no identify before asking it).
	WarmShare float64 `json:"warm_share"`
	// ByClass splits the lookups by the asker's and the host's class
	// ("public->private": a public node looks up a terminal on a private
	// node), when some nodes are private; "ap->server": an access point
	// (k = 20) looks up a terminal on a server, when some are access points.
	ByClass map[string]*Phase `json:"by_class,omitempty"`
	// DHTMSP50 is the time until the DHT named the hosting node; the rest
	// of a lookup is asking that node.
	DHTMSP50 float64 `json:"dht_ms_p50"`
	// Misses counts the lookups that did not find the terminal, by
	// reason (the DHT named no provider, or asking the host failed and how).
	Misses      map[string]int `json:"misses,omitempty"`
	MissDetails []string       `json:"miss_details,omitempty"`
	// The same before churn, when there is churn.
	BeforeChurn *Phase `json:"before_churn,omitempty"`

	// After churn, with Evict, Refresh or Republish: how long the nodes
	// took and the messages they sent (per live node) and the
	// routing-table peers each dropped for a failed dial; with churn, the
	// live nodes' routing tables before the lookups after it (size, and
	// dead peers still in them).
	HealS                     float64 `json:"heal_s,omitempty"`
	HealMessagesPerNode       float64 `json:"heal_messages_per_node,omitempty"`
	EvictedPerNode            float64 `json:"evicted_per_node,omitempty"`
	RoutingTableAfterChurnP50 float64 `json:"routing_table_after_churn_p50,omitempty"`
	DeadInRoutingTableP50     float64 `json:"dead_in_routing_table_p50,omitempty"`

	// Flooding (measured before churn).
	FloodMessagesPerQuery float64   `json:"flood_messages_per_query"`    // dynamic querying, mean
	FloodFoundRate        float64   `json:"flood_found_rate"`            // dynamic queries that found the terminal
	FloodHop2Messages     float64   `json:"flood_hop2_messages"`         // mean, terminals found 2 hops away
	FloodHop2Samples      int       `json:"flood_hop2_samples"`          //
	FloodFullMessages     float64   `json:"flood_full_ttl7_messages"`    // one full TTL-7 flood, mean
	FloodHop2Ratio        float64   `json:"flood_hop2_vs_full_ratio"`    // FloodHop2Messages / FloodFullMessages
	FloodReachByTTL       []float64 `json:"flood_reach_by_ttl"`          // nodes that handled a flood of TTL 1..7
	FloodMessagesByTTL    []float64 `json:"flood_messages_by_ttl"`       // messages of a flood of TTL 1..7
	FloodMaxHandledPerQ   float64   `json:"flood_max_handled_per_query"` // most handlings of one query by all nodes (≤ live nodes - 1)
	FloodDuplicatesPerQ   float64   `json:"flood_duplicates_per_query"`  // duplicate copies dropped, per full flood

	// Cost.
	RegisterMSP50 float64 `json:"register_ms_p50"`
	RegisterMSP99 float64 `json:"register_ms_p99"`
	Identifiers   int     `json:"identifiers_published"`
	ProvideMSP50  float64 `json:"provide_ms_p50"`
	ProvideMSP99  float64 `json:"provide_ms_p99"`
	PublishS      float64 `json:"publish_s"` // registration until every record is stored
	// ProvideOutcomes counts the publishers' announcements (Provide
	// calls, retries included) by outcome.
	ProvideOutcomes map[string]int `json:"provide_outcomes,omitempty"`
	// Where the terminals' records are stored once published (before
	// churn): of the k DHT servers closest to a key, its host left out, how many
	// store it (p50, p1, min); records none of them stores; records no
	// node but their host stores.
	ClosestHoldersP50 float64 `json:"closest_holders_p50"`
	ClosestHoldersP1  float64 `json:"closest_holders_p1"`
	ClosestHoldersMin float64 `json:"closest_holders_min"`
	RecordsOffClosest int     `json:"records_off_closest"`
	RecordsOnlyAtHost int     `json:"records_only_at_host"`
	SetupS            float64 `json:"setup_s"`
	RoutingTableP50   float64 `json:"routing_table_p50"`
	ConnsPerNode      float64 `json:"conns_per_node"`
	Links             int     `json:"links"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`
	HeapMB            float64 `json:"heap_mb"`
	Goroutines        int     `json:"goroutines"`
	WallS             float64 `json:"wall_s"`

	// Per node: streams opened (each one message of the DHT, a lookup or
	// flooding) while setting up and publishing, and over the whole run;
	// streams per lookup by all nodes; memory and goroutines.
	SetupMessagesPerNode float64 `json:"setup_messages_per_node"`
	MessagesPerNode      float64 `json:"messages_per_node"`
	MessagesPerLookup    float64 `json:"messages_per_lookup"`
	RSSPerNodeMB         float64 `json:"peak_rss_per_node_mb"`
	// LiveMB is the heap allocated after a collection plus goroutine stacks,
	// taken at the end while every node runs: what the network needs,
	// whatever the collector's pacing (GOGC, GOMEMLIMIT) adds on top.
	LiveMB            float64 `json:"live_mb"`
	LivePerNodeMB     float64 `json:"live_per_node_mb"`
	HeapPerNodeMB     float64 `json:"heap_per_node_mb"`
	GoroutinesPerNode float64 `json:"goroutines_per_node"`
}

func (r *Result) perNode() {
	n := float64(r.Nodes)
	r.RSSPerNodeMB, r.HeapPerNodeMB, r.GoroutinesPerNode = r.PeakRSSMB/n, r.HeapMB/n, float64(r.Goroutines)/n
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	r.LiveMB = float64(m.HeapAlloc+m.StackInuse) / (1 << 20)
	r.LivePerNodeMB = r.LiveMB / n
}

// Phase is the lookup figures of one phase of a run.
type Phase struct {
	Lookups       int     `json:"lookups"`
	SuccessRate   float64 `json:"success_rate"`
	HopsP50       float64 `json:"hops_p50"`
	LatencyMSP50  float64 `json:"latency_ms_p50"`
	LatencyMSP99  float64 `json:"latency_ms_p99"`
	RoundTripsP50 float64 `json:"round_trips_p50,omitempty"`
	RoundTripsP99 float64 `json:"round_trips_p99,omitempty"`
	CountedRTP50  float64 `json:"counted_round_trips_p50,omitempty"`
	CountedRTP99  float64 `json:"counted_round_trips_p99,omitempty"`
	// FirstStep is the share of found lookups whose first DHT step (the
	// asker's own routing-table peers) reached a node storing the record:
	// 2 round trips, or 1 when the asker stores it itself.
	FirstStep float64        `json:"first_step_share,omitempty"`
	Misses    map[string]int `json:"misses,omitempty"`
	// MissDetails lists, for each lookup the DHT named no provider
	// for, whom its query asked (see lookupTrace.asked).
	MissDetails []string `json:"miss_details,omitempty"`
	dhtMS       []float64
	counted     []float64
	warm        int
}

func phaseOf(ls []lookup) (p Phase, lat, hops []float64) {
	p.dhtMS = nil
	p.Lookups = len(ls)
	found := 0
	for _, l := range ls {
		if !l.found {
			if p.Misses == nil {
				p.Misses = map[string]int{}
			}
			p.Misses[l.miss]++
			if l.detail != "" {
				p.MissDetails = append(p.MissDetails, l.detail)
			}
			continue
		}
		found++
		if l.warm {
			p.warm++
		}
		if l.counted >= 0 {
			p.counted = append(p.counted, l.counted)
		}
		lat = append(lat, l.ms)
		if l.dhtMS > 0 {
			p.dhtMS = append(p.dhtMS, l.dhtMS)
		}
		if l.dhtHops >= 0 {
			hops = append(hops, float64(l.dhtHops+1))
		}
		if l.dhtHops >= 0 && l.dhtHops <= 1 {
			p.FirstStep++
		}
	}
	if len(ls) > 0 {
		p.SuccessRate = float64(found) / float64(len(ls))
	}
	if found > 0 {
		p.FirstStep /= float64(found)
	}
	p.HopsP50 = percentile(hops, 50)
	p.CountedRTP50, p.CountedRTP99 = percentile(p.counted, 50), percentile(p.counted, 99)
	p.LatencyMSP50 = percentile(lat, 50)
	p.LatencyMSP99 = percentile(lat, 99)
	return p, lat, hops
}

func (r *Result) summarise(before, after []lookup) {
	main := before
	if len(after) > 0 {
		main = after
		b, _, _ := phaseOf(before)
		r.BeforeChurn = &b
		r.roundTrips(&b)
	}
	p, lat, hops := phaseOf(main)
	if r.Private > 0 || r.AccessPoints > 0 {
		r.ByClass = map[string]*Phase{}
		byClass := map[string][]lookup{}
		for _, l := range main {
			byClass[l.class] = append(byClass[l.class], l)
		}
		for c, ls := range byClass {
			cp, _, _ := phaseOf(ls)
			r.roundTrips(&cp)
			r.ByClass[c] = &cp
		}
	}
	if len(lat) > 0 {
		r.WarmShare = float64(p.warm) / float64(len(lat))
	}
	r.Lookups, r.SuccessRate, r.HopsP50 = p.Lookups, p.SuccessRate, p.HopsP50
	r.Misses, r.MissDetails, r.FirstStepShare = p.Misses, p.MissDetails, p.FirstStep
	r.HopsP90 = percentile(hops, 90)
	r.HopsMax = percentile(hops, 100)
	r.LatencyMSP50, r.LatencyMSP90, r.LatencyMSP99 = p.LatencyMSP50, percentile(lat, 90), p.LatencyMSP99
	r.DHTMSP50 = percentile(p.dhtMS, 50)
	r.roundTrips(&p)
	r.RoundTripsP50, r.RoundTripsP99 = p.RoundTripsP50, p.RoundTripsP99
	r.CountedRTP50, r.CountedRTP90, r.CountedRTP99 = p.CountedRTP50, percentile(p.counted, 90), p.CountedRTP99
}

func (r *Result) roundTrips(p *Phase) {
	if r.LatencyMS > 0 {
		p.RoundTripsP50 = p.LatencyMSP50 / (2 * r.LatencyMS)
		p.RoundTripsP99 = p.LatencyMSP99 / (2 * r.LatencyMS)
	}
}

// percentile is the nearest-rank percentile of xs (0 for none).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// memory reports the process's peak RSS (VmHWM), heap in use and goroutines.
func memory() (peakMB, heapMB float64, goroutines int) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	heapMB = float64(m.HeapInuse) / (1 << 20)
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				peakMB = kb / 1024
			}
		}
	}
	return peakMB, heapMB, runtime.NumGoroutine()
}
