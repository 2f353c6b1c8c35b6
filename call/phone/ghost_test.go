package phone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/record"
)

// TestCallWithoutMediaKeepsStatus: a call the phone answers that ends
// before any media flows — as an invite the node gave up on does when a
// phone back from a freeze reads it late — leaves the terminal's status
// as it was (idle here), not busy and then online.
func TestCallWithoutMediaKeepsStatus(t *testing.T) {
	n := startNodes(t, 1)[0]
	ev := newEvents()
	p := startPhone(t, n, Options{Registration: client.Registration{UID: "stays-idle"}, Answer: AnswerAuto, OnEvent: ev.add})
	api := apiClient(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	term := p.Ack().Terminal
	if _, err := api.SetStatus(ctx, term, record.StatusIdle.String()); err != nil {
		t.Fatal(err)
	}

	// The caller: a bare terminal that hangs up as soon as it is accepted.
	ack, err := n.Registry().Register(client.Registration{UID: "hangs-up", Keepalive: true})
	if err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.Dial(ctx, "ws://"+n.APIAddr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	read := func(typ string) signal.Msg {
		t.Helper()
		for {
			var m signal.Msg
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			if m.Type == typ {
				return m
			}
		}
	}
	if err := wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeHello, Terminal: ack.Terminal, Token: ack.Token}); err != nil {
		t.Fatal(err)
	}
	read(signal.TypeWelcome)
	peer, err := media.New(media.Options{SettingEngine: loopbackEngine()})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	offer, err := peer.Offer()
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	call := hex.EncodeToString(id)
	if err := wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeInvite, Call: call,
		To: &signal.Party{Node: n.ID().String(), Terminal: term}, Desc: &offer}); err != nil {
		t.Fatal(err)
	}
	read(signal.TypeAccept)
	if err := wsjson.Write(ctx, conn, signal.Msg{Type: signal.TypeHangup, Call: call}); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, client.EventEnded, call)
	waitIdle(t, p)
	got, err := api.Get(ctx, term)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != record.StatusIdle {
		t.Errorf("status after a call that never had media: %s, want idle (events %s)", got.Status, ev)
	}
}
