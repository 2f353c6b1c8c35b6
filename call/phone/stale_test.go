package phone

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/record"
)

// TestStaleInviteNotAnswered: an invite read from a connection that is no
// longer the phone's (a frozen phone woken after the node gave up on it and
// dropped that connection) is for a call the node has ended: the phone
// sends nothing for it on its current connection, and its status (here
// idle, set by someone else) stays as it was.
func TestStaleInviteNotAnswered(t *testing.T) {
	n := startNodes(t, 1)[0]
	ev := newEvents()
	p := startPhone(t, n, Options{Registration: client.Registration{UID: "sleeper"}, Answer: AnswerAuto, OnEvent: ev.add})
	term := p.Ack().Terminal
	if _, err := n.Registry().SetStatus(term, record.StatusIdle); err != nil {
		t.Fatal(err)
	}
	caller := &signal.Party{Node: n.ID().String(), Terminal: "aaaaaaaaaaaaaaaa"}
	old := new(websocket.Conn) // a connection the phone no longer holds
	id := newCallID()
	p.onInvite(context.Background(), old, signal.Msg{Type: signal.TypeInvite, Call: id, From: caller,
		Desc: &signal.Description{Type: "offer", SDP: "v=0"}})
	if e := ev.wait(t, client.EventEnded, id); e.Reason != "failed" {
		t.Errorf("stale call ended with %q, want failed", e.Reason)
	}
	if got := metricOf(t, n, `irmv_call_messages_dropped_total{reason="unknown_call"}`); got != 0 {
		t.Errorf("the phone sent %v messages for the stale call on its current connection", got)
	}
	if tm, err := n.Registry().Get(term); err != nil || tm.Status != record.StatusIdle {
		t.Errorf("status after the stale invite: %v (%v), want idle", tm.Status, err)
	}
}

// metricOf reads one sample of the node's /metrics (0 when absent).
func metricOf(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}
