package node_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/irmv/irmv/node/nodetest"
)

// BenchmarkAPIRegister measures acknowledged registrations per second
// through the terminal API from 64 concurrent HTTP clients. Every
// acknowledgement is durable (fsynced) before it is sent.
func BenchmarkAPIRegister(b *testing.B) {
	n := nodetest.Start(b, nodetest.Options(b))
	url := n.APIURL() + "/v1/terminals"
	tr := &http.Transport{MaxIdleConnsPerHost: 128}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	var seq atomic.Int64
	b.SetParallelism(32) // 2 cores × 32 = 64 clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			body := fmt.Sprintf(`{"name":"Bench Terminal %d","uid":"bench-%d","address":"10.99.0.%d"}`, i, i, i%250+1)
			resp, err := cl.Post(url, "application/json", bytes.NewBufferString(body))
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reg/s")
}
