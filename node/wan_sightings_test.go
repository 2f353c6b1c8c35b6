package node

import (
	"fmt"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// TestWANSightings: an observed address becomes a candidate only once
// peers in two distinct networks report it as their latest sighting; one
// network, however many peers or sightings, never makes one, and a full
// table of networks still lets two honest ones agree.
func TestWANSightings(t *testing.T) {
	x := ma.StringCast("/ip4/11.0.0.104/tcp/4001")
	evil := ma.StringCast("/ip4/6.6.6.6/tcp/4001")
	a, b, c := "v4:11.0.0.0/16", "v4:11.1.0.0/16", "v6:2001:db8::/32"
	type sight struct {
		net  string
		cand ma.Multiaddr
	}
	for _, tc := range []struct {
		name   string
		sights []sight
		want   []bool // a candidate after each sighting
	}{
		{"two networks", []sight{{a, x}, {b, x}}, []bool{false, true}},
		{"IPv4 and IPv6 networks", []sight{{a, x}, {c, x}}, []bool{false, true}},
		{"one network, many times", []sight{{a, evil}, {a, evil}, {a, evil}, {a, evil}}, []bool{false, false, false, false}},
		{"network not known", []sight{{"", evil}, {"", evil}, {a, evil}}, []bool{false, false, false}},
		{"networks disagree", []sight{{a, x}, {b, evil}}, []bool{false, false}},
		{"a network changes its mind", []sight{{a, evil}, {a, x}, {b, evil}, {b, x}}, []bool{false, false, false, true}},
		{"only the latest counts", []sight{{a, evil}, {b, evil}, {a, x}, {c, x}}, []bool{false, true, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newWANSightings()
			for i, v := range tc.sights {
				if got := s.add(v.net, v.cand); got != tc.want[i] {
					t.Fatalf("sighting %d (%s sees %s): candidate %v, want %v", i+1, v.net, v.cand, got, tc.want[i])
				}
			}
		})
	}

	// A peer with addresses in many networks fills the table; the table
	// stays bounded, and two honest networks still agree afterwards.
	s := newWANSightings()
	for i := range 4 * wanNets {
		s.add(fmt.Sprintf("v4:%d.%d.0.0/16", 20+i/256, i%256), evil)
		if len(s.latest) > wanNets {
			t.Fatalf("%d networks remembered, want at most %d", len(s.latest), wanNets)
		}
	}
	if s.add(a, x); !s.add(b, x) {
		t.Fatal("two networks seeing the address after a flood: no candidate")
	}
}
