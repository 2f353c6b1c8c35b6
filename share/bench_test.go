package share_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
)

// BenchmarkRegisterParallel registers from about 64 goroutines at once, as
// many terminals joining an access point do; they share fsyncs.
func BenchmarkRegisterParallel(b *testing.B) {
	e := newEnv(b)
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((64 + procs - 1) / procs)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, err := e.r.Register(client.Registration{
				Name:    fmt.Sprintf("Bench Terminal %d", i),
				UID:     fmt.Sprintf("bench-%d", i),
				Address: "192.0.2.1",
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reg/s")
}

var (
	firstNames = []string{"Jonas", "Jörg", "Anna", "Ana", "Mia", "Lukas", "Léa", "Zoë", "Mehmet", "Ayşe",
		"Johanna", "Joe", "Björn", "Søren", "Łukasz", "Chloé", "Noah", "Emma", "Paul", "Marie"}
	lastNames = []string{"Müller", "Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner",
		"Becker", "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz",
		"Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt"}
)

// BenchmarkMatch10k matches mixed queries against 10,000 hosted terminals.
func BenchmarkMatch10k(b *testing.B) {
	const n = 10000
	e := newEnv(b)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range work {
				_, err := e.r.Register(client.Registration{
					Name:  fmt.Sprintf("%s %s %d", firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)], i),
					Phone: fmt.Sprintf("+49 30 %07d", 2000000+i),
					UID:   fmt.Sprintf("uid-%d", i),
					IP:    fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255),
				})
				if err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if e.r.Count() != n {
		b.Fatalf("Count = %d", e.r.Count())
	}
	queries := []ident.ID{
		{Kind: ident.KindName, Value: "jo mu"},
		{Kind: ident.KindName, Value: "anna schmidt"},
		{Kind: ident.KindName, Value: "l"},
		{Kind: ident.KindName, Value: "zoe"},
		{Kind: ident.KindName, Value: "bjorn schr 1"},
		{Kind: ident.KindName, Value: "noah zimmermann 4321"},
		{Kind: ident.KindName, Value: "nobody"},
		{Kind: ident.KindPhone, Value: "+49302001234"},
		{Kind: ident.KindPhone, Value: "+49309999999"},
		{Kind: ident.KindUID, Value: "uid-777"},
		{Kind: ident.KindIP, Value: "10.0.3.7"},
	}
	for _, q := range queries {
		b.Logf("%s: %d hits (limit 20)", q, len(e.r.Match(q, 20)))
	}
	var hits atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i, h := 0, 0
		for pb.Next() {
			h += len(e.r.Match(queries[i%len(queries)], 20))
			i++
		}
		hits.Add(int64(h))
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
}

// BenchmarkRegisterSerial registers one terminal at a time: the latency of
// a lone registration (one commit each).
func BenchmarkRegisterSerial(b *testing.B) {
	e := newEnv(b)
	for i := 0; b.Loop(); i++ {
		if _, err := e.r.Register(client.Registration{Name: fmt.Sprintf("Serial %d", i), UID: fmt.Sprintf("s-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reg/s")
}
