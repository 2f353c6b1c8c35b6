package roam_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/internal/wire"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/share"
	"github.com/irmv/irmv/share/roam"
)

// side is one node: a libp2p host on loopback, a register and the service.
type side struct {
	h   host.Host
	reg *share.Registry
	svc *roam.Service

	mu    sync.Mutex
	moved map[string]peer.ID // terminal → node, from OnSuperseded
}

func newSide(t *testing.T) *side {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "host", h)
	norm, err := ident.NewNormalizer("DE")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := share.Open(share.Options{Path: filepath.Join(t.TempDir(), "t.db"), NodeKey: h.Peerstore().PrivKey(h.ID()), Normalizer: norm})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "registry", reg)
	s := &side{h: h, reg: reg, moved: map[string]peer.ID{}}
	s.svc, err = roam.New(roam.Options{Host: h, Registry: reg, OnSuperseded: func(term string, node peer.ID) {
		s.mu.Lock()
		s.moved[term] = node
		s.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "roam service", s.svc)
	return s
}

func (s *side) movedTo(term string) peer.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.moved[term]
}

func connect(t *testing.T, a, b *side) {
	t.Helper()
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

func signed(t *testing.T, s *side, priv ed25519.PrivateKey, reg client.Registration) client.Ack {
	t.Helper()
	reg.Key = priv.Public().(ed25519.PublicKey)
	body, err := s.reg.Prepare(reg)
	if err != nil {
		t.Fatal(err)
	}
	reg.Body, reg.Sig = body, ed25519.Sign(priv, record.SigningBytes(body))
	ack, err := s.reg.Register(reg)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A terminal registered at b that names a as its previous node is
// withdrawn at a, and a's OnSuperseded hears of it; so is a key-less one
// with its token.
func TestMovedWithdrawsAtPreviousNode(t *testing.T) {
	a, b := newSide(t), newSide(t)
	connect(t, b, a)
	_, priv, _ := ed25519.GenerateKey(nil)
	reg := client.Registration{UID: "roam-1", Name: "Roamer"}
	ackA := signed(t, a, priv, reg)
	moved := reg
	moved.From = a.h.ID().String()
	ackB := signed(t, b, priv, moved)
	b.svc.Moved(context.Background(), ackB.Record, moved.From, "", ackB.Created)
	waitFor(t, "a withdraws", func() bool { return a.reg.Count() == 0 && a.movedTo(ackA.Terminal) == b.h.ID() })
	if b.reg.Count() != 1 {
		t.Error("b lost its own registration")
	}

	klA, err := a.reg.Register(client.Registration{UID: "desk-1"})
	if err != nil {
		t.Fatal(err)
	}
	klB, err := b.reg.Register(client.Registration{UID: "desk-1", From: a.h.ID().String(), FromToken: klA.Token})
	if err != nil {
		t.Fatal(err)
	}
	b.svc.Moved(context.Background(), klB.Record, a.h.ID().String(), klA.Token, klB.Created)
	waitFor(t, "a withdraws the key-less terminal", func() bool { return a.reg.Count() == 0 })
}

// A key-less terminal's move with a wrong token is refused at once:
// Moved returns the refusal and the previous node keeps the terminal. A
// previous node without the terminal is no refusal.
func TestMovedReturnsRefusal(t *testing.T) {
	a, b := newSide(t), newSide(t)
	connect(t, b, a)
	klA, err := a.reg.Register(client.Registration{UID: "desk-2"})
	if err != nil {
		t.Fatal(err)
	}
	klB, err := b.reg.Register(client.Registration{UID: "desk-2", From: a.h.ID().String(), FromToken: "WRONG"})
	if err != nil {
		t.Fatal(err)
	}
	err = b.svc.Moved(context.Background(), klB.Record, a.h.ID().String(), "WRONG", klB.Created)
	if !errors.Is(err, roam.ErrRefused) || !errors.Is(err, share.ErrForbidden) {
		t.Fatalf("Moved with a wrong token: %v, want ErrRefused and ErrForbidden", err)
	}
	if _, err := a.reg.Get(klA.Terminal); err != nil {
		t.Errorf("a lost the terminal after a refused move: %v", err)
	}
	if err := b.svc.Moved(context.Background(), klB.Record, a.h.ID().String(), klA.Token, klB.Created); err != nil {
		t.Fatalf("Moved with the right token: %v", err)
	}
	if a.reg.Count() != 0 {
		t.Error("a kept the terminal after the move with its token")
	}
	if err := b.svc.Moved(context.Background(), klB.Record, a.h.ID().String(), klA.Token, klB.Created); err != nil {
		t.Errorf("Moved again (a no longer hosts it): %v, want nil", err)
	}
}

// Garbage, records of the wrong node and an older record change nothing.
func TestBadNoticesChangeNothing(t *testing.T) {
	a, b := newSide(t), newSide(t)
	connect(t, b, a)
	_, priv, _ := ed25519.GenerateKey(nil)
	ackA := signed(t, a, priv, client.Registration{UID: "stay-1"})
	send := func(v any) (roam.Reply, error) {
		st, err := b.h.NewStream(context.Background(), a.h.ID(), roam.Protocol)
		if err != nil {
			return roam.Reply{}, err
		}
		defer st.Close()
		if err := wire.Write(st, v, 1<<20); err != nil {
			return roam.Reply{}, err
		}
		st.CloseWrite()
		var r roam.Reply
		err = wire.Read(bufio.NewReader(st), &r, roam.MaxMessage)
		return r, err
	}
	if _, err := send(map[string]any{"record": "not a record"}); err == nil {
		t.Error("malformed notice answered")
	}
	if _, err := send(map[string]any{"record": map[string]any{"body": make([]byte, roam.MaxMessage)}}); err == nil {
		t.Error("oversized notice answered")
	}
	// a's own record, sent back by b: it names a, not b.
	if r, err := send(roam.Notice{Record: ackA.Record}); err != nil || r.Removed || r.Error == "" {
		t.Errorf("replayed record: %+v, %v", r, err)
	}
	// An older record of the key at b (a has a newer one now).
	ackB := signed(t, b, priv, client.Registration{UID: "stay-1"})
	bodyA, _ := ackA.Record.Decoded()
	newer := signed(t, a, priv, client.Registration{UID: "stay-1", Seq: bodyA.Seq + 1e6})
	nb, _ := newer.Record.Decoded()
	if r, err := send(roam.Notice{Record: ackB.Record}); err != nil || r.Removed || r.Seq != nb.Seq {
		t.Errorf("older record: %+v, %v; want refused with seq %d", r, err, nb.Seq)
	}
	if a.reg.Count() != 1 {
		t.Errorf("a hosts %d terminals, want 1", a.reg.Count())
	}
}

// FuzzNotice feeds decoded notices to the register: none but a record
// signed by the hosted terminal's key (which the fuzzer cannot forge) or
// carrying its token may remove it.
func FuzzNotice(f *testing.F) {
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	from, _ := peer.IDFromPrivateKey(k)
	norm, _ := ident.NewNormalizer("DE")
	nodeKey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	reg, err := share.Open(share.Options{Path: filepath.Join(f.TempDir(), "t.db"), NodeKey: nodeKey, Normalizer: norm})
	if err != nil {
		f.Fatal(err)
	}
	defer reg.Close()
	_, priv, _ := ed25519.GenerateKey(nil)
	r := client.Registration{UID: "fuzz-1", Key: priv.Public().(ed25519.PublicKey)}
	body, _ := reg.Prepare(r)
	r.Body, r.Sig = body, ed25519.Sign(priv, record.SigningBytes(body))
	if _, err := reg.Register(r); err != nil {
		f.Fatal(err)
	}
	if _, err := reg.Register(client.Registration{UID: "fuzz-2"}); err != nil {
		f.Fatal(err)
	}
	seed, _ := record.SignNode(&record.Body{Terminal: "t", Identifiers: record.Identifiers{UID: "fuzz-2"}, Node: from.String(), Seq: 1, Time: time.Now().UnixMilli()}, k)
	good, _ := json.Marshal(roam.Notice{Record: seed, Token: "x"})
	f.Add(good)
	f.Add([]byte(`{"record":{"body":"e30=","sig":"","signer":"terminal"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n roam.Notice
		if json.Unmarshal(data, &n) != nil || n.Record == nil {
			return
		}
		if _, err := reg.Supersede(n.Record, from, n.Token); err == nil {
			t.Fatalf("notice removed a terminal: %s", data)
		}
	})
}

// A previous node that cannot act on the notice now (it is closing, its
// database failed) or that is of a version without reply codes answers
// with no code: that is no refusal, and the move stands (the notice is
// tried again in the background).
func TestMovedUncodedReplyNoRefusal(t *testing.T) {
	b := newSide(t)
	old, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "previous node", old)
	asked := make(chan struct{}, 16)
	old.SetStreamHandler(roam.Protocol, func(st network.Stream) {
		defer st.Close()
		var n json.RawMessage
		if err := wire.Read(bufio.NewReader(st), &n, roam.MaxMessage); err != nil {
			return
		}
		asked <- struct{}{}
		wire.Write(st, roam.Reply{Error: "registry closed"}, roam.MaxMessage)
	})
	if err := b.h.Connect(context.Background(), peer.AddrInfo{ID: old.ID(), Addrs: old.Addrs()}); err != nil {
		t.Fatal(err)
	}
	kl, err := b.reg.Register(client.Registration{UID: "desk-3", From: old.ID().String(), FromToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.svc.Moved(context.Background(), kl.Record, old.ID().String(), "tok", kl.Created); err != nil {
		t.Fatalf("Moved with a previous node that answered with no code: %v, want nil", err)
	}
	<-asked
	select {
	case <-asked: // told again in the background
	case <-time.After(30 * time.Second):
		t.Error("the previous node was not told again")
	}
}
