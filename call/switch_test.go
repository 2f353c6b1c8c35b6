package call_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/wire"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/call"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

// term is a bare terminal on a node's WebSocket.
type term struct {
	t    *testing.T
	n    *node.Node
	ack  client.Ack
	conn *websocket.Conn
	in   chan signal.Msg

	welcome signal.Msg // the first
}

func connect(t *testing.T, n *node.Node, uid string) *term {
	t.Helper()
	ack, err := n.Registry().Register(client.Registration{UID: uid, Address: "127.0.0.1", Keepalive: true})
	if err != nil {
		t.Fatal(err)
	}
	return helloAs(t, n, ack)
}

// helloAs opens a WebSocket for a registered terminal.
func helloAs(t *testing.T, n *node.Node, ack client.Ack) *term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+n.APIAddr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	if err := wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeHello, Terminal: ack.Terminal, Token: ack.Token}); err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, n: n, ack: ack, conn: conn, in: make(chan signal.Msg, 64)}
	// The reader ends with the test, also when nobody reads what it got.
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		conn.CloseNow()
		wg.Wait()
	})
	wg.Go(func() {
		defer close(tm.in)
		for {
			var m signal.Msg
			if err := wsjson.Read(context.Background(), conn, &m); err != nil {
				return
			}
			select {
			case tm.in <- m:
			case <-done:
				return
			}
		}
	})
	w := tm.next(signal.TypeWelcome)
	if w.Node != n.ID().String() || len(w.ICEServers) == 0 {
		t.Fatalf("welcome %+v", w)
	}
	tm.welcome = w
	return tm
}

func (tm *term) send(m signal.Msg) {
	tm.t.Helper()
	if err := wsjson.Write(context.Background(), tm.conn, m); err != nil {
		tm.t.Fatal(err)
	}
}

// next returns the next message, which must be of type typ.
func (tm *term) next(typ string) signal.Msg {
	tm.t.Helper()
	select {
	case m, ok := <-tm.in:
		if !ok {
			tm.t.Fatalf("%s: connection closed, want %s", tm.ack.Terminal, typ)
		}
		if m.Type != typ {
			tm.t.Fatalf("%s: got %+v, want %s", tm.ack.Terminal, m, typ)
		}
		return m
	case <-time.After(20 * time.Second):
		tm.t.Fatalf("%s: no %s", tm.ack.Terminal, typ)
	}
	return signal.Msg{}
}

func (tm *term) party() *signal.Party {
	return &signal.Party{Node: tm.n.ID().String(), Terminal: tm.ack.Terminal}
}

func newCallID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var offer = &signal.Description{Type: "offer", SDP: "v=0"}

func TestCallRelayedAcrossNodes(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	a, b := connect(t, nodes[0], "alice"), connect(t, nodes[1], "bob")
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer,
		From: &signal.Party{Node: "spoofed", Terminal: "someone-else"}})
	inv := b.next(signal.TypeInvite)
	// The nodes, not the caller, say who is calling.
	if inv.From.Node != nodes[0].ID().String() || inv.From.Terminal != a.ack.Terminal || inv.From.Identifiers.UID != "alice" {
		t.Fatalf("invite from %+v", inv.From)
	}
	b.send(signal.Msg{Type: signal.TypeRinging, Call: id})
	a.next(signal.TypeRinging)
	b.send(signal.Msg{Type: signal.TypeAccept, Call: id, Desc: &signal.Description{Type: "answer", SDP: "v=0"}})
	a.next(signal.TypeAccept)
	cand := signal.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host"}
	a.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Candidate: &cand})
	if got := b.next(signal.TypeCandidate); got.Candidate.Candidate != cand.Candidate {
		t.Fatalf("candidate %+v", got.Candidate)
	}
	// A renegotiation (ICE restart) travels both ways like a candidate.
	a.send(signal.Msg{Type: signal.TypeUpdate, Call: id, Desc: &signal.Description{Type: "offer", SDP: "v=0 restart"}, Reason: "loss"})
	if got := b.next(signal.TypeUpdate); got.Desc == nil || got.Desc.SDP != "v=0 restart" || got.Reason != "loss" {
		t.Fatalf("update %+v", got)
	}
	b.send(signal.Msg{Type: signal.TypeUpdate, Call: id, Desc: &signal.Description{Type: "answer", SDP: "v=0 answer"}})
	if got := a.next(signal.TypeUpdate); got.Desc == nil || got.Desc.Type != "answer" {
		t.Fatalf("update %+v", got)
	}
	// A second leg (make-before-break): leg and route travel unchanged.
	a.send(signal.Msg{Type: signal.TypeUpdate, Call: id, Leg: 1, Route: "relayed", Desc: &signal.Description{Type: "offer", SDP: "v=0 leg 1"}, Reason: "loss"})
	if got := b.next(signal.TypeUpdate); got.Leg != 1 || got.Route != "relayed" || got.Desc == nil || got.Desc.SDP != "v=0 leg 1" {
		t.Fatalf("update of a new leg %+v", got)
	}
	b.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Leg: 1, Candidate: &cand})
	if got := a.next(signal.TypeCandidate); got.Leg != 1 {
		t.Fatalf("candidate of leg 1 arrived as %+v", got)
	}
	b.send(signal.Msg{Type: signal.TypeHangup, Call: id, Reason: "bye"})
	if got := a.next(signal.TypeHangup); got.Reason != "bye" {
		t.Fatalf("hangup %+v", got)
	}
	nodetest.WaitFor(t, "calls cleared", func() bool {
		return nodes[0].Calls().Calls() == 0 && nodes[1].Calls().Calls() == 0
	})
}

// TestCandidatesRightAfterInvite: what a caller sends while its node still
// dials the callee's node (its first ICE candidates) is held and follows
// the invite, in order; nothing is lost or overtakes the invite. A hangup
// in that window cancels the dial instead: the callee never hears of it.
func TestCandidatesRightAfterInvite(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	a, b := connect(t, nodes[0], "alice"), connect(t, nodes[1], "bob")
	for round := range 5 {
		id := newCallID()
		a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
		var sent []string
		for i := range 6 {
			c := fmt.Sprintf("candidate:%d 1 udp 1 127.0.0.1 %d typ host", i, 5000+i)
			sent = append(sent, c)
			a.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Candidate: &signal.ICECandidate{Candidate: c}})
		}
		b.next(signal.TypeInvite)
		for i, want := range sent {
			if got := b.next(signal.TypeCandidate); got.Candidate == nil || got.Candidate.Candidate != want {
				t.Fatalf("round %d: candidate %d is %+v, want %q", round, i, got.Candidate, want)
			}
		}
		a.send(signal.Msg{Type: signal.TypeHangup, Call: id, Reason: "changed my mind"})
		if got := b.next(signal.TypeHangup); got.Reason != "changed my mind" {
			t.Fatalf("round %d: hangup %+v", round, got)
		}
	}
	// Invite, candidate, hangup at once: the dial is cancelled, or, if the
	// node was quicker, the callee gets all three in order; never a call
	// that rings on.
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
	a.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Candidate: &signal.ICECandidate{Candidate: "candidate:9 1 udp 1 127.0.0.1 5999 typ host"}})
	a.send(signal.Msg{Type: signal.TypeHangup, Call: id})
	nodetest.WaitFor(t, "the call cancelled", func() bool {
		return metric(t, nodes[0], `irmv_calls_total{result="cancelled"}`) >= 1
	})
	select {
	case m := <-b.in:
		if m.Type != signal.TypeInvite {
			t.Fatalf("the callee got %+v", m)
		}
		b.next(signal.TypeCandidate)
		b.next(signal.TypeHangup)
	case <-time.After(200 * time.Millisecond):
	}
	nodetest.WaitFor(t, "calls cleared", func() bool {
		return nodes[0].Calls().Calls() == 0 && nodes[1].Calls().Calls() == 0
	})
}

func TestCallOnOneNode(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	a, b := connect(t, n, "alice"), connect(t, n, "bob")
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
	b.next(signal.TypeInvite)
	b.send(signal.Msg{Type: signal.TypeReject, Call: id})
	a.next(signal.TypeReject)
}

func TestBusyAndUnavailable(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	a, b := connect(t, nodes[0], "alice"), connect(t, nodes[1], "bob")
	if _, err := nodes[1].Registry().SetStatus(b.ack.Terminal, record.StatusBusy); err != nil {
		t.Fatal(err)
	}
	a.send(signal.Msg{Type: signal.TypeInvite, Call: newCallID(), To: b.party(), Desc: offer})
	a.next(signal.TypeBusy)

	// A registered terminal without a WebSocket cannot ring.
	ack, err := nodes[1].Registry().Register(client.Registration{UID: "carol", Address: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	a.send(signal.Msg{Type: signal.TypeInvite, Call: newCallID(), To: &signal.Party{Node: nodes[1].ID().String(), Terminal: ack.Terminal}, Desc: offer})
	a.next(signal.TypeUnavailable)
	a.send(signal.Msg{Type: signal.TypeInvite, Call: newCallID(), To: &signal.Party{Node: nodes[1].ID().String(), Terminal: "nosuchterminal"}, Desc: offer})
	a.next(signal.TypeUnavailable)
}

func TestRingTimeoutAndDisconnect(t *testing.T) {
	nodes := nodetest.Chain(t, 2, func(i int, o *node.Options) { o.RingTimeout = 500 * time.Millisecond })
	a, b := connect(t, nodes[0], "alice"), connect(t, nodes[1], "bob")
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
	b.next(signal.TypeInvite)
	if got := a.next(signal.TypeHangup); got.Reason != "no answer" {
		t.Fatalf("hangup %+v", got)
	}
	b.next(signal.TypeHangup)

	// A callee whose WebSocket closes mid-call hangs up the caller.
	id = newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
	b.next(signal.TypeInvite)
	b.send(signal.Msg{Type: signal.TypeAccept, Call: id, Desc: &signal.Description{Type: "answer"}})
	a.next(signal.TypeAccept)
	b.conn.Close(websocket.StatusNormalClosure, "")
	if got := a.next(signal.TypeHangup); !strings.Contains(got.Reason, "disconnected") && !strings.Contains(got.Reason, "lost") {
		t.Fatalf("hangup %+v", got)
	}
}

func TestBadMessagesRefused(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	a, b := connect(t, n, "alice"), connect(t, n, "bob")
	for _, m := range []signal.Msg{
		{Type: "launch-missiles", Call: newCallID()},
		{Type: signal.TypeInvite, Call: "short", To: b.party(), Desc: offer},
		{Type: signal.TypeInvite, Call: newCallID(), Desc: offer},
		{Type: signal.TypeInvite, Call: newCallID(), To: b.party()},
		{Type: signal.TypeCandidate, Call: newCallID()},
		{Type: signal.TypeUpdate, Call: newCallID()},
		{Type: signal.TypeUpdate, Call: newCallID(), Desc: &signal.Description{Type: "pranswer"}},
		{Type: signal.TypeUpdate, Call: newCallID(), Desc: offer, Leg: -1},
		{Type: signal.TypeUpdate, Call: newCallID(), Desc: offer, Leg: signal.MaxLeg + 1},
		{Type: signal.TypeUpdate, Call: newCallID(), Desc: offer, Leg: 1, Route: "carrier pigeon"},
		{Type: signal.TypeHangup, Call: newCallID(), Leg: 1},
		{Type: signal.TypeInvite, Call: newCallID(), To: b.party(), Desc: offer, Conference: "not-an-id"},
		{Type: signal.TypeRinging, Call: newCallID(), Conference: newCallID()},
	} {
		a.send(m)
		a.next(signal.TypeError)
	}
	// A third terminal cannot inject messages into someone else's call.
	c := connect(t, n, "mallory")
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
	b.next(signal.TypeInvite)
	c.send(signal.Msg{Type: signal.TypeHangup, Call: id})
	b.send(signal.Msg{Type: signal.TypeRinging, Call: id})
	a.next(signal.TypeRinging) // not a hangup: mallory's was dropped

	// A hello with a wrong token is refused.
	ctx := context.Background()
	conn, _, err := websocket.Dial(ctx, "ws://"+n.APIAddr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeHello, Terminal: a.ack.Terminal, Token: "wrong"})
	var m signal.Msg
	if err := wsjson.Read(ctx, conn, &m); err != nil || m.Type != signal.TypeError {
		t.Fatalf("wrong token: %+v %v", m, err)
	}
}

func TestInviteStreamsRateLimited(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	b := connect(t, nodes[1], "bob")
	// Node 0's host opens call streams to node 1 as fast as it can, each
	// with a valid invite; beyond the per-node burst they are refused.
	ctx := context.Background()
	start := time.Now()
	for range 300 {
		st, err := nodes[0].Host().NewStream(ctx, nodes[1].ID(), signal.Protocol)
		if err != nil {
			t.Fatal(err)
		}
		m := signal.Msg{Type: signal.TypeInvite, Call: newCallID(), From: &signal.Party{}, To: b.party(), Desc: offer}
		wire.Write(st, m, signal.MaxSize)
		st.Close() // not Reset: the protocol is negotiated lazily, with the write
	}
	// The bucket refills while the loop runs (slowly on a loaded machine):
	// all beyond the burst and the refill must be refused.
	want := 300 - call.InviteBurstForTest - call.InviteRateForTest*time.Since(start).Seconds() - 5
	var refused float64
	nodetest.WaitFor(t, "refusals counted", func() bool {
		refused = metric(t, nodes[1], `irmv_call_messages_dropped_total{reason="rate"}`)
		return refused >= min(want, 200)
	})
	t.Logf("%v of 300 call streams refused by the per-node rate limit", refused)
}

// metric reads one sample from a node's /metrics.
func metric(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// TestICERefresh: a connected terminal gets a new welcome with fresh
// credentials every ICERefresh, so short-lived credentials last for the
// calls it makes hours after it connected.
func TestICERefresh(t *testing.T) {
	o := nodetest.Options(t)
	o.ICERefresh = 1100 * time.Millisecond // credentials' expiry has whole seconds
	n := nodetest.Start(t, o)
	tm := connect(t, n, "refreshed")
	expiry := func(m signal.Msg) int64 {
		for _, s := range m.ICEServers {
			if exp, _, ok := strings.Cut(s.Username, ":"); ok {
				v, err := strconv.ParseInt(exp, 10, 64)
				if err != nil {
					t.Fatalf("username %q", s.Username)
				}
				return v
			}
		}
		t.Fatalf("no TURN credentials in %+v", m.ICEServers)
		return 0
	}
	first := expiry(tm.welcome)
	second := expiry(tm.next(signal.TypeWelcome))
	if second <= first {
		t.Fatalf("renewed credentials expire at %d, the first at %d", second, first)
	}
}

// TestRefreshICE: RefreshICE sends every connected terminal a new welcome
// at once, long before ICERefresh (a node whose relay lost its public
// address: its terminals must learn of the relay it borrows instead).
func TestRefreshICE(t *testing.T) {
	o := nodetest.Options(t)
	o.ICERefresh = time.Hour
	n := nodetest.Start(t, o)
	a, b := connect(t, n, "refresh-a"), connect(t, n, "refresh-b")
	n.Calls().RefreshICE()
	for _, tm := range []*term{a, b} {
		w := tm.next(signal.TypeWelcome)
		if w.Terminal != tm.ack.Terminal || w.Node != n.ID().String() || len(w.ICEServers) == 0 {
			t.Errorf("%s: new welcome %+v", tm.ack.Terminal, w)
		}
	}
}

// TestPeerICEServers: across nodes, the node of each terminal adds its
// relay for the other terminal to the invite and the accept it passes on;
// what a terminal puts there itself is dropped, a call within one node
// carries none, and a node's invite with too many or malformed servers is
// refused.
func TestPeerICEServers(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	a, b := connect(t, nodes[0], "alice"), connect(t, nodes[1], "bob")
	turnOf := func(n *node.Node) string { return "turn:" + n.TURN().Addr().String() + "?transport=udp" }
	hasTURN := func(servers []signal.ICEServer, url string) bool {
		for _, s := range servers {
			if len(s.URLs) == 1 && s.URLs[0] == url && s.Username != "" && s.Credential != "" {
				return true
			}
		}
		return false
	}
	fake := []signal.ICEServer{{URLs: []string{"turn:192.0.2.1:3478"}, Username: "u", Credential: "p"}}
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer, PeerICEServers: fake})
	inv := b.next(signal.TypeInvite)
	if len(inv.PeerICEServers) != 2 || !hasTURN(inv.PeerICEServers, turnOf(nodes[0])) {
		t.Fatalf("invite's peer ICE servers %+v: want node 0's relay only", inv.PeerICEServers)
	}
	b.send(signal.Msg{Type: signal.TypeAccept, Call: id, Desc: &signal.Description{Type: "answer", SDP: "v=0"}, PeerICEServers: fake})
	acc := a.next(signal.TypeAccept)
	if len(acc.PeerICEServers) != 2 || !hasTURN(acc.PeerICEServers, turnOf(nodes[1])) {
		t.Fatalf("accept's peer ICE servers %+v: want node 1's relay only", acc.PeerICEServers)
	}
	// Only invite and accept carry them.
	cand := signal.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host"}
	a.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Candidate: &cand})
	if got := b.next(signal.TypeCandidate); len(got.PeerICEServers) != 0 {
		t.Fatalf("candidate with peer ICE servers %+v", got.PeerICEServers)
	}
	a.send(signal.Msg{Type: signal.TypeHangup, Call: id})
	b.next(signal.TypeHangup)

	// Within one node: none, whatever the terminal sends.
	c := connect(t, nodes[0], "carol")
	id = newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: c.party(), Desc: offer, PeerICEServers: fake})
	if got := c.next(signal.TypeInvite); len(got.PeerICEServers) != 0 {
		t.Fatalf("invite within one node with peer ICE servers %+v", got.PeerICEServers)
	}
	c.send(signal.Msg{Type: signal.TypeAccept, Call: id, Desc: &signal.Description{Type: "answer", SDP: "v=0"}, PeerICEServers: fake})
	if got := a.next(signal.TypeAccept); len(got.PeerICEServers) != 0 {
		t.Fatalf("accept within one node with peer ICE servers %+v", got.PeerICEServers)
	}
	a.send(signal.Msg{Type: signal.TypeHangup, Call: id})
	c.next(signal.TypeHangup)

	// Another node's invite with bad peer ICE servers is dropped.
	long := strings.Repeat("x", signal.MaxICEField)
	for _, bad := range [][]signal.ICEServer{
		{fake[0], fake[0], fake[0], fake[0], fake[0]},
		{{URLs: []string{"http://192.0.2.1/"}}},
		{{URLs: nil}},
		{{URLs: []string{"turn:" + long}}},
		{{URLs: []string{"turn:192.0.2.1"}, Username: long + "x", Credential: "p"}},
		{{URLs: []string{"turn:192.0.2.1"}, Username: "u", Credential: "p", CredentialType: "oauth"}},
	} {
		before := metric(t, nodes[1], `irmv_call_messages_dropped_total{reason="malformed"}`)
		st, err := nodes[0].Host().NewStream(context.Background(), nodes[1].ID(), signal.Protocol)
		if err != nil {
			t.Fatal(err)
		}
		m := signal.Msg{Type: signal.TypeInvite, Call: newCallID(), From: &signal.Party{}, To: b.party(), Desc: offer, PeerICEServers: bad}
		if err := wire.Write(st, m, signal.MaxSize); err != nil {
			t.Fatal(err)
		}
		st.Close()
		nodetest.WaitFor(t, "the bad invite dropped", func() bool {
			return metric(t, nodes[1], `irmv_call_messages_dropped_total{reason="malformed"}`) > before
		})
	}
	select {
	case m := <-b.in:
		t.Fatalf("bob got %+v", m)
	default:
	}
	// Well-formed ones of another node travel on unchanged.
	st, err := nodes[0].Host().NewStream(context.Background(), nodes[1].ID(), signal.Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	m := signal.Msg{Type: signal.TypeInvite, Call: newCallID(), From: &signal.Party{}, To: b.party(), Desc: offer, PeerICEServers: fake}
	if err := wire.Write(st, m, signal.MaxSize); err != nil {
		t.Fatal(err)
	}
	if got := b.next(signal.TypeInvite); len(got.PeerICEServers) != 1 || got.PeerICEServers[0].URLs[0] != fake[0].URLs[0] {
		t.Fatalf("another node's peer ICE servers arrived as %+v", got.PeerICEServers)
	}
}

// An accepted call outlives its node-to-node stream: when the nodes'
// connection breaks (a relayed connection at its limit, a relay
// restarting), the caller's node opens a new stream and resumes the call
// on it; the terminals notice nothing. A resume for a call the other node
// does not have is answered with hangup.
func TestCallResumesOnNewStream(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	a, b := connect(t, nodes[0], "alice"), connect(t, nodes[1], "bob")
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
	b.next(signal.TypeInvite)
	b.send(signal.Msg{Type: signal.TypeAccept, Call: id, Desc: &signal.Description{Type: "answer", SDP: "v=0"}})
	a.next(signal.TypeAccept)

	before := len(nodes[0].Host().Network().ConnsToPeer(nodes[1].ID()))
	if err := nodes[0].Host().Network().ClosePeer(nodes[1].ID()); err != nil {
		t.Fatal(err)
	}
	cand := signal.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host"}
	// Messages sent while the stream is down may be lost: keep sending
	// until one arrives over the new stream (b.next fails on a hangup).
	deadline := time.Now().Add(signal.ResumeWindow)
	for got := false; !got; {
		if time.Now().After(deadline) {
			t.Fatal("no candidate crossed after the connection broke")
		}
		a.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Candidate: &cand})
		select {
		case m := <-b.in:
			if m.Type != signal.TypeCandidate {
				t.Fatalf("bob got %+v, want the candidate", m)
			}
			got = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	if before == 0 || nodes[0].Calls().Calls() != 1 || nodes[1].Calls().Calls() != 1 {
		t.Fatalf("connections before %d; calls %d, %d", before, nodes[0].Calls().Calls(), nodes[1].Calls().Calls())
	}
	b.send(signal.Msg{Type: signal.TypeHangup, Call: id, Reason: "bye"})
	if got := a.next(signal.TypeHangup); got.Reason != "bye" {
		t.Fatalf("hangup %+v", got)
	}
	nodetest.WaitFor(t, "calls cleared", func() bool {
		return nodes[0].Calls().Calls() == 0 && nodes[1].Calls().Calls() == 0
	})

	// A resume of a call node 1 does not have.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := nodes[0].Host().NewStream(ctx, nodes[1].ID(), signal.Protocol)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := wire.Write(st, signal.Msg{Type: signal.TypeResume, Call: newCallID()}, signal.MaxSize); err != nil {
		t.Fatal(err)
	}
	var m signal.Msg
	if err := wire.Read(bufio.NewReader(st), &m, signal.MaxSize); err != nil || m.Type != signal.TypeHangup {
		t.Fatalf("answer to a resume of an unknown call: %+v, %v", m, err)
	}
}

// TestInvitesPerCalleeLimited: one terminal is offered at most
// CalleeBurstForTest invites at once (then CalleeRateForTest a second),
// from all nodes together; more are answered busy by its node and never
// reach it. Without it nodes (three: 20 streams a second each) could
// ring a phone faster than the phone may answer (50 messages a second,
// burst 200): its answers were dropped and, at AnswerTimeout, its node
// closed its WebSocket for not answering.
func TestInvitesPerCalleeLimited(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	b := connect(t, nodes[1], "bob")
	// Five nodes (peer IDs are free), each within its own burst of call
	// streams.
	const senders, each = 5, 38
	var hosts []host.Host
	for range senders {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if err := h.Connect(context.Background(), peer.AddrInfo{ID: nodes[1].ID(), Addrs: nodes[1].Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	var delivered atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // bob, a phone in a call: busy to every invite
		for {
			select {
			case m := <-b.in:
				if m.Type == signal.TypeInvite {
					delivered.Add(1)
					b.send(signal.Msg{Type: signal.TypeBusy, Call: m.Call})
				}
			case <-stop:
				return
			}
		}
	})
	start := time.Now()
	n := senders * each
	replies := make(chan signal.Msg, n)
	for i := range n {
		st, err := hosts[i%senders].NewStream(context.Background(), nodes[1].ID(), signal.Protocol)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Reset()
		wire.Write(st, signal.Msg{Type: signal.TypeInvite, Call: newCallID(), From: &signal.Party{}, To: b.party(), Desc: offer}, signal.MaxSize)
		go func() {
			var m signal.Msg
			st.SetReadDeadline(time.Now().Add(60 * time.Second))
			wire.Read(bufio.NewReader(st), &m, signal.MaxSize)
			replies <- m
		}()
	}
	refused := 0
	for range n {
		m := <-replies
		if m.Type != signal.TypeBusy {
			t.Fatalf("reply %+v, want busy", m)
		}
		if m.Reason != "" {
			refused++
		}
	}
	most := call.CalleeBurstForTest + int(call.CalleeRateForTest*time.Since(start).Seconds()) + 1
	close(stop)
	wg.Wait()
	if got := int(delivered.Load()); got > most || got < 1 || refused != n-got {
		t.Fatalf("%d of %d invites reached the callee (at most %d), %d refused by its node", got, n, most, refused)
	}
	// The callee answered each one it got: still connected.
	b.send(signal.Msg{Type: signal.TypePing})
	b.next(signal.TypePong)
}
