package phone

import (
	"testing"

	"github.com/irmv/irmv/call/signal"
)

// A welcome holds a borrowed relay when one of its TURN users is a
// foreign one (turn.ForeignPrefix): the callee's first leg then also
// gathers on the caller's side's relay.
func TestBorrowed(t *testing.T) {
	stun := signal.ICEServer{URLs: []string{"stun:10.1.0.2:3478"}}
	own := signal.ICEServer{URLs: []string{"turn:10.1.0.2:3478"}, Username: "1700000000:term-abc", Credential: "x"}
	lent := signal.ICEServer{URLs: []string{"turn:11.0.0.10:3478"}, Username: "1700000000:peer-12D3KooW", Credential: "x"}
	odd := signal.ICEServer{URLs: []string{"turn:11.0.0.10:3478"}, Username: "peer-12D3KooW", Credential: "x"}
	for _, tc := range []struct {
		name    string
		servers []signal.ICEServer
		want    bool
	}{
		{"none", nil, false},
		{"own relay", []signal.ICEServer{stun, own}, false},
		{"own and lent", []signal.ICEServer{stun, own, stun, lent}, true},
		{"no expiry part", []signal.ICEServer{odd}, false},
	} {
		if got := borrowed(tc.servers); got != tc.want {
			t.Errorf("%s: borrowed = %v, want %v", tc.name, got, tc.want)
		}
	}
}
