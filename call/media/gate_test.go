package media

import (
	"sync"
	"testing"
	"time"

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

// TestFamilyGateHold: a controlling Peer's gate with a routable IPv6
// candidate keeps IPv4 out both ways, past the head start, until release
// (ICE connected); an IPv4 candidate of the remote before any routable
// IPv6 one releases at once.
func TestFamilyGateHold(t *testing.T) {
	host4 := webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 10.0.0.2 5000 typ host"}
	host6 := webrtc.ICECandidateInit{Candidate: "candidate:2 1 udp 2130706431 fd99::2 5002 typ host"}
	remote4 := webrtc.ICECandidateInit{Candidate: "candidate:3 1 udp 2130706175 10.0.0.3 6000 typ host"}
	remote6 := webrtc.ICECandidateInit{Candidate: "candidate:4 1 udp 2130706431 fd99::3 6002 typ host"}
	type rec struct {
		mu           sync.Mutex
		sent, handed []string
	}
	newGate := func(r *rec) *familyGate {
		g := &familyGate{
			emit: func(c webrtc.ICECandidateInit) {
				r.mu.Lock()
				r.sent = append(r.sent, c.Candidate)
				r.mu.Unlock()
			},
			addRemote: func(c webrtc.ICECandidateInit) {
				r.mu.Lock()
				r.handed = append(r.handed, c.Candidate)
				r.mu.Unlock()
			},
		}
		g.holdForIPv6()
		return g
	}
	count := func(r *rec) (int, int) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.sent), len(r.handed)
	}

	t.Run("both dual-stack", func(t *testing.T) {
		r := &rec{}
		g := newGate(r)
		defer g.stop()
		g.add(host4)
		g.add(host6)
		g.done()
		if !g.remote(remote6) {
			t.Error("remote IPv6 candidate held")
		}
		if g.remote(remote4) {
			t.Error("remote IPv4 candidate passed while IPv6 may connect")
		}
		time.Sleep(3 * ipv6HeadStart) // the head start alone opens nothing
		if s, h := count(r); s != 1 || h != 0 {
			t.Fatalf("before release: sent %q, handed %q; want only the IPv6 one sent", r.sent, r.handed)
		}
		g.release(-1)
		if s, h := count(r); s != 2 || h != 1 || r.sent[1] != host4.Candidate || r.handed[0] != remote4.Candidate {
			t.Fatalf("after release: sent %q, handed %q", r.sent, r.handed)
		}
		if !g.remote(remote4) {
			t.Error("remote IPv4 candidate held after release")
		}
	})
	t.Run("IPv4-only remote", func(t *testing.T) {
		r := &rec{}
		g := newGate(r)
		defer g.stop()
		g.add(host4)
		g.add(host6)
		if !g.remote(remote4) {
			t.Error("IPv4 candidate of an IPv4-only remote held")
		}
		if s, _ := count(r); s != 2 {
			t.Fatalf("sent %q, want both families", r.sent)
		}
	})
}
