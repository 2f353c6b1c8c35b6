package call

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// TestCalleeShare: one remote node that invites a terminal as fast as it
// may takes only its share of the terminal's invites; another node's
// invite still reaches the terminal, and local callers too. Before, the
// first node's burst emptied the terminal's bucket for everyone.
func TestCalleeShare(t *testing.T) {
	s := &Switch{callees: map[string]*rate.Limiter{}, pairs: map[string]*rate.Limiter{}}
	flooder, other := peer.ID("flooder"), peer.ID("other")
	start := time.Now()
	refilled := func(r float64) int { return int(r*time.Since(start).Seconds()) + 1 } // buckets refill meanwhile
	got := 0
	for range inviteBurst { // within its own stream burst
		if s.allowCallee(flooder, "bob") {
			got++
		}
	}
	if want := calleeBurst / calleeShare; got > want+refilled(calleeRate/calleeShare) || got < want {
		t.Errorf("one node got %d invites to bob through at once, want its share %d", got, want)
	}
	if !s.allowCallee(other, "bob") {
		t.Error("another node's invite to bob refused after one node's flood")
	}
	if !s.allowCallee("", "bob") {
		t.Error("a local caller's invite to bob refused after one node's flood")
	}
	// Enough nodes together still meet the terminal's own bound.
	total := got + 2
	for i := range 4 * calleeShare {
		for range inviteBurst {
			if s.allowCallee(peer.ID(rune('a'+i)), "bob") {
				total++
			}
		}
	}
	if total > calleeBurst+refilled(calleeRate) {
		t.Errorf("%d invites reached bob at once from many nodes, want at most %d", total, calleeBurst)
	}
}
