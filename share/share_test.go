package share_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/share"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// fakePub records Publisher calls and the resulting published set.
type fakePub struct {
	mu        sync.Mutex
	live      map[ident.ID]bool
	published []ident.ID // every identifier ever passed to Publish
	unpub     []ident.ID // every identifier ever passed to Unpublish
	calls     int
}

func newFakePub() *fakePub { return &fakePub{live: map[ident.ID]bool{}} }

func (p *fakePub) Publish(ids []ident.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	for _, id := range ids {
		p.live[id] = true
		p.published = append(p.published, id)
	}
}

func (p *fakePub) Unpublish(ids []ident.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	for _, id := range ids {
		if !p.live[id] {
			panic("unpublish of an identifier not published: " + id.String())
		}
		delete(p.live, id)
		p.unpub = append(p.unpub, id)
	}
}

func (p *fakePub) isLive(id ident.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live[id]
}

func (p *fakePub) unpublished(id ident.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.unpub, id)
}

func (p *fakePub) numCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

type env struct {
	t     testing.TB
	path  string
	key   crypto.PrivKey
	self  peer.ID
	norm  *ident.Normalizer
	clock *fakeClock
	pub   *fakePub
	r     *share.Registry
	opts  share.Options
}

// newEnv opens a registry in a temporary directory with a fake clock and
// publisher; t.Cleanup closes it.
func newEnv(t testing.TB, mod ...func(*share.Options)) *env {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	self, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := ident.NewNormalizer("DE")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, path: filepath.Join(t.TempDir(), "share.db"), key: key, self: self, norm: norm,
		clock: &fakeClock{t: t0}}
	e.opts = share.Options{Path: e.path, NodeKey: key, Normalizer: norm, Now: e.clock.Now}
	for _, m := range mod {
		m(&e.opts)
	}
	e.open()
	return e
}

// open (re)opens the registry with a fresh fake publisher.
func (e *env) open() {
	e.t.Helper()
	e.pub = newFakePub()
	opts := e.opts
	opts.Publisher = e.pub
	r, err := share.Open(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.r = r
	e.t.Cleanup(func() {
		if err := r.Close(); err != nil {
			e.t.Errorf("closing the registry: %v", err)
		}
	})
}

func (e *env) reopen() {
	e.t.Helper()
	if err := e.r.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *env) register(reg client.Registration) client.Ack {
	e.t.Helper()
	ack, err := e.r.Register(reg)
	if err != nil {
		e.t.Fatalf("Register(%+v): %v", reg, err)
	}
	return ack
}

func (e *env) get(h string) client.Terminal {
	e.t.Helper()
	term, err := e.r.Get(h)
	if err != nil {
		e.t.Fatal(err)
	}
	return term
}

func (e *env) sweep() {
	e.t.Helper()
	if err := e.r.SweepForTest(e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

func nameID(v string) ident.ID  { return ident.ID{Kind: ident.KindName, Value: v} }
func phoneID(v string) ident.ID { return ident.ID{Kind: ident.KindPhone, Value: v} }

func handles(recs []*record.Record) []string {
	var out []string
	for _, rec := range recs {
		b, err := rec.Decoded()
		if err != nil {
			panic(err)
		}
		out = append(out, b.Terminal)
	}
	slices.Sort(out)
	return out
}

func TestRegisterAck(t *testing.T) {
	e := newEnv(t)
	ack := e.register(client.Registration{
		Name: "  Jörg   Müller ", Phone: "030 1234567", UID: "sip:joerg@example.org", IP: "2001:DB8::1",
		Address: "::ffff:192.0.2.7",
	})
	if ack.Terminal == "" || len(ack.Token) < 40 {
		t.Fatalf("ack handle %q token %q", ack.Terminal, ack.Token)
	}
	want := record.Identifiers{Name: "Jörg Müller", Phone: "+49301234567", UID: "sip:joerg@example.org", IP: "2001:db8::1"}
	if ack.Identifiers != want {
		t.Errorf("identifiers = %+v, want %+v", ack.Identifiers, want)
	}
	if !slices.Equal(ack.NameTokens, []string{"jorg", "muller"}) {
		t.Errorf("tokens = %q", ack.NameTokens)
	}
	if !ack.ExpiresAt.Equal(t0.Add(share.DefaultTTL)) {
		t.Errorf("expires_at = %s, want %s", ack.ExpiresAt, t0.Add(share.DefaultTTL))
	}
	if ack.Status != record.StatusOnline || ack.Signer != record.SignerNode {
		t.Errorf("status %s signer %s", ack.Status, ack.Signer)
	}
	body, err := ack.Record.Verify(e.self, t0)
	if err != nil {
		t.Fatalf("record does not verify: %v", err)
	}
	if body.Terminal != ack.Terminal || body.Address != "192.0.2.7" || body.Seq != uint64(t0.UnixMilli()) || body.Identifiers != want {
		t.Errorf("body = %+v", body)
	}
	if ack.Record.Seen != t0.UnixMilli() {
		t.Errorf("seen = %d", ack.Record.Seen)
	}

	// The JSON shape the API returns.
	data, err := json.Marshal(ack)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(data, &m)
	for _, k := range []string{"terminal", "token", "expires_at", "identifiers", "tokens", "status", "signer", "record"} {
		if _, ok := m[k]; !ok {
			t.Errorf("ack JSON lacks %q: %s", k, data)
		}
	}
	if m["status"] != "online" || m["expires_at"] != "2026-03-01T12:10:00Z" {
		t.Errorf("ack JSON: %s", data)
	}

	// National and international forms are one phone identifier.
	ack2 := e.register(client.Registration{Name: "Zweitgerät", Phone: "+49 30 1234567"})
	if ack2.Identifiers.Phone != "+49301234567" {
		t.Errorf("phone = %q", ack2.Identifiers.Phone)
	}
	if got := handles(e.r.Match(phoneID("+49301234567"), 0)); !slices.Equal(got, sortedOf(ack.Terminal, ack2.Terminal)) {
		t.Errorf("Match(phone) = %v", got)
	}
	if e.r.Count() != 2 {
		t.Errorf("Count = %d", e.r.Count())
	}
	for _, id := range []ident.ID{nameID("jorg muller"), nameID("jorg"), nameID("muller"), phoneID("+49301234567"),
		{Kind: ident.KindUID, Value: "sip:joerg@example.org"}, {Kind: ident.KindIP, Value: "2001:db8::1"}} {
		if !e.pub.isLive(id) {
			t.Errorf("%s not published", id)
		}
		if !slices.Contains(e.r.IDs(), id) {
			t.Errorf("%s not in IDs()", id)
		}
	}
}

func sortedOf(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestAuthorize(t *testing.T) {
	e := newEnv(t)
	ack := e.register(client.Registration{Name: "A"})
	if err := e.r.Authorize(ack.Terminal, ack.Token); err != nil {
		t.Errorf("Authorize: %v", err)
	}
	if err := e.r.Authorize(ack.Terminal, ack.Token+"x"); !errors.Is(err, share.ErrForbidden) {
		t.Errorf("wrong token: %v", err)
	}
	if err := e.r.Authorize(ack.Terminal, ""); !errors.Is(err, share.ErrForbidden) {
		t.Errorf("empty token: %v", err)
	}
	if err := e.r.Authorize("nope", ack.Token); !errors.Is(err, share.ErrNotFound) {
		t.Errorf("unknown terminal: %v", err)
	}
}

func TestListStatusRemove(t *testing.T) {
	e := newEnv(t)
	b := e.register(client.Registration{Name: "Bruno", Address: "192.0.2.2", Private: true})
	a := e.register(client.Registration{Name: "anna", Status: "busy", Keepalive: true})
	c := e.register(client.Registration{UID: "c-1"})
	list := e.r.List()
	var order []string
	for _, term := range list {
		order = append(order, term.Terminal)
	}
	if !slices.Equal(order, []string{c.Terminal, a.Terminal, b.Terminal}) {
		t.Errorf("List order = %v, want uid-only, anna, Bruno", order)
	}
	if list[1].Status != record.StatusBusy || !list[1].Keepalive || list[2].Address != "192.0.2.2" || !list[2].Private {
		t.Errorf("List = %+v", list)
	}
	data, _ := json.Marshal(list[2])
	for _, k := range []string{`"terminal"`, `"identifiers"`, `"address"`, `"status":"online"`, `"private":true`, `"keepalive"`, `"signer":"node"`, `"expires_at"`, `"seen"`} {
		if !strings.Contains(string(data), k) {
			t.Errorf("Terminal JSON lacks %s: %s", k, data)
		}
	}
	// A private terminal's record has no address.
	recs := e.r.Match(nameID("bruno"), 0)
	if len(recs) != 1 {
		t.Fatalf("Match(bruno) = %d records", len(recs))
	}
	if body, _ := recs[0].Decoded(); body.Address != "" || !body.Private {
		t.Errorf("private record body = %+v", body)
	}

	ack, err := e.r.SetStatus(b.Terminal, record.StatusIdle)
	if err != nil || ack.Status != record.StatusIdle || ack.Token != "" {
		t.Fatalf("SetStatus: %+v, %v", ack, err)
	}
	if recs := e.r.Match(nameID("bruno"), 0); recs[0].Status != record.StatusIdle {
		t.Errorf("Match status = %s", recs[0].Status)
	}
	if _, err := e.r.SetStatus(b.Terminal, record.StatusUnknown); !errors.Is(err, share.ErrInvalid) {
		t.Errorf("SetStatus(unknown): %v", err)
	}
	if _, err := e.r.SetStatus("nope", record.StatusIdle); !errors.Is(err, share.ErrNotFound) {
		t.Errorf("SetStatus(nope): %v", err)
	}

	if err := e.r.Remove(a.Terminal); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Remove(a.Terminal); !errors.Is(err, share.ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := e.r.Get(a.Terminal); !errors.Is(err, share.ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	}
	if !e.pub.unpublished(nameID("anna")) || e.pub.isLive(nameID("anna")) {
		t.Error("anna not unpublished")
	}
	e.reopen()
	if e.r.Count() != 2 || e.get(b.Terminal).Status != record.StatusIdle {
		t.Errorf("after reopen: %+v", e.r.List())
	}
}

func TestHeartbeatAndKeepalive(t *testing.T) {
	e := newEnv(t)
	ka := e.register(client.Registration{Name: "Kim", Keepalive: true, TTL: 120})
	plain := e.register(client.Registration{Name: "Pat"})
	if _, err := e.r.SetStatus(ka.Terminal, record.StatusBusy); err != nil {
		t.Fatal(err)
	}

	e.clock.Add(20 * time.Second)
	hb, err := e.r.Heartbeat(ka.Terminal)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(120 * time.Second); !hb.ExpiresAt.Equal(want) || hb.Record.Seen != e.clock.Now().UnixMilli() {
		t.Errorf("heartbeat ack: expires %s seen %d", hb.ExpiresAt, hb.Record.Seen)
	}
	e.clock.Add(25 * time.Second) // 25 s silent: still busy
	e.sweep()
	if s := e.get(ka.Terminal).Status; s != record.StatusBusy {
		t.Fatalf("after 25 s: %s", s)
	}
	e.clock.Add(10 * time.Second) // 35 s silent: offline
	e.sweep()
	if s := e.get(ka.Terminal).Status; s != record.StatusOffline {
		t.Fatalf("after 35 s: %s", s)
	}
	if s := e.get(plain.Terminal).Status; s != record.StatusOnline {
		t.Errorf("non-keepalive terminal: %s", s)
	}
	if recs := e.r.Match(nameID("kim"), 0); len(recs) != 1 || recs[0].Status != record.StatusOffline {
		t.Errorf("Match(kim) = %+v", recs)
	}

	// The offline status is durable.
	e.reopen()
	if s := e.get(ka.Terminal).Status; s != record.StatusOffline {
		t.Fatalf("after reopen: %s", s)
	}
	// A heartbeat brings it back to its previous status.
	hb, err = e.r.Heartbeat(ka.Terminal)
	if err != nil || hb.Status != record.StatusBusy {
		t.Fatalf("heartbeat: %+v %v", hb, err)
	}
	// An offline status set explicitly survives heartbeats.
	if _, err := e.r.SetStatus(ka.Terminal, record.StatusOffline); err != nil {
		t.Fatal(err)
	}
	if hb, _ := e.r.Heartbeat(ka.Terminal); hb.Status != record.StatusOffline {
		t.Errorf("explicit offline after heartbeat: %s", hb.Status)
	}
	if _, err := e.r.Heartbeat("nope"); !errors.Is(err, share.ErrNotFound) {
		t.Errorf("Heartbeat(nope): %v", err)
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	short := e.register(client.Registration{Name: "Short Lived", TTL: 10})
	kept := e.register(client.Registration{Name: "Kept Alive", TTL: 60})
	e.register(client.Registration{Name: "Default Lifetime"})

	e.clock.Add(50 * time.Second)
	if _, err := e.r.Heartbeat(kept.Terminal); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if _, err := e.r.Get(short.Terminal); !errors.Is(err, share.ErrNotFound) {
		t.Errorf("short-lived terminal still there: %v", err)
	}
	if !e.pub.unpublished(nameID("short lived")) || !e.pub.unpublished(nameID("short")) {
		t.Error("expired identifiers not unpublished")
	}
	e.clock.Add(50 * time.Second) // 100 s after registering, 50 s after the heartbeat
	e.sweep()
	if e.r.Count() != 2 {
		t.Fatalf("Count = %d, want 2", e.r.Count())
	}
	// Expiry applies on reopen too: after another default TTL both are gone.
	e.clock.Add(share.DefaultTTL)
	e.reopen()
	if e.r.Count() != 0 {
		t.Errorf("after the default TTL and reopen: %d terminals", e.r.Count())
	}
	if e.pub.numCalls() != 0 {
		t.Errorf("published %v for an empty registry", e.pub.published)
	}
}

func TestReopenRepublishes(t *testing.T) {
	e := newEnv(t)
	var want []string
	for _, reg := range []client.Registration{
		{Name: "Ada Lovelace", Phone: "+44 20 7946 0958"},
		{UID: "imei:356938035643809", IP: "10.0.0.7"},
		{Name: "Grace", Keepalive: true, Status: "idle"},
	} {
		want = append(want, e.register(reg).Terminal)
	}
	before := e.r.List()
	ids := e.r.IDs()
	e.reopen()
	after := e.r.List()
	if len(after) != len(before) {
		t.Fatalf("after reopen: %d terminals, want %d", len(after), len(before))
	}
	for i := range before {
		b, _ := json.Marshal(before[i])
		a, _ := json.Marshal(after[i])
		if string(a) != string(b) {
			t.Errorf("terminal changed across reopen:\n%s\n%s", b, a)
		}
	}
	if e.pub.numCalls() != 1 || !slices.Equal(e.pub.published, ids) {
		t.Errorf("republished %v, want %v", e.pub.published, ids)
	}
	for _, h := range want {
		if _, err := e.r.Get(h); err != nil {
			t.Error(err)
		}
	}
	// Records still verify, and Match finds them.
	if recs := e.r.Match(nameID("ada"), 0); len(recs) != 1 {
		t.Errorf("Match(ada) after reopen = %d", len(recs))
	} else if _, err := recs[0].Verify(e.self, e.clock.Now()); err != nil {
		t.Error(err)
	}
}

func TestReattest(t *testing.T) {
	e := newEnv(t, func(o *share.Options) { o.TTL = share.MaxTTL })
	ack := e.register(client.Registration{Name: "Old Timer"})
	e.clock.Add(record.MaxAge/2 + time.Minute)
	e.sweep()
	recs := e.r.Match(nameID("old"), 0)
	body, err := recs[0].Verify(e.self, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The sequence number is at least the signing time in ms.
	if body.Seq != uint64(e.clock.Now().UnixMilli()) || body.Time != e.clock.Now().UnixMilli() || body.Terminal != ack.Terminal {
		t.Errorf("re-attested body = %+v", body)
	}
	// Survives reopen and still verifies a day later.
	e.clock.Add(record.MaxAge / 2)
	e.reopen()
	if _, err := e.r.Match(nameID("old"), 0)[0].Verify(e.self, e.clock.Now()); err != nil {
		t.Error(err)
	}
}

func TestReregister(t *testing.T) {
	e := newEnv(t)
	first := e.register(client.Registration{UID: "mac:00:11:22:33:44:55", Name: "Desk Phone", Address: "192.0.2.10"})
	second := e.register(client.Registration{UID: "mac:00:11:22:33:44:55", Name: "Desk Phone 2", Address: "192.0.2.11"})
	if second.Terminal != first.Terminal {
		t.Fatalf("re-registration got a new handle %q, want %q", second.Terminal, first.Terminal)
	}
	b, _ := second.Record.Decoded()
	b1, _ := first.Record.Decoded()
	if b.Seq != b1.Seq+1 || b.Address != "192.0.2.11" {
		t.Errorf("body = %+v", b)
	}
	if e.r.Count() != 1 {
		t.Errorf("Count = %d", e.r.Count())
	}
	if err := e.r.Authorize(first.Terminal, first.Token); !errors.Is(err, share.ErrForbidden) {
		t.Errorf("old token still valid: %v", err)
	}
	if err := e.r.Authorize(second.Terminal, second.Token); err != nil {
		t.Error(err)
	}
	// "desk phone" stays published (both have it), "desk phone 2" and "2" new.
	if e.pub.unpublished(nameID("desk")) || !e.pub.unpublished(nameID("desk phone")) || !e.pub.isLive(nameID("2")) {
		t.Errorf("publisher: live %v unpublished %v", e.pub.live, e.pub.unpub)
	}
}

// signedReg prepares, signs and returns a registration for a terminal key.
func (e *env) signedReg(priv ed25519.PrivateKey, reg client.Registration) client.Registration {
	e.t.Helper()
	reg.Key = priv.Public().(ed25519.PublicKey)
	body, err := e.r.Prepare(reg)
	if err != nil {
		e.t.Fatalf("Prepare: %v", err)
	}
	reg.Body = body
	reg.Sig = ed25519.Sign(priv, record.SigningBytes(body))
	return reg
}

func TestTerminalKey(t *testing.T) {
	e := newEnv(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	base := client.Registration{Name: "Key Holder", Phone: "030 1234567", Address: "192.0.2.5"}

	// Without a signed body: tell the caller to Prepare first.
	noSig := base
	noSig.Key = priv.Public().(ed25519.PublicKey)
	if _, err := e.r.Register(noSig); !errors.Is(err, share.ErrSignatureRequired) || !errors.Is(err, share.ErrInvalid) {
		t.Fatalf("key without signature: %v", err)
	}

	reg := e.signedReg(priv, base)
	ack := e.register(reg)
	if ack.Signer != record.SignerTerminal {
		t.Errorf("signer = %s", ack.Signer)
	}
	body, err := ack.Record.Verify(e.self, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if body.Identifiers.Phone != "+49301234567" || body.Address != "192.0.2.5" || body.Seq != uint64(e.clock.Now().UnixMilli()) {
		t.Errorf("body = %+v", body)
	}
	if e.get(ack.Terminal).Signer != record.SignerTerminal {
		t.Error("Get: signer")
	}
	// The same body again is a replay.
	if _, err := e.r.Register(reg); !errors.Is(err, share.ErrInvalid) || !strings.Contains(err.Error(), "seq") {
		t.Errorf("replayed body: %v", err)
	}
	// Re-registering with the key keeps the handle.
	e.clock.Add(time.Minute)
	again := base
	again.Status = "busy"
	ack2 := e.register(e.signedReg(priv, again))
	if b2, _ := ack2.Record.Decoded(); ack2.Terminal != ack.Terminal || b2.Seq != uint64(e.clock.Now().UnixMilli()) || ack2.Status != record.StatusBusy {
		t.Errorf("re-registration: %+v", ack2)
	}
	// The uid-less keyless registration of the same name is a new terminal;
	// a keyless one cannot take a keyed terminal's uid.
	withUID := base
	withUID.UID = "dev-1"
	ack3 := e.register(e.signedReg(priv, withUID))
	if ack3.Terminal != ack.Terminal {
		t.Errorf("adding a uid changed the handle")
	}
	if _, err := e.r.Register(client.Registration{UID: "dev-1"}); !errors.Is(err, share.ErrForbidden) {
		t.Errorf("keyless takeover of a keyed uid: %v", err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := e.r.Prepare(client.Registration{UID: "dev-1", Key: other.Public().(ed25519.PublicKey)}); !errors.Is(err, share.ErrForbidden) {
		t.Errorf("takeover of a keyed uid with another key: %v", err)
	}
	if e.r.Count() != 1 {
		t.Errorf("Count = %d", e.r.Count())
	}
	// Prepare needs a key.
	if _, err := e.r.Prepare(base); !errors.Is(err, share.ErrInvalid) || !strings.Contains(err.Error(), "key") {
		t.Errorf("Prepare without key: %v", err)
	}
}

func TestTerminalKeyRejected(t *testing.T) {
	e := newEnv(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub := priv.Public().(ed25519.PublicKey)
	base := client.Registration{Name: "Key Holder", UID: "k-1"}
	otherKey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	otherNode, _ := peer.IDFromPrivateKey(otherKey)

	sign := func(b *record.Body) client.Registration {
		reg := base
		reg.Key = pub
		data, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		reg.Body, reg.Sig = data, ed25519.Sign(priv, record.SigningBytes(data))
		return reg
	}
	good := func() *record.Body {
		return &record.Body{Terminal: "abcdefghijklmnop", Identifiers: record.Identifiers{Name: "Key Holder", UID: "k-1"},
			Node: e.self.String(), Seq: 1, Time: e.clock.Now().UnixMilli(), Key: pub}
	}
	if _, err := e.r.Register(sign(good())); err != nil {
		t.Fatalf("control case: %v", err)
	}
	if err := e.r.Remove("abcdefghijklmnop"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		reg  func() client.Registration
		want []error
		text string
	}{
		{"wrong signature", func() client.Registration {
			reg := sign(good())
			reg.Sig = slices.Clone(reg.Sig)
			reg.Sig[0] ^= 1
			return reg
		}, []error{record.ErrBadSignature}, "sig"},
		{"signed by another key", func() client.Registration {
			reg := sign(good())
			_, k2, _ := ed25519.GenerateKey(rand.Reader)
			reg.Sig = ed25519.Sign(k2, record.SigningBytes(reg.Body))
			return reg
		}, []error{record.ErrBadSignature}, "sig"},
		{"another node", func() client.Registration {
			b := good()
			b.Node = otherNode.String()
			return sign(b)
		}, []error{record.ErrWrongNode}, "body"},
		{"stale time", func() client.Registration {
			b := good()
			b.Time = e.clock.Now().Add(-share.SignWindow - time.Second).UnixMilli()
			return sign(b)
		}, []error{record.ErrStale}, "body"},
		{"future time", func() client.Registration {
			b := good()
			b.Time = e.clock.Now().Add(time.Hour).UnixMilli()
			return sign(b)
		}, []error{record.ErrStale}, "sig"},
		{"tampered identifiers in body", func() client.Registration {
			b := good()
			b.Identifiers.Name = "Someone Else"
			return sign(b)
		}, nil, "identifiers"},
		{"tampered identifiers in registration", func() client.Registration {
			reg := sign(good())
			reg.Name = "Someone Else"
			return reg
		}, nil, "identifiers"},
		{"tampered body bytes", func() client.Registration {
			reg := sign(good())
			reg.Body = []byte(strings.Replace(string(reg.Body), `"seq":1`, `"seq":9`, 1))
			return reg
		}, []error{record.ErrBadSignature}, "sig"},
		{"other key in body", func() client.Registration {
			b := good()
			_, k2, _ := ed25519.GenerateKey(rand.Reader)
			b.Key = k2.Public().(ed25519.PublicKey)
			return sign(b)
		}, nil, "key"},
		{"undecodable body", func() client.Registration {
			reg := sign(good())
			reg.Body = []byte("{not json")
			return reg
		}, []error{record.ErrMalformed}, "body"},
		{"odd handle", func() client.Registration {
			b := good()
			b.Terminal = "../../etc"
			return sign(b)
		}, nil, "terminal"},
		{"body without key", func() client.Registration {
			reg := sign(good())
			reg.Key = nil
			return reg
		}, nil, "without key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.r.Register(tt.reg())
			if !errors.Is(err, share.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %q, want it to mention %q", err, tt.text)
			}
			if e.r.Count() != 0 {
				t.Errorf("Count = %d after a rejected registration", e.r.Count())
			}
		})
	}
	// A prepared body that waited too long.
	reg := e.signedReg(priv, base)
	e.clock.Add(share.SignWindow + time.Second)
	if _, err := e.r.Register(reg); !errors.Is(err, record.ErrStale) {
		t.Errorf("stale prepared body: %v", err)
	}
}

func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	e.register(client.Registration{Name: "Existing"})
	long := strings.Repeat("a", 257)
	tests := []struct {
		name  string
		reg   client.Registration
		field string
		want  error
	}{
		{"no identifier", client.Registration{Address: "192.0.2.1"}, "", share.ErrNoIdentifier},
		{"only ip", client.Registration{IP: "192.0.2.1"}, "", share.ErrNoIdentifier},
		{"bad phone", client.Registration{Phone: "12"}, "phone", ident.ErrInvalidPhone},
		{"letters as phone", client.Registration{Phone: "call me"}, "phone", ident.ErrInvalidPhone},
		{"bad ip", client.Registration{Name: "x", IP: "300.1.1.1"}, "ip", ident.ErrInvalidIP},
		{"bad address", client.Registration{Name: "x", Address: "example.org"}, "address", ident.ErrInvalidIP},
		{"zone address", client.Registration{Name: "x", Address: "fe80::1%eth0"}, "address", ident.ErrInvalidIP},
		{"control in name", client.Registration{Name: "a\x00b"}, "name", ident.ErrControl},
		{"newline in uid", client.Registration{UID: "a\nb"}, "uid", ident.ErrControl},
		{"blank name", client.Registration{Name: "   "}, "name", ident.ErrEmpty},
		{"space in uid", client.Registration{UID: "a b"}, "uid", ident.ErrInvalidUID},
		{"long name", client.Registration{Name: long}, "name", ident.ErrTooLong},
		{"long uid", client.Registration{UID: long}, "uid", ident.ErrTooLong},
		{"long phone", client.Registration{Phone: long}, "phone", ident.ErrTooLong},
		{"long address", client.Registration{Name: "x", Address: long}, "address", ident.ErrTooLong},
		{"bad status", client.Registration{Name: "x", Status: "away"}, "status", record.ErrBadStatus},
		{"unknown status", client.Registration{Name: "x", Status: "unknown"}, "status", record.ErrBadStatus},
		{"short key", client.Registration{Name: "x", Key: make([]byte, 31)}, "key", nil},
		{"long key", client.Registration{Name: "x", Key: make([]byte, 33)}, "key", nil},
		{"ttl too short", client.Registration{Name: "x", TTL: 9}, "ttl", share.ErrTTL},
		{"ttl too long", client.Registration{Name: "x", TTL: 604801}, "ttl", share.ErrTTL},
		{"negative ttl", client.Registration{Name: "x", TTL: -1}, "ttl", share.ErrTTL},
		{"huge body", client.Registration{Name: "x", Key: make([]byte, 32), Body: make([]byte, record.MaxBodySize+1), Sig: make([]byte, 64)}, "body", nil},
		{"short sig", client.Registration{Name: "x", Key: make([]byte, 32), Body: []byte("{}"), Sig: make([]byte, 10)}, "sig", nil},
	}
	before := e.pub.numCalls()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.r.Register(tt.reg)
			if !errors.Is(err, share.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "invalid: "+tt.field) {
				t.Errorf("err = %q, want it to start with %q", err, "invalid: "+tt.field)
			}
			if len(err.Error()) > 1024 {
				t.Errorf("error of %d bytes", len(err.Error()))
			}
			if tt.reg.Key == nil {
				if _, err := e.r.Prepare(tt.reg); !errors.Is(err, share.ErrInvalid) {
					t.Errorf("Prepare: %v", err)
				}
			}
		})
	}
	if e.r.Count() != 1 || e.pub.numCalls() != before {
		t.Errorf("rejected registrations changed state: Count %d, publisher calls %d", e.r.Count(), e.pub.numCalls())
	}
	// Bounds are inclusive.
	e.register(client.Registration{Name: "min", TTL: 10})
	e.register(client.Registration{Name: "max", TTL: 604800})
	e.register(client.Registration{Name: strings.Repeat("b", 256)})
}

func TestMatch(t *testing.T) {
	e := newEnv(t)
	jonas := e.register(client.Registration{Name: "Jonas Müller", Phone: "+49 30 1234567", UID: "u-jonas", IP: "192.0.2.9"}).Terminal
	johanna := e.register(client.Registration{Name: "JOHANNA Mueller-Lüdenscheid"}).Terminal
	joe := e.register(client.Registration{Name: "Joe Smith", Phone: "+49 30 1234567"}).Terminal
	long := e.register(client.Registration{Name: "Donaudampfschifffahrtsgesellschaft Kapitän"}).Terminal

	tests := []struct {
		q    ident.ID
		want []string
	}{
		{nameID("jo mu"), sortedOf(jonas, johanna)},
		{nameID("JO MÜ"), sortedOf(jonas, johanna)}, // folded by Match as well
		{nameID("mu jo"), sortedOf(jonas, johanna)},
		{nameID("jo"), sortedOf(jonas, johanna, joe)},
		{nameID("ludensch"), []string{johanna}},
		{nameID("jonas muller"), []string{jonas}},
		{nameID("jonas mullerx"), nil},
		{nameID("smith jo"), []string{joe}},
		{nameID("x"), nil},
		{nameID("donaudampfschifffahrts"), []string{long}},
		{nameID("donaudampfschifffahrtsx"), nil},
		{nameID("kapitan"), []string{long}},
		{phoneID("+49301234567"), sortedOf(jonas, joe)},
		{phoneID("+49301234568"), nil},
		{ident.ID{Kind: ident.KindUID, Value: "u-jonas"}, []string{jonas}},
		{ident.ID{Kind: ident.KindUID, Value: "U-JONAS"}, nil},
		{ident.ID{Kind: ident.KindIP, Value: "192.0.2.9"}, []string{jonas}},
		{ident.ID{Kind: ident.KindUnknown, Value: "jo"}, nil},
	}
	for _, tt := range tests {
		recs := e.r.Match(tt.q, 0)
		if got := handles(recs); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%s) = %v, want %v", tt.q, got, tt.want)
		}
		for _, rec := range recs {
			if _, err := rec.Verify(e.self, e.clock.Now()); err != nil || rec.Status != record.StatusOnline || rec.Seen == 0 {
				t.Errorf("Match(%s): record %+v: %v", tt.q, rec, err)
			}
		}
	}
	if got := e.r.Match(nameID("jo"), 2); len(got) != 2 {
		t.Errorf("limit 2: %d records", len(got))
	}
	// Records are copies: changing one changes nothing inside.
	recs := e.r.Match(nameID("jonas"), 0)
	recs[0].Status = record.StatusBusy
	if e.r.Match(nameID("jonas"), 0)[0].Status != record.StatusOnline {
		t.Error("Match returned a shared record")
	}
	// Removing updates the index.
	if err := e.r.Remove(jonas); err != nil {
		t.Fatal(err)
	}
	if got := handles(e.r.Match(nameID("jo mu"), 0)); !slices.Equal(got, []string{johanna}) {
		t.Errorf("after Remove: %v", got)
	}
}

func TestPublisherSharedIdentifiers(t *testing.T) {
	e := newEnv(t)
	a := e.register(client.Registration{Name: "Anna Schmidt", Phone: "+49 30 1234567"}).Terminal
	b := e.register(client.Registration{Name: "Anna Berg", Phone: "030 1234567"}).Terminal
	if err := e.r.Remove(a); err != nil {
		t.Fatal(err)
	}
	for _, id := range []ident.ID{nameID("anna"), phoneID("+49301234567")} {
		if e.pub.unpublished(id) || !e.pub.isLive(id) {
			t.Errorf("%s unpublished while another terminal still has it", id)
		}
	}
	for _, id := range []ident.ID{nameID("anna schmidt"), nameID("schmidt")} {
		if e.pub.isLive(id) {
			t.Errorf("%s still published", id)
		}
	}
	if err := e.r.Remove(b); err != nil {
		t.Fatal(err)
	}
	if len(e.pub.live) != 0 || len(e.r.IDs()) != 0 {
		t.Errorf("still published: %v / %v", e.pub.live, e.r.IDs())
	}
}

func TestConcurrentSameUID(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if _, err := e.r.Register(client.Registration{UID: "same", Name: strings.Repeat("n", i+1)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if e.r.Count() != 1 {
		t.Fatalf("Count = %d, want 1", e.r.Count())
	}
	term := e.r.List()[0]
	if want := uint64(e.clock.Now().UnixMilli()) + 31; term.Seq != want {
		t.Errorf("seq = %d, want %d (the time in ms, then 31 updates)", term.Seq, want)
	}
	// Exactly one name is published, and it is the stored one.
	var names []ident.ID
	for _, id := range e.r.IDs() {
		if id.Kind == ident.KindName {
			names = append(names, id)
		}
	}
	if len(names) != 1 || names[0].Value != strings.ToLower(term.Identifiers.Name) {
		t.Errorf("published names %v for %q", names, term.Identifiers.Name)
	}
	e.reopen()
	if got := e.r.List(); len(got) != 1 || got[0].Identifiers != term.Identifiers {
		t.Errorf("after reopen: %+v", got)
	}
}

func TestServeAndClose(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.r.Serve(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := e.r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.r.Register(client.Registration{Name: "late"}); !errors.Is(err, share.ErrClosed) {
		t.Errorf("Register after Close: %v", err)
	}
	if err := e.r.Serve(context.Background()); !errors.Is(err, share.ErrClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}

func TestOpenOptions(t *testing.T) {
	e := newEnv(t)
	for name, o := range map[string]share.Options{
		"no path":       {NodeKey: e.key, Normalizer: e.norm},
		"no key":        {Path: e.path + "2", Normalizer: e.norm},
		"no normalizer": {Path: e.path + "2", NodeKey: e.key},
		"ttl too short": {Path: e.path + "2", NodeKey: e.key, Normalizer: e.norm, TTL: time.Second},
	} {
		if r, err := share.Open(o); err == nil {
			r.Close()
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(o *share.Options) { o.Registerer = reg })
	e.register(client.Registration{Name: "A", TTL: 10})
	e.r.Register(client.Registration{Phone: "1"})
	e.clock.Add(time.Minute)
	e.sweep()
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			switch {
			case m.Gauge != nil:
				got[name] = m.Gauge.GetValue()
			case m.Counter != nil:
				got[name] = m.Counter.GetValue()
			case m.Histogram != nil:
				got[name] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"irmv_terminals": 0, "irmv_registrations_total{ok}": 1, "irmv_registrations_total{invalid}": 1,
		"irmv_terminals_expired_total": 1, "irmv_register_seconds": 2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	// Reopening with the same Registerer works: Close unregistered.
	e.reopen()
}

// TestRegisterChecked: an update of a registration that the new one's key
// does not hold asks mayUpdate, with the held terminal's handle; a new
// registration and a terminal's own key do not.
func TestRegisterChecked(t *testing.T) {
	e := newEnv(t)
	var asked []string
	refuse := func(h string) error { asked = append(asked, h); return share.ErrForbidden }
	held := e.register(client.Registration{UID: "held", Address: "192.0.2.1"})
	if _, err := e.r.RegisterChecked(client.Registration{UID: "fresh"}, refuse); err != nil || len(asked) != 0 {
		t.Fatalf("new uid: %v, asked %v", err, asked)
	}
	if _, err := e.r.RegisterChecked(client.Registration{UID: "held", Address: "192.0.2.66"}, refuse); !errors.Is(err, share.ErrForbidden) {
		t.Errorf("key-less update refused by mayUpdate: %v", err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := e.r.RegisterChecked(e.signedReg(priv, client.Registration{UID: "held"}), refuse); !errors.Is(err, share.ErrForbidden) {
		t.Errorf("a key claiming a key-less uid: %v", err)
	}
	if len(asked) != 2 || asked[0] != held.Terminal || asked[1] != held.Terminal {
		t.Errorf("mayUpdate asked for %v, want %s twice", asked, held.Terminal)
	}
	if got := e.get(held.Terminal); got.Address != "192.0.2.1" {
		t.Errorf("refused updates changed the address to %s", got.Address)
	}
	// The terminal's own key needs no say-so.
	asked = nil
	mine := e.register(e.signedReg(priv, client.Registration{UID: "mine"}))
	again, err := e.r.RegisterChecked(e.signedReg(priv, client.Registration{UID: "mine", Status: "busy"}), refuse)
	if err != nil || again.Terminal != mine.Terminal || len(asked) != 0 {
		t.Errorf("keyed re-registration: %v, %s (want %s), asked %v", err, again.Terminal, mine.Terminal, asked)
	}
	if _, err := e.r.RegisterChecked(client.Registration{UID: "held", Address: "192.0.2.2"}, func(string) error { return nil }); err != nil {
		t.Errorf("allowed update: %v", err)
	}
}

// TestReopenDerivesKeys: a database keeps each terminal's name as it was
// written, and Open derives the folded name and its terms again with this
// version's folding and publishes them, so a database written by a version
// that folded differently (one that left "ł" or "O'Brien" alone) is found
// by today's keys after an upgrade.
func TestReopenDerivesKeys(t *testing.T) {
	e := newEnv(t)
	e.register(client.Registration{Name: "Łukasz O'Brien"})
	e.reopen()
	for _, v := range []string{"lukasz o'brien", "lukasz", "o", "brien", "obrien"} {
		if !slices.Contains(e.pub.published, nameID(v)) {
			t.Errorf("%q not republished: %v", v, e.pub.published)
		}
	}
	if recs := e.r.Match(nameID("obrien luk"), 0); len(recs) != 1 {
		t.Errorf("Match(obrien luk) after reopen = %d", len(recs))
	}
}

// TestMaxTerminals: a registry holds at most MaxTerminals terminals; a new
// one beyond gets ErrFull and nothing is stored, while hosted terminals
// still update, and a removal makes room. (Without it one client of the
// API registered terminals with a week's TTL at its rate limit, 200 a
// second, without end.)
func TestMaxTerminals(t *testing.T) {
	e := newEnv(t, func(o *share.Options) { o.MaxTerminals = 2 })
	a := e.register(client.Registration{UID: "a", Name: "Anna"})
	e.register(client.Registration{UID: "b"})
	if _, err := e.r.Register(client.Registration{UID: "c"}); !errors.Is(err, share.ErrFull) {
		t.Fatalf("a third terminal: %v, want ErrFull", err)
	}
	if e.r.Count() != 2 {
		t.Fatalf("%d terminals after the refusal, want 2", e.r.Count())
	}
	if ack := e.register(client.Registration{UID: "a", Name: "Anna Maria"}); ack.Terminal != a.Terminal {
		t.Fatalf("update of a: terminal %q, want %q", ack.Terminal, a.Terminal)
	}
	if err := e.r.Remove(a.Terminal); err != nil {
		t.Fatal(err)
	}
	e.register(client.Registration{UID: "c"})
}
