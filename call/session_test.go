package call_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// TestCloseFlushesHangups: a node shutting down tells every terminal which
// of its calls end before it closes their WebSockets.
func TestCloseFlushesHangups(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	a, b := connect(t, n, "alice"), connect(t, n, "bob")
	const calls = 8
	for range calls {
		id := newCallID()
		a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
		b.next(signal.TypeInvite)
	}
	if err := n.Calls().Close(); err != nil {
		t.Fatal(err)
	}
	for _, tm := range []*term{a, b} {
		for i := range calls {
			if got := tm.next(signal.TypeHangup); got.Reason != "node shutting down" {
				t.Fatalf("%s: hangup %d: %+v", tm.ack.Terminal, i, got)
			}
		}
	}
}

// TestReplacedSessionKeepsNewCalls: when a terminal reconnects while its
// old WebSocket still lingers, the end of the old one does not hang up
// the calls made on the new one.
func TestReplacedSessionKeepsNewCalls(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	b := connect(t, n, "bob")
	ack, err := n.Registry().Register(client.Registration{UID: "alice", Address: "127.0.0.1", Keepalive: true})
	if err != nil {
		t.Fatal(err)
	}
	// The old connection never reads: its close handshake runs into the
	// node's timeout (5 s), long after the new connection placed a call.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	old, _, err := websocket.Dial(ctx, "ws://"+n.APIAddr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.CloseNow()
	if err := wsjson.Write(ctx, old, signal.Msg{Type: signal.TypeHello, Terminal: ack.Terminal, Token: ack.Token}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "old session", func() bool { return n.Calls().Connected(ack.Terminal) })
	a := helloAs(t, n, ack)
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
	b.next(signal.TypeInvite)
	b.send(signal.Msg{Type: signal.TypeAccept, Call: id, Desc: &signal.Description{Type: "answer", SDP: "v=0"}})
	a.next(signal.TypeAccept)
	// The old WebSocket's handler is gone at the node, its clean-up done.
	nodetest.WaitFor(t, "the old WebSocket closed", func() bool {
		return metric(t, n, "irmv_terminal_websockets") == 2 // a and b
	})
	b.send(signal.Msg{Type: signal.TypeRinging, Call: id})
	a.next(signal.TypeRinging) // not a hangup: the call is still up
	if got := n.Calls().Calls(); got != 1 {
		t.Fatalf("%d calls, want 1", got)
	}
}

// TestOnlyCalleeAccepts: a caller cannot accept its own call to stop the
// ring timeout.
func TestOnlyCalleeAccepts(t *testing.T) {
	o := nodetest.Options(t)
	o.RingTimeout = 500 * time.Millisecond
	n := nodetest.Start(t, o)
	a, b := connect(t, n, "alice"), connect(t, n, "bob")
	id := newCallID()
	a.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: b.party(), Desc: offer})
	b.next(signal.TypeInvite)
	a.send(signal.Msg{Type: signal.TypeAccept, Call: id, Desc: &signal.Description{Type: "answer", SDP: "v=0"}})
	if got := b.next(signal.TypeHangup); got.Reason != "no answer" {
		t.Fatalf("callee: %+v", got)
	}
	if got := a.next(signal.TypeHangup); got.Reason != "no answer" {
		t.Fatalf("caller: %+v", got)
	}
}
