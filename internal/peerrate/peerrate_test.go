package peerrate

import (
	"testing"
	"time"

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

// The buckets refill at the rate, on the Limiters' clock.
func TestLimitersRefill(t *testing.T) {
	l := New(10, 2)
	now := time.Unix(1e9, 0)
	l.now = func() time.Time { return now }
	a := peer.ID("a")
	step := func(d time.Duration, want ...bool) {
		t.Helper()
		now = now.Add(d)
		for i, w := range want {
			if got := l.Allow(a); got != w {
				t.Fatalf("at +%v, request %d: %v, want %v", d, i, got, w)
			}
		}
	}
	step(0, true, true, false)       // the burst
	step(50*time.Millisecond, false) // half a token
	step(50*time.Millisecond, true, false)
	step(time.Hour, true, true, false) // never more than the burst
}
