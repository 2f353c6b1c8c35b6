// Package leaktest fails a package's tests when they leave goroutines
// behind (go.uber.org/goleak), except the workers that libraries start
// once per process. Each package whose code starts goroutines has
//
//	func TestMain(m *testing.M) { leaktest.Main(m) }
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// ignored are goroutines libraries start once per process, not per
// object, so no Close can stop them.
var ignored = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
	goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"),
	goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
}

// Main runs the tests, then fails if goroutines other than the ignored
// ones are still running (goleak retries for a while, so goroutines that
// are on their way out do not count).
func Main(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, append(append([]goleak.Option(nil), ignored...), extra...)...)
}
