package share_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/share"
)

// A keyed terminal that moves from node a to node b: b's record outranks
// a's even when b's clock is behind, and a withdraws its registration for
// it, but not for an older record, a record b does not host, or another key.
func TestSupersedeKeyed(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	b.clock.Add(-time.Hour) // b's clock is behind: the reported seq still wins
	_, priv, _ := ed25519.GenerateKey(nil)
	reg := client.Registration{Name: "Walker", UID: "walk-1", Address: "192.0.2.1"}
	ackA := a.register(a.signedReg(priv, reg))
	bodyA, _ := ackA.Record.Decoded()

	moved := reg
	moved.Address, moved.Seq, moved.From = "192.0.2.2", bodyA.Seq, a.self.String()
	ackB := b.register(b.signedReg(priv, moved))
	bodyB, _ := ackB.Record.Decoded()
	if bodyB.Seq <= bodyA.Seq {
		t.Fatalf("seq at b %d, want above a's %d", bodyB.Seq, bodyA.Seq)
	}

	// Refused: the record names b, not the sender; another key's record.
	if _, err := a.r.Supersede(ackB.Record, a.self, ""); !errors.Is(err, share.ErrInvalid) {
		t.Errorf("record from the wrong node: %v, want ErrInvalid", err)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	otherAck := b.register(b.signedReg(other, client.Registration{Name: "Other"}))
	if _, err := a.r.Supersede(otherAck.Record, b.self, ""); !errors.Is(err, share.ErrNotFound) {
		t.Errorf("another key: %v, want ErrNotFound", err)
	}
	if a.r.Count() != 1 {
		t.Fatal("a refused notice removed the terminal")
	}

	sup, err := a.r.Supersede(ackB.Record, b.self, "")
	if err != nil || sup.Terminal != ackA.Terminal || sup.Seq != bodyA.Seq {
		t.Fatalf("Supersede = %+v, %v", sup, err)
	}
	if a.r.Count() != 0 || !a.pub.unpublished(ident.ID{Kind: ident.KindUID, Value: "walk-1"}) {
		t.Errorf("after Supersede: %d terminals, uid unpublished %t", a.r.Count(), a.pub.unpublished(ident.ID{Kind: ident.KindUID, Value: "walk-1"}))
	}
	a.reopen()
	if a.r.Count() != 0 {
		t.Error("the withdrawn terminal came back after a restart")
	}

	// The terminal came back to a since: b's record is older there now.
	back := reg
	back.Seq = bodyB.Seq
	ackA2 := a.register(a.signedReg(priv, back))
	bodyA2, _ := ackA2.Record.Decoded()
	sup, err = a.r.Supersede(ackB.Record, b.self, "")
	if !errors.Is(err, share.ErrStale) || sup.Seq != bodyA2.Seq {
		t.Errorf("older record: %+v, %v; want ErrStale with seq %d", sup, err, bodyA2.Seq)
	}
	if a.r.Count() != 1 {
		t.Error("an older record removed the terminal")
	}
}

// A terminal without a key is superseded only with its token at the old
// node, and never a keyed terminal of the same uid.
func TestSupersedeKeyless(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	ackA := a.register(client.Registration{UID: "desk-7", Name: "Desk"})
	ackB := b.register(client.Registration{UID: "desk-7", Name: "Desk", From: a.self.String(), FromToken: ackA.Token})
	for _, tok := range []string{"", "wrong"} {
		if _, err := a.r.Supersede(ackB.Record, b.self, tok); !errors.Is(err, share.ErrForbidden) {
			t.Errorf("token %q: %v, want ErrForbidden", tok, err)
		}
	}
	if sup, err := a.r.Supersede(ackB.Record, b.self, ackA.Token); err != nil || sup.Terminal != ackA.Terminal {
		t.Fatalf("Supersede = %+v, %v", sup, err)
	}
	if a.r.Count() != 0 {
		t.Error("terminal still hosted")
	}

	_, priv, _ := ed25519.GenerateKey(nil)
	keyed := a.register(a.signedReg(priv, client.Registration{UID: "desk-8"}))
	kl := b.register(client.Registration{UID: "desk-8"})
	if _, err := a.r.Supersede(kl.Record, b.self, keyed.Token); !errors.Is(err, share.ErrNotFound) {
		t.Errorf("key-less record for a keyed terminal: %v, want ErrNotFound", err)
	}
}

func TestMoveFieldsChecked(t *testing.T) {
	e := newEnv(t)
	for _, reg := range []client.Registration{
		{UID: "x", From: "not-a-peer"},
		{UID: "x", FromToken: "tok"},
		{UID: "x", Seq: 1 << 63},
	} {
		if _, err := e.r.Register(reg); !errors.Is(err, share.ErrInvalid) {
			t.Errorf("Register(%+v) = %v, want ErrInvalid", reg, err)
		}
	}
	if e.r.Count() != 0 {
		t.Error("a refused registration was stored")
	}
}

// With TrackConnections a keepalive terminal is offline until it connects
// and as soon as its connection closes; others are unaffected.
func TestTrackConnections(t *testing.T) {
	e := newEnv(t, func(o *share.Options) { o.TrackConnections = true })
	kept := e.register(client.Registration{UID: "kept", Keepalive: true})
	plain := e.register(client.Registration{UID: "plain"})
	status := func(h string) string { return e.get(h).Status.String() }
	if status(kept.Terminal) != "offline" || status(plain.Terminal) != "online" {
		t.Errorf("before connecting: %s, %s", status(kept.Terminal), status(plain.Terminal))
	}
	e.r.SetConnected(kept.Terminal, true)
	if status(kept.Terminal) != "online" {
		t.Errorf("connected: %s", status(kept.Terminal))
	}
	// Re-registering keeps the connection; closing it shows offline.
	e.register(client.Registration{UID: "kept", Keepalive: true, Status: "busy"})
	if status(kept.Terminal) != "busy" {
		t.Errorf("re-registered busy: %s", status(kept.Terminal))
	}
	e.r.SetConnected(kept.Terminal, false)
	if status(kept.Terminal) != "offline" {
		t.Errorf("disconnected: %s", status(kept.Terminal))
	}
	e.r.SetConnected("no-such-terminal", true) // ignored
}
