package node_test

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// TestNodeInfoWhileStarting: GET /v1/node answers from the moment the
// API listens, while the node still starts (its HTTPS listener, its
// bootstrapper). The bootstrapper was made only after the API served, and
// a request in between dereferenced nil (the server's recover turned it
// into a dropped connection).
func TestNodeInfoWhileStarting(t *testing.T) {
	for round := range 5 {
		o := nodetest.Options(t)
		o.API = freeLoopbackPort(t)
		o.HTTPS = "127.0.0.1:0" // more to do after the API listens
		var (
			stop   atomic.Bool
			served atomic.Int64
			failed atomic.Int64
			wg     sync.WaitGroup
			last   atomic.Value
		)
		cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for range 8 {
			wg.Go(func() {
				for !stop.Load() {
					up := served.Load() > 0 // before this request began
					resp, err := cl.Get("http://" + o.API + "/v1/node")
					if err != nil {
						if up {
							failed.Add(1) // the API was up: no excuse
							last.Store(err.Error())
						}
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						served.Add(1)
					} else {
						failed.Add(1)
						last.Store(resp.Status)
					}
				}
			})
		}
		n, err := node.New(o)
		stop.Store(true)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		n.Close()
		if failed.Load() > 0 {
			t.Fatalf("round %d: %d requests failed while the node started (%d answered), the last: %v", round, failed.Load(), served.Load(), last.Load())
		}
	}
}
