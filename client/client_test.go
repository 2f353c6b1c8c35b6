package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/leaktest"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

func newClient(t *testing.T, n *node.Node, token string) *client.Client {
	t.Helper()
	c, err := client.New(n.APIURL(), token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

// apiStatus is the HTTP status of an *APIError, 0 for any other error.
func apiStatus(err error) int {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// TestEveryRoute drives each route of the API reference through the
// client against a real node, errors included.
func TestEveryRoute(t *testing.T) {
	o := nodetest.Options(t)
	o.SIP = "127.0.0.1:0"
	n := nodetest.Start(t, o)
	c := newClient(t, n, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := c.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	info, err := c.Node(ctx)
	if err != nil || info.PeerID != n.ID().String() || info.Bootstrap.State != client.BootNone {
		t.Fatalf("Node: %+v, %v", info, err)
	}

	// A key-less terminal: the node attests its record.
	ack, err := c.Register(ctx, client.Registration{Name: "Ana Lima", Phone: "030 1234567", UID: "desk-1", Address: "192.0.2.7"})
	if err != nil || ack.Token == "" || ack.Identifiers.Phone != "+49301234567" || ack.Signer != record.SignerNode {
		t.Fatalf("Register: %+v, %v", ack, err)
	}
	if _, err := c.Register(ctx, client.Registration{Phone: "not a number"}); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("invalid registration: %v, want 400", err)
	}

	// A terminal with its own key: prepare, sign, register.
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	reg := client.Registration{Name: "Bo Keyed", Address: "192.0.2.8", Key: pub}
	if reg.Body, err = c.Prepare(ctx, reg); err != nil {
		t.Fatal(err)
	}
	reg.Sig = ed25519.Sign(key, record.SigningBytes(reg.Body))
	keyed, err := c.Register(ctx, reg)
	if err != nil || keyed.Signer != record.SignerTerminal {
		t.Fatalf("Register with key: %+v, %v", keyed, err)
	}

	got, err := c.Get(ctx, ack.Terminal)
	if err != nil || got.Terminal != ack.Terminal || got.Address != "192.0.2.7" {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	if _, err := c.Get(ctx, "no-such-terminal"); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("Get unknown: %v, want 404", err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	st, err := c.SetStatus(ctx, ack.Terminal, "busy")
	if err != nil || st.Status != record.StatusBusy || st.Token != "" {
		t.Fatalf("SetStatus: %+v, %v", st, err)
	}
	if _, err := c.SetStatus(ctx, ack.Terminal, "dancing"); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("bad status: %v, want 400", err)
	}
	hb, err := c.Heartbeat(ctx, ack.Terminal)
	if err != nil || !hb.ExpiresAt.After(time.Now()) {
		t.Fatalf("Heartbeat: %+v, %v", hb, err)
	}

	var results []client.Result
	err = c.Search(ctx, client.Query{Text: "+49 30 1234567", Via: client.ViaDHT, Timeout: 5 * time.Second}, func(r client.Result) error {
		results = append(results, r)
		return nil
	})
	if err != nil || len(results) != 1 || results[0].Terminal != ack.Terminal || !results[0].Verified || results[0].Status != record.StatusBusy || results[0].Record != nil {
		t.Fatalf("Search: %+v, %v", results, err)
	}
	if err := c.Search(ctx, client.Query{Text: "x", Via: "carrier-pigeon"}, func(client.Result) error { return nil }); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("bad via: %v, want 400", err)
	}

	u, err := c.SetSIPUser(ctx, client.SIPUser{User: "bob", Password: "pw", Name: "Bob"})
	if err != nil || u.User != "bob" || u.Realm == "" {
		t.Fatalf("SetSIPUser: %+v, %v", u, err)
	}
	if _, err := c.SetSIPUser(ctx, client.SIPUser{User: "bad user", Password: "pw"}); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("bad SIP user: %v, want 400", err)
	}
	users, err := c.SIPUsers(ctx)
	if err != nil || len(users) != 1 || users[0].User != "bob" {
		t.Fatalf("SIPUsers: %+v, %v", users, err)
	}
	if b, err := c.SIPBindings(ctx); err != nil || len(b) != 0 {
		t.Fatalf("SIPBindings: %+v, %v", b, err)
	}
	if err := c.RemoveSIPUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveSIPUser(ctx, "bob"); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("remove unknown SIP user: %v, want 404", err)
	}

	// The terminal's token is enough for its own routes; a wrong one is
	// refused even on loopback.
	wrong := newClient(t, n, "not-a-token-not-a-token-not-a-token")
	if _, err := wrong.Heartbeat(ctx, ack.Terminal); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("wrong token: %v, want 403", err)
	}
	own := newClient(t, n, ack.Token)
	if err := own.Remove(ctx, ack.Terminal); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, ack.Terminal); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("remove twice: %v, want 404", err)
	}
}

func TestUnreachable(t *testing.T) {
	c, err := client.New("http://127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node(context.Background()); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("Node: %v, want ErrUnreachable", err)
	}
	if _, err := client.New("ftp://x", ""); err == nil {
		t.Fatal("New accepted an ftp URL")
	}
}
