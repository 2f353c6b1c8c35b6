package media

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5/vnet"
	pionturn "github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/internal/testenv"
)

// A virtual internet (pion's vnet, in process: nothing reaches a real
// network): a TURN server on the WAN and two LANs, each behind a NAT whose
// mappings and filters depend on the remote address and port (symmetric).
const (
	vnetTURNIP   = "1.2.3.4"
	vnetTURNPort = 3478
	vnetNATA     = "27.1.1.1" // public address of LAN A
	vnetLANA     = "192.168.0.1"
	vnetNATB     = "28.1.1.1"
	vnetLANB     = "10.2.0.1"
	vnetUser     = "user"
	vnetPass     = "pass"
)

type symmetricNATs struct {
	a, b *vnet.Net
}

func newSymmetricNATs(t *testing.T) *symmetricNATs {
	t.Helper()
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "0.0.0.0/0", LoggerFactory: lf})
	if err != nil {
		t.Fatal(err)
	}
	wanNet, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{vnetTURNIP}})
	if err != nil {
		t.Fatal(err)
	}
	if err := wan.AddNet(wanNet); err != nil {
		t.Fatal(err)
	}
	symmetric := &vnet.NATType{
		Mode:              vnet.NATModeNormal,
		MappingBehavior:   vnet.EndpointAddrPortDependent,
		FilteringBehavior: vnet.EndpointAddrPortDependent,
	}
	lan := func(public, local string) *vnet.Net {
		r, err := vnet.NewRouter(&vnet.RouterConfig{
			StaticIPs:     []string{public},
			CIDR:          local + "/24",
			NATType:       symmetric,
			LoggerFactory: lf,
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{local}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.AddNet(n); err != nil {
			t.Fatal(err)
		}
		if err := wan.AddRouter(r); err != nil {
			t.Fatal(err)
		}
		return n
	}
	s := &symmetricNATs{a: lan(vnetNATA, vnetLANA), b: lan(vnetNATB, vnetLANB)}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })

	conn, err := wanNet.ListenPacket("udp4", fmt.Sprintf("%s:%d", vnetTURNIP, vnetTURNPort))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pionturn.NewServer(pionturn.ServerConfig{
		Realm: "irmv",
		AuthHandler: func(ra *pionturn.RequestAttributes) (string, []byte, bool) {
			if ra.Username != vnetUser {
				return "", nil, false
			}
			return ra.Username, pionturn.GenerateAuthKey(ra.Username, ra.Realm, vnetPass), true
		},
		PacketConnConfigs: []pionturn.PacketConnConfig{{
			PacketConn: conn,
			RelayAddressGenerator: &pionturn.RelayAddressGeneratorStatic{
				RelayAddress: net.ParseIP(vnetTURNIP), Address: "0.0.0.0", Net: wanNet,
			},
		}},
		LoggerFactory: lf,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "srv", srv)
	return s
}

// vnetEngine puts a peer on n. The IP filter (any address but loopback)
// makes pion bind relays to the LAN address, which then appears as the
// relayed candidates' related address: the case relay-only must hide.
func vnetEngine(n *vnet.Net) *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetNet(n)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return !ip.IsLoopback() })
	return se
}

func vnetICEServers(turn bool) []signal.ICEServer {
	addr := fmt.Sprintf("%s:%d", vnetTURNIP, vnetTURNPort)
	s := []signal.ICEServer{{URLs: []string{"stun:" + addr}}}
	if turn {
		s = append(s, signal.ICEServer{
			URLs: []string{"turn:" + addr + "?transport=udp"}, Username: vnetUser, Credential: vnetPass,
		})
	}
	return s
}

// tapPair is a pair whose candidates are recorded as they pass.
type tapPair struct {
	*pair
	mu         sync.Mutex
	candidates map[string][]string // "caller"/"callee" → candidate attributes sent
}

func newTapPair(tb testing.TB, callerOpts, calleeOpts Options) *tapPair {
	tb.Helper()
	tp := &tapPair{candidates: map[string][]string{}}
	tp.pair = newPairTap(tb, callerOpts, calleeOpts, func(side, c string) {
		tp.mu.Lock()
		tp.candidates[side] = append(tp.candidates[side], c)
		tp.mu.Unlock()
	})
	return tp
}

func (tp *tapPair) sent(side string) []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]string(nil), tp.candidates[side]...)
}

// carriesAudio plays the fixture from the caller and waits for packets at
// the callee.
func carriesAudio(t *testing.T, p *pair, received *atomic.Int64) {
	t.Helper()
	played := make(chan error, 1)
	go func() { played <- p.caller.Play(bytes.NewReader(readFixture(t))) }()
	wait(t, p.callee.FirstPacket(), "first audio packet")
	deadline := time.Now().Add(waitLong)
	for received.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := received.Load(); n < 10 {
		t.Errorf("callee received %d packets", n)
	}
	p.close(t)
	if err := <-played; err != nil && !errors.Is(err, ErrClosed) {
		t.Errorf("Play: %v", err)
	}
}

// TestSymmetricNATsNeedRelay: two terminals behind symmetric NATs cannot
// reach each other with host and server-reflexive candidates; with a TURN
// relay they can.
func TestSymmetricNATsNeedRelay(t *testing.T) {
	t.Run("no-turn", func(t *testing.T) {
		nats := newSymmetricNATs(t)
		seA, seB := vnetEngine(nats.a), vnetEngine(nats.b)
		for _, se := range []*webrtc.SettingEngine{seA, seB} {
			se.SetICETimeouts(time.Second, time.Second, 200*time.Millisecond) // fail soon
		}
		p := newTapPair(t,
			Options{SettingEngine: seA, ICEServers: vnetICEServers(false)},
			Options{SettingEngine: seB, ICEServers: vnetICEServers(false)})
		t.Cleanup(func() { p.close(t) })
		p.negotiate(t, nil, nil)
		select {
		case <-p.caller.Done():
		case <-p.caller.Connected():
			t.Fatalf("connected across symmetric NATs without a relay, route %q", p.caller.Route())
		case <-time.After(30 * time.Second):
			t.Fatal("neither connected nor failed")
		}
		select {
		case <-p.caller.Connected():
			t.Fatal("connected after failing")
		default:
		}
		// Both sides did gather server-reflexive candidates: it is the
		// NATs, not a lack of candidates, that keep them apart.
		for _, side := range []string{"caller", "callee"} {
			if !hasType(p.sent(side), "srflx") {
				t.Errorf("%s sent no srflx candidate: %q", side, p.sent(side))
			}
		}
	})

	t.Run("turn", func(t *testing.T) {
		nats := newSymmetricNATs(t)
		var received atomic.Int64
		p := newTapPair(t,
			Options{SettingEngine: vnetEngine(nats.a), ICEServers: vnetICEServers(true)},
			Options{
				SettingEngine: vnetEngine(nats.b), ICEServers: vnetICEServers(true),
				OnTrackPacket: func(*rtp.Packet) { received.Add(1) },
			})
		t.Cleanup(func() { p.close(t) })
		start := time.Now()
		p.negotiate(t, nil, nil)
		wait(t, p.caller.Connected(), "caller connected")
		wait(t, p.callee.Connected(), "callee connected")
		t.Logf("connected through the relay after %v", time.Since(start))
		for name, peer := range map[string]*Peer{"caller": p.caller, "callee": p.callee} {
			if r := peer.Route(); r != signal.RouteRelayed {
				t.Errorf("%s route %q, want relayed", name, r)
			}
		}
		carriesAudio(t, p.pair, &received)
	})
}

// TestRelayOnlyHidesAddresses: a relay-only (private) terminal behind a
// NAT sends only relayed candidates, and neither they nor its descriptions
// carry its LAN or public address; the call connects and carries audio.
func TestRelayOnlyHidesAddresses(t *testing.T) {
	for _, bc := range []struct {
		name         string
		callerRelay  bool
		privateSides []string
	}{
		{"private-callee", false, []string{"callee"}},
		{"both-private", true, []string{"caller", "callee"}},
	} {
		t.Run(bc.name, func(t *testing.T) {
			nats := newSymmetricNATs(t)
			var received atomic.Int64
			p := newTapPair(t,
				Options{SettingEngine: vnetEngine(nats.a), ICEServers: vnetICEServers(true), RelayOnly: bc.callerRelay},
				Options{
					SettingEngine: vnetEngine(nats.b), ICEServers: vnetICEServers(true), RelayOnly: true,
					OnTrackPacket: func(*rtp.Packet) { received.Add(1) },
				})
			t.Cleanup(func() { p.close(t) })

			hidden := map[string][]string{"caller": {vnetLANA, vnetNATA}, "callee": {vnetLANB, vnetNATB}}
			descs := map[string][]string{}
			offer, err := p.caller.Offer()
			if err != nil {
				t.Fatal(err)
			}
			answer, err := p.callee.Answer(offer, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.caller.Accept(answer, nil); err != nil {
				t.Fatal(err)
			}
			wait(t, p.caller.Connected(), "caller connected")
			wait(t, p.callee.Connected(), "callee connected")
			for name, peer := range map[string]*Peer{"caller": p.caller, "callee": p.callee} {
				if r := peer.Route(); r != signal.RouteRelayed {
					t.Errorf("%s route %q, want relayed", name, r)
				}
			}
			// An ICE restart's descriptions come after gathering, when pion
			// could put candidates into them.
			restart, err := p.caller.RestartICE()
			if err != nil {
				t.Fatal(err)
			}
			restartAnswer, err := p.callee.Answer(restart, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.caller.Accept(restartAnswer, nil); err != nil {
				t.Fatal(err)
			}
			descs["caller"] = []string{offer.SDP, restart.SDP}
			descs["callee"] = []string{answer.SDP, restartAnswer.SDP}

			carriesAudio(t, p.pair, &received)

			for _, side := range bc.privateSides {
				sent := p.sent(side)
				if len(sent) == 0 {
					t.Errorf("%s sent no candidates", side)
				}
				for _, c := range sent {
					if typ := typeOfCandidate(c); typ != "relay" {
						t.Errorf("%s sent a %s candidate: %s", side, typ, c)
					}
					for _, ip := range hidden[side] {
						if strings.Contains(c, ip) {
							t.Errorf("%s candidate carries %s: %s", side, ip, c)
						}
					}
				}
				for _, sdp := range descs[side] {
					for _, ip := range hidden[side] {
						if strings.Contains(sdp, ip) {
							t.Errorf("%s description carries %s:\n%s", side, ip, sdp)
						}
					}
					for line := range strings.Lines(sdp) {
						if strings.HasPrefix(line, "c=") && strings.TrimSpace(line) != "c=IN IP4 0.0.0.0" {
							t.Errorf("%s description: %q", side, line)
						}
						if strings.HasPrefix(line, "a=candidate:") && typeOfCandidate(line) != "relay" {
							t.Errorf("%s description has a %s candidate: %q", side, typeOfCandidate(line), line)
						}
					}
				}
			}
			if t.Failed() {
				t.Logf("caller sent %q", p.sent("caller"))
				t.Logf("callee sent %q", p.sent("callee"))
			}
		})
	}
}

// typeOfCandidate is the "typ" of a candidate attribute.
func typeOfCandidate(c string) string {
	f := strings.Fields(c)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "typ" {
			return f[i+1]
		}
	}
	return ""
}

func hasType(cs []string, typ string) bool {
	for _, c := range cs {
		if typeOfCandidate(c) == typ {
			return true
		}
	}
	return false
}
