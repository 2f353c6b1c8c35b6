package peerrate

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A bucket that never refills: each peer gets its burst, apart from the
// others, and Set starts every bucket afresh.
func TestLimiters(t *testing.T) {
	l := New(0, 2)
	a, b := peer.ID("a"), peer.ID("b")
	for i, want := range []bool{true, true, false} {
		if got := l.Allow(a); got != want {
			t.Fatalf("a, request %d: %v, want %v", i, got, want)
		}
	}
	if !l.Allow(b) {
		t.Fatal("b limited by a's requests")
	}
	l.Set(0, 1)
	if !l.Allow(a) || l.Allow(a) {
		t.Fatal("after Set(0, 1): want one request of a allowed, then none")
	}
}
