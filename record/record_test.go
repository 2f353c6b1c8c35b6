package record

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func nodeKey(t testing.TB) (crypto.PrivKey, peer.ID) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

func TestNodeAttested(t *testing.T) {
	k, id := nodeKey(t)
	_, other := nodeKey(t)
	now := time.Now()
	b := &Body{Terminal: "t1", Identifiers: Identifiers{Phone: "+49301234567"}, Node: id.String(), Seq: 1, Time: now.UnixMilli()}
	r, err := SignNode(b, k)
	if err != nil {
		t.Fatal(err)
	}
	// Round trip through JSON, as on the wire.
	data, _ := json.Marshal(r)
	var got Record
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if _, err := got.Verify(id, now); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if _, err := got.Verify(other, now); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("verify as another node: %v", err)
	}
	if _, err := got.Verify(id, now.Add(MaxAge+time.Minute)); !errors.Is(err, ErrStale) {
		t.Fatalf("verify stale: %v", err)
	}
	if _, err := got.Verify(id, now.Add(-time.Hour)); !errors.Is(err, ErrStale) {
		t.Fatalf("verify from the future: %v", err)
	}
	b2 := *b
	b2.Node = other.String()
	if _, err := SignNode(&b2, k); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("sign for another node: %v", err)
	}
}

func TestTerminalSigned(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, id := nodeKey(t)
	now := time.Now()
	b := &Body{Terminal: "t1", Identifiers: Identifiers{Name: "Ana"}, Node: id.String(), Seq: 3, Time: now.UnixMilli(), Key: pub}
	r, err := SignTerminal(b, priv)
	if err != nil {
		t.Fatal(err)
	}
	fresh := &Record{Body: r.Body, Sig: r.Sig, Signer: r.Signer}
	if _, err := fresh.Verify(id, now); err != nil {
		t.Fatalf("verify: %v", err)
	}
	tampered := &Record{Body: append([]byte(nil), r.Body...), Sig: r.Sig, Signer: r.Signer}
	tampered.Body[len(tampered.Body)-2] ^= 1
	if _, err := tampered.Verify(id, now); err == nil {
		t.Fatal("tampered body verified")
	}
	swapped := &Record{Body: r.Body, Sig: r.Sig, Signer: SignerNode}
	if _, err := swapped.Verify(id, now); err == nil {
		t.Fatal("terminal signature verified as the node's")
	}
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := SignTerminal(b, otherPriv); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("sign with another key: %v", err)
	}
}

func TestStatusText(t *testing.T) {
	for _, s := range []Status{StatusOnline, StatusIdle, StatusBusy, StatusOffline, StatusUnknown} {
		txt, _ := s.MarshalText()
		var got Status
		if err := got.UnmarshalText(txt); err != nil || got != s {
			t.Errorf("%v: round trip gave %v, %v", s, got, err)
		}
	}
	if _, err := ParseStatus("away"); !errors.Is(err, ErrBadStatus) {
		t.Errorf("ParseStatus(away): %v", err)
	}
	if _, err := ParseStatus("unknown"); err == nil {
		t.Error("unknown is not a status one sets")
	}
}

// FuzzVerify feeds arbitrary records to the decoder and verifier: no
// panic, and nothing but a correctly signed record verifies.
func FuzzVerify(f *testing.F) {
	// Deterministic key and time: fuzz workers rebuild them and must
	// agree with the seed corpus.
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		f.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	now := time.UnixMilli(1_800_000_000_000)
	r, _ := SignNode(&Body{Terminal: "t", Identifiers: Identifiers{UID: "x"}, Node: id.String(), Time: now.UnixMilli()}, k)
	good, _ := json.Marshal(&Record{Body: r.Body, Sig: r.Sig, Signer: r.Signer})
	f.Add(good)
	f.Add([]byte(`{"body":"e30=","sig":"","signer":"terminal"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec Record
		if json.Unmarshal(data, &rec) != nil {
			return
		}
		b, err := rec.Verify("", now)
		if err == nil && (b.Node != id.String() || string(rec.Body) != string(r.Body)) {
			// Only our seed is validly signed by a key we know; anything
			// else verifying must be a correct signature by its own
			// claimed key, which the fuzzer cannot forge.
			if rec.Signer == SignerNode {
				t.Fatalf("forged node record verified: %s", data)
			}
		}
	})
}
