package phone

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
)

// TestKeylessCallerWarned: a caller whose record has no key sends an
// unsigned offer that cannot be checked; the callee says so.
func TestKeylessCallerWarned(t *testing.T) {
	n := startNodes(t, 1)[0]
	ev := newEvents()
	b := startPhone(t, n, Options{Registration: client.Registration{UID: "bob"}, Answer: AnswerAuto, OnEvent: ev.add})

	ack, err := n.Registry().Register(client.Registration{UID: "keyless", Address: "127.0.0.1", Keepalive: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+n.APIAddr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeHello, Terminal: ack.Terminal, Token: ack.Token}); err != nil {
		t.Fatal(err)
	}
	offer := unsignedOffer(t)
	id := newCallID()
	if err := wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeInvite, Call: id, Desc: &offer,
		To: &signal.Party{Node: n.ID().String(), Terminal: b.Ack().Terminal}}); err != nil {
		t.Fatal(err)
	}
	w := ev.wait(t, client.EventWarning, id)
	if !strings.Contains(w.Reason, "caller has no key") {
		t.Fatalf("warning %q", w.Reason)
	}
	wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeHangup, Call: id})
	ev.wait(t, client.EventEnded, id)
}

// TestBridgedCallerNotWarned: a caller behind a SIP bridge (a Line on
// the node's switch) never has a key and the node marks its invitation
// bridged, so the callee answers without the no-key warning (the call's
// bridged field says it instead).
func TestBridgedCallerNotWarned(t *testing.T) {
	n := startNodes(t, 1)[0]
	ev := newEvents()
	b := startPhone(t, n, Options{Registration: client.Registration{UID: "bob"}, Answer: AnswerAuto, OnEvent: ev.add})

	ack, err := n.Registry().Register(client.Registration{UID: "sip-phone", Address: "127.0.0.1", Keepalive: true})
	if err != nil {
		t.Fatal(err)
	}
	line, err := n.Calls().Attach(ack.Terminal)
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	offer := unsignedOffer(t)
	id := newCallID()
	line.Send(signal.Msg{Type: signal.TypeInvite, Call: id, Desc: &offer,
		To: &signal.Party{Node: n.ID().String(), Terminal: b.Ack().Terminal}})
	// The phone answers after it has decided on warnings.
	timeout := time.After(waitLong)
	for answered := false; !answered; {
		select {
		case m, ok := <-line.Recv():
			if !ok {
				t.Fatalf("line closed before the answer (events %s)", ev)
			}
			answered = m.Type == signal.TypeAccept && m.Call == id
		case <-timeout:
			t.Fatalf("no answer (events %s)", ev)
		}
	}
	if w := ev.all(client.EventWarning); len(w) != 0 {
		t.Errorf("warnings on a bridged call: %+v", w)
	}
	line.Send(signal.Msg{Type: signal.TypeHangup, Call: id})
	ev.wait(t, client.EventEnded, id)
}

// unsignedOffer is the offer of a caller without a key (no signature),
// from a peer closed when the test ends.
func unsignedOffer(t *testing.T) signal.Description {
	t.Helper()
	peer, err := media.New(media.Options{SettingEngine: loopbackEngine()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	offer, err := peer.Offer()
	if err != nil {
		t.Fatal(err)
	}
	return offer
}
