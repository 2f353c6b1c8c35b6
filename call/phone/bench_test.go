package phone

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
)

// benchPair is a caller on node 0 and an auto-answering callee on node 1.
func benchPair(b *testing.B) (caller, callee *Phone, evB *events, find0 func() client.Result) {
	nodes := startNodes(b, 2)
	evB = newEvents()
	callee = startPhone(b, nodes[1], Options{
		Registration: client.Registration{Name: "Bench Callee", Phone: "+49 30 777"},
		Answer:       AnswerAuto,
		OnEvent:      evB.add,
	})
	caller = startPhone(b, nodes[0], Options{Registration: client.Registration{UID: "bench-caller"}})
	c0 := apiClient(b, nodes[0])
	find(b, c0, "030 777", callee.Ack().Terminal) // published and found once
	find0 = func() client.Result {
		var res client.Result
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := c0.Search(ctx, client.Query{Text: "030 777"}, func(r client.Result) error {
			if r.Terminal == callee.Ack().Terminal && r.Status.Callable() {
				res = r
				return errStop
			}
			return nil
		})
		if res.Terminal == "" {
			b.Fatalf("search: not found (%v)", err)
		}
		return res
	}
	return caller, callee, evB, find0
}

var errStop = errors.New("stop")

// benchCalls runs b.N calls; lookup, if not nil, runs before each and is
// part of the setup time.
func benchCalls(b *testing.B, lookup bool) {
	caller, callee, evB, find0 := benchPair(b)
	res := find0()
	ctx := context.Background()
	var setup, returned time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if lookup {
			res = find0()
		}
		c, err := caller.Call(ctx, res, CallOptions{Play: fixture})
		if err != nil {
			b.Fatalf("Call: %v", err)
		}
		returned += time.Since(t0)
		e := evB.wait(b, client.EventConnected, c.ID())
		if lookup {
			setup += e.Time.Sub(t0)
		} else {
			setup += e.Time.Sub(c.start) // invite sent → first packet at the callee
		}
		b.StopTimer()
		c.Hangup()
		evB.wait(b, client.EventEnded, c.ID())
		waitIdle(b, callee)
		// Stay under the node's per-terminal message rate (50/s): a call
		// is about five messages each way.
		time.Sleep(100 * time.Millisecond)
		b.StartTimer()
	}
	b.ReportMetric(float64(setup)/float64(b.N)/float64(time.Millisecond), "setup-ms")
	b.ReportMetric(float64(returned)/float64(b.N)/float64(time.Millisecond), "call-return-ms")
}

// BenchmarkCallSetup: two nodes on loopback, auto-answer; from the invite
// sent to the first audio packet at the callee (lookup excluded).
func BenchmarkCallSetup(b *testing.B) { benchCalls(b, false) }

// BenchmarkCallSetupWithLookup adds the search through the caller's node.
func BenchmarkCallSetupWithLookup(b *testing.B) { benchCalls(b, true) }
