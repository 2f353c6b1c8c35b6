package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// TestWANVotes: a confirmed public address is withdrawn only when
// checkers in two distinct networks failed to dial it back with no
// success in between; one network, however many failures, checkers whose
// network is not known, and answers that prove nothing never withdraw it.
func TestWANVotes(t *testing.T) {
	const (
		pub  = network.ReachabilityPublic
		priv = network.ReachabilityPrivate
		unk  = network.ReachabilityUnknown
	)
	type vote struct {
		r    network.Reachability
		from string
	}
	a, b, c := "v4:11.0.0.0/16", "v4:11.1.0.0/16", "v6:2001:db8::/32"
	for _, tc := range []struct {
		name  string
		votes []vote
		at    int // the vote (1-based) that withdraws; 0: none
	}{
		{"two networks", []vote{{priv, a}, {priv, b}}, 2},
		{"IPv4 and IPv6 networks", []vote{{priv, a}, {priv, c}}, 2},
		{"one network, many times", []vote{{priv, a}, {priv, a}, {priv, a}, {priv, a}, {priv, a}}, 0},
		{"one network, then another", []vote{{priv, a}, {priv, a}, {priv, a}, {priv, b}}, 4},
		{"a success in between", []vote{{priv, a}, {pub, a}, {priv, b}}, 0},
		{"one network failing between successes", []vote{{priv, a}, {priv, a}, {pub, b}, {priv, a}, {pub, c}, {priv, a}}, 0},
		{"a success resets all", []vote{{priv, a}, {pub, c}, {priv, b}, {priv, b}, {priv, a}}, 5},
		{"nothing proven in between", []vote{{priv, a}, {unk, ""}, {unk, b}, {priv, b}}, 4},
		{"network not known", []vote{{priv, ""}, {priv, ""}, {priv, a}, {priv, ""}}, 0},
		{"only successes", []vote{{pub, a}, {pub, b}, {pub, ""}}, 0},
		{"unknown answers", []vote{{unk, a}, {unk, b}, {network.Reachability(99), c}}, 0},
		{"after a withdrawal, afresh", []vote{{priv, a}, {priv, b}, {priv, a}, {priv, a}, {priv, b}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v wanVotes
			got := 0
			for i, vt := range tc.votes {
				if v.add(vt.r, vt.from) {
					if got == 0 {
						got = i + 1
					}
					v = wanVotes{} // as withdrawWAN does
				}
				if len(v.failed) > wanMisses {
					t.Fatalf("vote %d: %d networks kept", i+1, len(v.failed))
				}
			}
			if got != tc.at {
				t.Fatalf("withdrawn at vote %d, want %d (0: never)", got, tc.at)
			}
		})
	}
}

// TestCheckerNet: checkers are grouped by the /16 of their IPv4 address
// and the /32 of their IPv6 address, as this node's connection shows it;
// a relayed connection counts as the relay's network; anything else has
// none.
func TestCheckerNet(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"/ip4/11.0.0.10/tcp/4001", "v4:11.0.0.0/16"},
		{"/ip4/11.0.200.7/udp/4001/quic-v1", "v4:11.0.0.0/16"},
		{"/ip4/11.1.0.20/tcp/4001", "v4:11.1.0.0/16"},
		{"/ip4/127.1.0.1/tcp/1234", "v4:127.1.0.0/16"},
		{"/ip4/11.0.0.10/tcp/4001/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/p2p-circuit", "v4:11.0.0.0/16"},
		{"/ip6/2001:db8:1::1/tcp/4001", "v6:2001:db8::/32"},
		{"/ip6/2001:db8:ffff:1::2/tcp/4001", "v6:2001:db8::/32"},
		{"/ip6/2001:db9::1/tcp/4001", "v6:2001:db9::/32"},
		{"/ip6/::ffff:11.0.3.4/tcp/4001", "v4:11.0.0.0/16"},
		{"/dns4/example.com/tcp/4001", ""},
		{"/p2p-circuit", ""},
	} {
		if got := checkerNet(ma.StringCast(tc.addr)); got != tc.want {
			t.Errorf("checkerNet(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := checkerNet(nil); got != "" {
		t.Errorf("checkerNet(nil) = %q", got)
	}
}
