package sim

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

// TestSmallNetwork runs 30 nodes with churn and checks that lookups work,
// flooding reaches nodes at most once each, and the figures are filled in.
func TestSmallNetwork(t *testing.T) {
	if testing.Short() {
		t.Skip("sim: -short")
	}
	// Generous: at load 36 on 2 cores the run took 124 s (90 s at load
	// 20); under -race beside other runs, 478 s.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// One dynamic flood sample (three queries, not up to twelve): what
	// is asserted of flooding comes from the full floods per TTL;
	// BenchmarkSim60 and irmv sim measure dynamic querying.
	res, err := Run(ctx, Config{Nodes: 30, Lookups: 40, Churn: 0.2, Seed: 7, FloodSamples: 1, Private: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	t.Logf("%s", b)
	if res.Killed != 6 {
		t.Errorf("killed %d nodes, want 6", res.Killed)
	}
	if res.SuccessRate < 0.9 {
		t.Errorf("success rate %.2f after churn, want ≥ 0.9", res.SuccessRate)
	}
	if res.BeforeChurn == nil || res.BeforeChurn.SuccessRate < 0.9 {
		t.Errorf("before churn: %+v, want ≥ 0.9 found", res.BeforeChurn)
	}
	if res.HopsP50 < 1 || res.LatencyMSP50 <= 0 {
		t.Errorf("hops p50 %v, latency p50 %v: want both positive", res.HopsP50, res.LatencyMSP50)
	}
	if res.FloodMaxHandledPerQ > 29 {
		t.Errorf("a flood was handled %v times by 29 other nodes: some node handled it twice", res.FloodMaxHandledPerQ)
	}
	if len(res.FloodReachByTTL) != 7 || res.FloodReachByTTL[6] < res.FloodReachByTTL[0] {
		t.Errorf("reach by TTL %v", res.FloodReachByTTL)
	}
	// Private nodes (DHT clients behind a relay) look up and are found.
	for _, c := range []string{"public->public", "public->private", "private->public"} {
		if p := res.ByClass[c]; p == nil || p.Lookups == 0 || p.SuccessRate < 0.9 {
			t.Errorf("lookups %s: %+v, want some, ≥ 0.9 found", c, p)
		}
	}
	if res.MessagesPerLookup <= 0 || res.SetupMessagesPerNode <= 0 || res.GoroutinesPerNode <= 0 {
		t.Errorf("messages per lookup %v, set-up messages per node %v, goroutines per node %v: want all positive",
			res.MessagesPerLookup, res.SetupMessagesPerNode, res.GoroutinesPerNode)
	}
	if res.Identifiers != 30*DefaultTerminalsPerNode {
		t.Errorf("published %d identifiers, want %d", res.Identifiers, 30*DefaultTerminalsPerNode)
	}
	// Publishing is the node's (internal/dhtprovide): each announcement
	// counted done stored the record on a node other than its host.
	if res.ProvideOutcomes["ok"] != res.Identifiers || res.RecordsOnlyAtHost != 0 || res.ClosestHoldersMin < 1 {
		t.Errorf("announcements %v; records on no node but the host %d; fewest of the closest nodes storing a record %v: want %d ok, 0, ≥ 1",
			res.ProvideOutcomes, res.RecordsOnlyAtHost, res.ClosestHoldersMin, res.Identifiers)
	}
	png := filepath.Join(t.TempDir(), "sim.png")
	if err := Plot([]*Result{res, res}, png); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRejects(t *testing.T) {
	for _, c := range []Config{{Nodes: 2}, {Nodes: 10, Churn: 0.95}, {Nodes: 10, Churn: -1}, {Nodes: 10, Private: 0.95}, {Nodes: 10, BucketSize: -1}} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v) succeeded", c)
		}
	}
}

// BenchmarkSim60 runs a 60-node network with 30% churn once per
// iteration; run it with -benchtime 1x. The figures are custom metrics;
// `irmv sim` measures larger networks.
func BenchmarkSim60(b *testing.B) {
	for b.Loop() {
		res, err := Run(context.Background(), Config{Nodes: 60, Lookups: 60, Churn: 0.3, Seed: 1, FloodSamples: 5})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.SuccessRate, "success")
		b.ReportMetric(res.HopsP50, "hops_p50")
		b.ReportMetric(res.LatencyMSP50, "ms_p50")
		b.ReportMetric(res.LatencyMSP99, "ms_p99")
		b.ReportMetric(res.RoundTripsP50, "rtt_p50")
		b.ReportMetric(res.FloodMessagesPerQuery, "flood_msgs/q")
		b.ReportMetric(res.RoundTripsP99, "rtt_p99")
		b.ReportMetric(res.MessagesPerLookup, "msgs/lookup")
		b.ReportMetric(res.PeakRSSMB, "peak_rss_MB")
		b.ReportMetric(float64(res.Goroutines)/float64(res.Nodes), "goroutines/node")
	}
}

// TestHealAfterChurn: with eviction and a refresh after the churn, or with
// internal/rtheal on every node, the live nodes' routing tables hold no
// dead node before the lookups after it; without, they do.
func TestHealAfterChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("sim: -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := Config{Nodes: 24, Lookups: 20, Churn: 0.3, Seed: 3, FloodSamples: -1, DeadDial: 50 * time.Millisecond}
	plain, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Evict, cfg.Refresh, cfg.Republish = true, true, true
	healed, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if plain.DeadInRoutingTableP50 == 0 {
		t.Errorf("without healing: dead peers in routing tables p50 %v, want some", plain.DeadInRoutingTableP50)
	}
	if healed.DeadInRoutingTableP50 != 0 || healed.EvictedPerNode == 0 || healed.HealMessagesPerNode == 0 {
		t.Errorf("healed: dead p50 %v, evicted per node %v, messages per node %v; want 0, >0, >0",
			healed.DeadInRoutingTableP50, healed.EvictedPerNode, healed.HealMessagesPerNode)
	}
	if healed.SuccessRate < 0.9 {
		t.Errorf("healed: %.2f found after churn, want ≥ 0.9", healed.SuccessRate)
	}
	// internal/rtheal on every node: dead peers dropped on disconnect.
	cfg.Evict, cfg.Refresh, cfg.Republish, cfg.Heal = false, false, false, true
	rt, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rt.DeadInRoutingTableP50 != 0 || rt.EvictedPerNode == 0 {
		t.Errorf("rtheal: dead p50 %v, dropped per node %v; want 0, >0", rt.DeadInRoutingTableP50, rt.EvictedPerNode)
	}
}

// TestAccessPoints: in a network mixing servers (k = 40) and access
// points (k = 20), each class finds the other's terminals, and lookups
// are reported by class.
func TestAccessPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("sim: -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Nodes: 24, Lookups: 40, Seed: 3, FloodSamples: -1, BucketSize: 40, AccessPoints: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"server->ap", "ap->server", "ap->ap"} {
		if p := res.ByClass[c]; p == nil || p.Lookups == 0 || p.SuccessRate < 0.9 {
			t.Errorf("lookups %s: %+v, want some, ≥ 0.9 found", c, p)
		}
	}
	if res.RecordsOnlyAtHost != 0 {
		t.Errorf("%d records on no node but their host", res.RecordsOnlyAtHost)
	}
}
