package media

import (
	"sync"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestFamilyGate: IPv4 host candidates wait only while a routable IPv6
// one may come or has come; a server-reflexive candidate or the end of the
// gathering lets them go at once when there is none, in order.
func TestFamilyGate(t *testing.T) {
	host4 := "candidate:1 1 udp 2130706431 10.0.0.2 5000 typ host"
	host6 := "candidate:2 1 udp 2130706431 fd99::2 5002 typ host"
	ll6 := "candidate:3 1 udp 2130706431 fe80::1 5003 typ host"
	srflx4 := "candidate:4 1 udp 1694498815 198.51.100.7 5004 typ srflx raddr 10.0.0.2 rport 5000"
	cases := []struct {
		name string
		in   []string
		done bool
		want []string // emitted at once, in order (held ones may follow when a timer fires)
	}{
		{"IPv4 only: srflx opens", []string{host4, srflx4}, false, []string{host4, srflx4}},
		{"IPv4 only: end of gathering opens", []string{host4}, true, []string{host4}},
		{"link-local IPv6 holds IPv4 too", []string{host4, ll6, srflx4}, true, []string{ll6}},
		{"routable IPv6 holds IPv4", []string{host4, host6, srflx4}, true, []string{host6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			g := &familyGate{emit: func(c webrtc.ICECandidateInit) {
				mu.Lock()
				got = append(got, c.Candidate)
				mu.Unlock()
			}}
			defer g.stop()
			for _, c := range tc.in {
				g.add(webrtc.ICECandidateInit{Candidate: c})
			}
			if tc.done {
				g.done()
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) < len(tc.want) {
				t.Fatalf("emitted %q, want %q", got, tc.want)
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("emitted %q, want %q", got, tc.want)
				}
			}
		})
	}
}
