package node

import (
	"net"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func TestAddrPolicyUsable(t *testing.T) {
	_, lan, _ := net.ParseCIDR("192.168.1.7/24")
	_, cgnat, _ := net.ParseCIDR("100.64.3.2/10")
	_, lo, _ := net.ParseCIDR("127.0.0.1/8")
	const relay = "/p2p/12D3KooWGzBXcDmUfG6aBMfhKRoPRDHWAzsWPvAbVjkvnKQbasGN"
	homeNode := []*net.IPNet{lo, lan}
	for _, tc := range []struct {
		addr       string
		onLoopback bool
		subnets    []*net.IPNet
		want       bool
	}{
		{"/ip4/1.2.3.4/tcp/4001", false, homeNode, true},
		{"/ip4/1.2.3.4/udp/4001/quic-v1", true, nil, true},
		{"/ip6/2a01:4f8::1/tcp/4001", false, nil, true},
		// Loopback: only between nodes on loopback.
		{"/ip4/127.0.0.1/tcp/4001", true, homeNode, true},
		{"/ip4/127.0.0.1/tcp/4001", false, homeNode, false},
		{"/ip6/::1/tcp/4001", false, homeNode, false},
		// Private: only inside one of our own subnets.
		{"/ip4/192.168.1.20/tcp/4001", false, homeNode, true},
		{"/ip4/192.168.2.20/tcp/4001", false, homeNode, false},
		{"/ip4/10.0.0.5/tcp/4001", false, homeNode, false},
		{"/ip4/192.168.1.20/tcp/4001", false, nil, false},
		{"/ip4/100.64.9.9/tcp/4001", false, []*net.IPNet{cgnat}, true},
		{"/ip4/100.64.9.9/tcp/4001", false, homeNode, false},
		// A loopback subnet does not make 127.x "private and shared".
		{"/ip4/127.0.0.2/tcp/4001", false, []*net.IPNet{lo}, false},
		// Never.
		{"/ip4/0.0.0.0/tcp/4001", true, homeNode, false},
		{"/ip4/169.254.1.1/tcp/4001", false, []*net.IPNet{mustCIDR("169.254.0.0/16")}, false},
		{"/ip6/fe80::1/tcp/4001", false, homeNode, false},
		{"/ip4/198.51.100.7/tcp/4001", false, homeNode, false},
		// Other ranges only on our own link (a lab's LAN).
		{"/ip4/198.51.100.7/tcp/4001", false, []*net.IPNet{mustCIDR("198.51.100.0/24")}, true},
		// Circuits follow their relay's address.
		{"/ip4/1.2.3.4/tcp/4001" + relay + "/p2p-circuit", false, nil, true},
		{"/ip4/127.0.0.1/tcp/4001" + relay + "/p2p-circuit", true, nil, true},
		{"/ip4/127.0.0.1/tcp/4001" + relay + "/p2p-circuit", false, homeNode, false},
		{"/ip4/192.168.9.9/tcp/4001" + relay + "/p2p-circuit", false, homeNode, false},
		// A relay named by its ID alone: dialable through a known relay.
		{relay + "/p2p-circuit", false, homeNode, true},
		// No IP: the resolver decides.
		{"/dns4/node.example.org/tcp/4001", false, nil, true},
	} {
		a := ma.StringCast(tc.addr)
		if got := usable(a, tc.onLoopback, tc.subnets); got != tc.want {
			t.Errorf("usable(%s, loopback=%v, %v) = %v, want %v", tc.addr, tc.onLoopback, tc.subnets, got, tc.want)
		}
	}
}

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestAddrPolicyAnnounce(t *testing.T) {
	const relay = "/p2p/12D3KooWGzBXcDmUfG6aBMfhKRoPRDHWAzsWPvAbVjkvnKQbasGN"
	all := []string{
		"/ip4/127.0.0.1/tcp/4001",
		"/ip4/192.168.1.7/tcp/4001",
		"/ip4/1.2.3.4/tcp/4001",
		"/ip6/fe80::1/tcp/4001",
		"/ip4/0.0.0.0/tcp/4001",
		"/ip4/1.2.3.4/tcp/4001" + relay + "/p2p-circuit",
	}
	for _, tc := range []struct {
		onLoopback bool
		want       []string
	}{
		{false, []string{all[1], all[2], all[5]}},
		{true, []string{all[0], all[1], all[2], all[5]}},
	} {
		var in []ma.Multiaddr
		for _, s := range all {
			in = append(in, ma.StringCast(s))
		}
		var got []string
		for _, a := range announce(in, tc.onLoopback) {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("announce(loopback=%v) = %v, want %v", tc.onLoopback, got, tc.want)
		}
	}
}

// TestAddrPolicyAnnounceTo: a peer on loopback gets every address, a peer
// on one of our subnets all but loopback, any other only public and relay
// addresses (or the placeholder when there are none).
func TestAddrPolicyAnnounceTo(t *testing.T) {
	const relay = "/p2p/12D3KooWGzBXcDmUfG6aBMfhKRoPRDHWAzsWPvAbVjkvnKQbasGN"
	p := &addrPolicy{subnets: []*net.IPNet{mustCIDR("127.0.0.0/8"), mustCIDR("192.168.1.0/24")}, at: time.Now().Add(time.Hour)}
	lo, lan, pub := "/ip4/127.0.0.1/tcp/4001", "/ip4/192.168.1.7/tcp/4001", "/ip4/1.2.3.4/tcp/4001"
	circ := "/ip4/5.6.7.8/tcp/4001" + relay + "/p2p-circuit"
	cgnat := "/ip4/100.64.0.9/tcp/4001"
	for _, tc := range []struct {
		name        string
		own, remote []string
		want        []string
	}{
		{"peer on loopback", []string{lo, lan, pub, circ}, []string{"/ip4/127.0.0.1/tcp/5000"}, []string{lo, lan, pub, circ}},
		{"peer on our LAN", []string{lo, lan, pub, circ}, []string{"/ip4/192.168.1.20/tcp/5000"}, []string{lan, pub, circ}},
		{"peer on the Internet", []string{lo, lan, cgnat, pub, circ}, []string{"/ip4/9.9.9.9/tcp/4001"}, []string{pub, circ}},
		{"peer in another home's 192.168.2.0/24", []string{lan, circ}, []string{"/ip4/192.168.2.5/tcp/4001"}, []string{circ}},
		{"peer on the Internet, node has only private addresses", []string{lo, lan, cgnat}, []string{"/ip4/9.9.9.9/tcp/4001"}, []string{"/p2p-circuit"}},
		{"peer on the Internet and on our LAN", []string{lan, pub}, []string{"/ip4/9.9.9.9/tcp/4001", "/ip4/192.168.1.20/tcp/4001"}, []string{lan, pub}},
		{"peer reached over a relay", []string{lan, circ}, []string{"/ip4/5.6.7.8/tcp/4001" + relay + "/p2p-circuit"}, []string{circ}},
		{"unknown peer", []string{lan, pub}, nil, []string{pub}},
	} {
		var own, remote []ma.Multiaddr
		for _, s := range tc.own {
			own = append(own, ma.StringCast(s))
		}
		for _, s := range tc.remote {
			remote = append(remote, ma.StringCast(s))
		}
		var got []string
		for _, a := range p.AnnounceTo(own, remote) {
			got = append(got, a.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: AnnounceTo = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		listen []string
		want   bool
	}{
		{[]string{"/ip4/127.0.0.1/tcp/1", "/ip6/::1/udp/2/quic-v1"}, true},
		{[]string{"/ip4/127.0.0.1/tcp/1", "/ip4/10.99.0.1/tcp/1"}, false},
		{[]string{"/ip4/0.0.0.0/tcp/1"}, false},
		{[]string{"/p2p-circuit"}, true},
		{nil, true},
	} {
		var l []ma.Multiaddr
		for _, s := range tc.listen {
			l = append(l, ma.StringCast(s))
		}
		if got := loopbackOnly(l); got != tc.want {
			t.Errorf("loopbackOnly(%v) = %v, want %v", tc.listen, got, tc.want)
		}
	}
}

// TestAddrPolicyDHTServer: kad-dht does not use relayed connections, so a
// peer reachable only through a relay is no DHT server to us.
func TestAddrPolicyDHTServer(t *testing.T) {
	const relay = "/p2p/12D3KooWGzBXcDmUfG6aBMfhKRoPRDHWAzsWPvAbVjkvnKQbasGN"
	p := &addrPolicy{listen: func() []ma.Multiaddr { return []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")} }}
	// Fixed subnets, not this machine's: its LAN may be 192.0.2.0/24.
	p.subnets, p.at = []*net.IPNet{mustCIDR("127.0.0.0/8")}, time.Now().Add(time.Hour)
	for _, tc := range []struct {
		addrs []string
		want  bool
	}{
		{[]string{"/ip4/1.2.3.4/tcp/4001"}, true},
		{[]string{"/ip4/127.0.0.1/tcp/4002"}, true},
		{[]string{"/ip4/1.2.3.4/tcp/4001" + relay + "/p2p-circuit"}, false},
		{[]string{"/ip4/1.2.3.4/tcp/4001" + relay + "/p2p-circuit", "/ip4/192.0.2.1/tcp/4001"}, false},
		{nil, false},
	} {
		var ai peer.AddrInfo
		for _, s := range tc.addrs {
			ai.Addrs = append(ai.Addrs, ma.StringCast(s))
		}
		if got := p.DHTServer(ai); got != tc.want {
			t.Errorf("DHTServer(%v) = %v, want %v", tc.addrs, got, tc.want)
		}
	}
}

// TestAddrPolicyAnnounceWAN: a confirmed public address is announced; once
// withdrawn, neither it nor libp2p's observed addresses at its IP and
// port are, while other ports, other IPs and relay circuits stay.
func TestAddrPolicyAnnounceWAN(t *testing.T) {
	const relay = "/p2p/12D3KooWGzBXcDmUfG6aBMfhKRoPRDHWAzsWPvAbVjkvnKQbasGN"
	p := &addrPolicy{listen: func() []ma.Multiaddr { return []ma.Multiaddr{ma.StringCast("/ip4/10.4.0.2/tcp/4001")} }}
	wan := ma.StringCast("/ip4/11.0.0.104/tcp/4001")
	host := []ma.Multiaddr{
		ma.StringCast("/ip4/10.4.0.2/tcp/4001"),
		ma.StringCast("/ip4/11.0.0.104/tcp/4001"),         // observed (libp2p)
		ma.StringCast("/ip4/11.0.0.104/udp/4001/quic-v1"), // observed (libp2p)
		ma.StringCast("/ip4/11.0.0.104/tcp/5000"),         // another forward
		ma.StringCast("/ip4/11.0.0.10/tcp/4001" + relay + "/p2p-circuit"),
	}
	strs := func(as []ma.Multiaddr) []string {
		out := make([]string, len(as))
		for i, a := range as {
			out[i] = a.String()
		}
		return out
	}
	p.wan.Store(&wan)
	if got := strs(p.Announce(host[:1])); !slices.Equal(got, []string{"/ip4/10.4.0.2/tcp/4001", wan.String()}) {
		t.Errorf("confirmed: Announce = %v, want the LAN and the public address", got)
	}
	p.wan.Store(nil)
	p.lost.Store(&wan)
	want := []string{"/ip4/10.4.0.2/tcp/4001", "/ip4/11.0.0.104/tcp/5000", "/ip4/11.0.0.10/tcp/4001" + relay + "/p2p-circuit"}
	if got := strs(p.Announce(host)); !slices.Equal(got, want) {
		t.Errorf("withdrawn: Announce = %v, want %v", got, want)
	}
}
