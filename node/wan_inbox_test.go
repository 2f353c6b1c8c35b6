package node

import (
	"fmt"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// TestWANInboxBounded: the candidates waiting for the WAN loop are
// distinct, the latest last, and at most wanPending however many peers
// tell.
func TestWANInboxBounded(t *testing.T) {
	in := newWANInbox()
	addr := func(i int) ma.Multiaddr { return ma.StringCast(fmt.Sprintf("/ip4/198.51.100.%d/tcp/4001", i)) }
	for i := range 100 {
		in.candidate(addr(i))
	}
	in.candidate(addr(95)) // told again: moves to the end, not twice
	in.reachabilityChanged()
	select {
	case <-in.wake:
	default:
		t.Fatal("no wake-up")
	}
	cands, reach := in.take()
	if !reach || len(cands) != wanPending {
		t.Fatalf("took %d candidates (reach %v), want %d and the change", len(cands), reach, wanPending)
	}
	if !cands[len(cands)-1].Equal(addr(95)) || !cands[len(cands)-2].Equal(addr(99)) {
		t.Fatalf("candidates %v: want the latest last", cands)
	}
	if c, r := in.take(); c != nil || r {
		t.Fatalf("taken twice: %v %v", c, r)
	}
}

// TestWANTriedBounded: the addresses tried stay at most wanTried however
// fast peers tell new ones; the latest is kept.
func TestWANTriedBounded(t *testing.T) {
	st := &wanState{tried: map[string]time.Time{}}
	addr := func(i int) ma.Multiaddr {
		return ma.StringCast(fmt.Sprintf("/ip4/198.51.%d.%d/tcp/4001", i/250, i%250+1))
	}
	for i := range 1000 {
		st.note(addr(i), time.Hour)
	}
	if len(st.tried) > wanTried {
		t.Fatalf("%d addresses remembered, want at most %d", len(st.tried), wanTried)
	}
	if _, ok := st.tried[addr(999).String()]; !ok {
		t.Fatal("the latest address was forgotten")
	}
}
