package call_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

// connectKeyed registers a terminal holding key priv at n and opens its
// WebSocket.
func connectKeyed(t *testing.T, n *node.Node, uid string, priv ed25519.PrivateKey) *term {
	t.Helper()
	reg := client.Registration{UID: uid, Address: "127.0.0.1", Keepalive: true, Key: priv.Public().(ed25519.PublicKey)}
	body, err := n.Registry().Prepare(reg)
	if err != nil {
		t.Fatal(err)
	}
	reg.Body, reg.Sig = body, ed25519.Sign(priv, record.SigningBytes(body))
	ack, err := n.Registry().Register(reg)
	if err != nil {
		t.Fatal(err)
	}
	return helloAs(t, n, ack)
}

func newKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRejoinNeedsTheTerminal: a rejoin takes over a side of a call only
// when it comes from that side's terminal: strangers who know the call ID
// (at another node, at the other party's node, with or without a key) are
// refused and the call's path stays as it was; the callee with its own
// key, registered at a third node, rejoins from there.
func TestRejoinNeedsTheTerminal(t *testing.T) {
	nodes := nodetest.Chain(t, 3, nil)
	yKey := newKey(t)
	x, y := connect(t, nodes[0], "x"), connectKeyed(t, nodes[1], "y", yKey)
	id := newCallID()
	x.send(signal.Msg{Type: signal.TypeInvite, Call: id, To: y.party(), Desc: offer})
	y.next(signal.TypeInvite)
	y.send(signal.Msg{Type: signal.TypeAccept, Call: id, Desc: &signal.Description{Type: "answer", SDP: "v=0"},
		From: &signal.Party{Key: newKey(t).Public().(ed25519.PublicKey)}})
	// The callee's node says who accepted, whatever the terminal says.
	if acc := x.next(signal.TypeAccept); acc.From == nil || !bytes.Equal(acc.From.Key, yKey.Public().(ed25519.PublicKey)) {
		t.Fatalf("accept from %+v, want the callee's key", acc.From)
	}
	cand := signal.ICECandidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host"}
	pathIntact := func(why string) {
		t.Helper()
		y.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Candidate: &cand})
		x.next(signal.TypeCandidate) // not the stranger's rejoin
		x.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Candidate: &cand})
		y.next(signal.TypeCandidate)
		if t.Failed() {
			t.Fatalf("after %s", why)
		}
	}
	rejoin := signal.Msg{Type: signal.TypeRejoin, Call: id, To: x.party()}

	// A stranger with a key of its own, at a third node: its node passes
	// the rejoin on, the caller's node refuses it.
	z := connectKeyed(t, nodes[2], "z", newKey(t))
	z.send(rejoin)
	if m := z.next(signal.TypeHangup); !strings.Contains(m.Reason, "not proven") {
		t.Errorf("stranger's rejoin through another node: %+v", m)
	}
	pathIntact("a stranger's rejoin through another node")

	// A stranger at the caller's own node (as if the callee had moved there).
	w := connectKeyed(t, nodes[0], "w", newKey(t))
	w.send(rejoin)
	if m := w.next(signal.TypeError); !strings.Contains(m.Reason, "not proven") {
		t.Errorf("stranger's rejoin at the other party's node: %+v", m)
	}
	pathIntact("a stranger's rejoin at the other party's node")

	// A stranger without a key cannot rejoin away from its own node.
	v := connect(t, nodes[2], "v")
	v.send(rejoin)
	if m := v.next(signal.TypeError); !strings.Contains(m.Reason, "without a key") {
		t.Errorf("key-less stranger's rejoin: %+v", m)
	}
	pathIntact("a key-less stranger's rejoin")
	if got := metric(t, nodes[0], `irmv_call_messages_dropped_total{reason="rejoin_unproven"}`); got != 2 {
		t.Errorf("refused rejoins counted at the caller's node: %v, want 2", got)
	}

	// The callee itself, registered with its key at the third node.
	y2 := connectKeyed(t, nodes[2], "y", yKey)
	y2.send(rejoin)
	if m := x.next(signal.TypeRejoin); m.From == nil || m.From.Node != nodes[2].ID().String() || m.Record != nil {
		t.Fatalf("the callee's rejoin arrived as %+v", m)
	}
	y2.send(signal.Msg{Type: signal.TypeCandidate, Call: id, Candidate: &cand})
	x.next(signal.TypeCandidate)
	x.send(signal.Msg{Type: signal.TypeHangup, Call: id, Reason: "bye"})
	if m := y2.next(signal.TypeHangup); m.Reason != "bye" {
		t.Fatalf("hangup after the rejoin: %+v", m)
	}
}
