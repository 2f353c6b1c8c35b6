package node_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

// lanAddr is the namespace's LAN-like address (see scripts/netns-run).
const lanAddr = "10.99.0.1"

// lanNode starts a node whose terminal API listens on lanAddr, beyond
// loopback. Outside scripts/netns-run the address is missing: that is a
// failure, not a skip, so the rules it tests are never silently untested.
func lanNode(t *testing.T) *node.Node {
	t.Helper()
	return lanNodeWith(t, nil)
}

// lanNodeWith is lanNode with options adjusted by mut (if not nil).
func lanNodeWith(t *testing.T, mut func(*node.Options)) *node.Node {
	t.Helper()
	ln, err := net.Listen("tcp", lanAddr+":0")
	if err != nil {
		t.Fatalf("cannot listen on %s (%v): run this test under scripts/netns-run, which provides that address", lanAddr, err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	o := nodetest.Options(t)
	o.API = lanAddr + ":0"
	if mut != nil {
		mut(&o)
	}
	return nodetest.Start(t, o)
}

// call makes a request with an optional bearer token and JSON body and
// decodes the JSON answer into out (if not nil).
func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d with non-JSON answer %q", method, url, resp.StatusCode, raw)
		}
	}
	if resp.StatusCode >= 400 {
		var e map[string]any
		if json.Unmarshal(raw, &e) != nil || e["error"] == nil {
			t.Errorf("%s %s: %d without {\"error\"}: %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

func register(t *testing.T, n *node.Node, reg client.Registration) client.Ack {
	t.Helper()
	var ack client.Ack
	if code := call(t, "POST", n.APIURL()+"/v1/terminals", "", reg, &ack); code != http.StatusCreated {
		t.Fatalf("register %+v: %d", reg, code)
	}
	return ack
}

// TestChangesNeedTokenBeyondLoopback: with the API beyond loopback, only
// the terminal itself (its token) or the admin may change a registration.
func TestChangesNeedTokenBeyondLoopback(t *testing.T) {
	n := lanNode(t)
	api := n.APIURL()
	mine := register(t, n, client.Registration{Name: "Mine", UID: "auth-mine"})
	other := register(t, n, client.Registration{Name: "Other", UID: "auth-other"})
	if mine.Token == "" || other.Token == "" {
		t.Fatal("register answered no token")
	}
	status := func() record.Status {
		var a client.Terminal
		if code := call(t, "GET", api+"/v1/terminals/"+mine.Terminal, n.AdminToken(), nil, &a); code != 200 {
			t.Fatalf("get: %d", code)
		}
		return a.Status
	}
	ops := []struct {
		name, method, path string
		body               any
	}{
		{"status", "PUT", "/v1/terminals/" + mine.Terminal + "/status", map[string]string{"status": "busy"}},
		{"heartbeat", "POST", "/v1/terminals/" + mine.Terminal + "/heartbeat", nil},
		{"delete", "DELETE", "/v1/terminals/" + mine.Terminal, nil},
	}
	for _, op := range ops {
		for _, bad := range []struct{ who, token string }{
			{"no token", ""},
			{"another terminal's token", other.Token},
			{"a made-up token", "0123456789abcdef0123456789abcdef"},
		} {
			if code := call(t, op.method, api+op.path, bad.token, op.body, nil); code != http.StatusForbidden {
				t.Errorf("%s with %s: %d, want 403", op.name, bad.who, code)
			}
		}
	}
	if st := status(); st != record.StatusOnline {
		t.Fatalf("refused changes changed the status to %s", st)
	}
	if c := n.Registry().Count(); c != 2 {
		t.Fatalf("refused changes changed the register: %d terminals", c)
	}
	// The terminal itself and the admin may.
	for _, who := range []struct{ name, token string }{{"terminal", mine.Token}, {"admin", n.AdminToken()}} {
		for _, op := range ops[:2] {
			if code := call(t, op.method, api+op.path, who.token, op.body, nil); code != 200 {
				t.Errorf("%s by the %s: %d, want 200", op.name, who.name, code)
			}
		}
	}
	if st := status(); st != record.StatusBusy {
		t.Errorf("status after authorised change: %s", st)
	}
	if code := call(t, "DELETE", api+"/v1/terminals/"+mine.Terminal, mine.Token, nil, nil); code != 200 {
		t.Errorf("delete by the terminal: %d", code)
	}
	if code := call(t, "DELETE", api+"/v1/terminals/"+other.Terminal, n.AdminToken(), nil, nil); code != 200 {
		t.Errorf("delete by the admin: %d", code)
	}
	if c := n.Registry().Count(); c != 0 {
		t.Errorf("%d terminals left", c)
	}
}

// TestLoopbackNeedsNoToken documents the other side: on a loopback-only
// API anyone on this machine may change registrations (hooks, the CLI).
func TestLoopbackNeedsNoToken(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	ack := register(t, n, client.Registration{UID: "loop-1"})
	if code := call(t, "PUT", n.APIURL()+"/v1/terminals/"+ack.Terminal+"/status", "", map[string]string{"status": "idle"}, nil); code != 200 {
		t.Errorf("status without token on loopback: %d", code)
	}
	// A wrong token is still refused: presenting one means checking it.
	if code := call(t, "DELETE", n.APIURL()+"/v1/terminals/"+ack.Terminal, "not-the-token-not-the-token-xxxxx", nil, nil); code != http.StatusForbidden {
		t.Errorf("delete with a wrong token on loopback: %d, want 403", code)
	}
}

// TestKeylessTakeoverRefused: a terminal that registered with its own key
// cannot be taken over by a key-less registration of its uid, nor by
// another key, at the API, even with the admin token.
func TestKeylessTakeoverRefused(t *testing.T) {
	n := lanNode(t)
	api := n.APIURL()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	reg := client.Registration{Name: "Key Holder", UID: "keyed-1", Key: priv.Public().(ed25519.PublicKey)}
	var prep struct {
		Body []byte `json:"body"`
		Sign []byte `json:"sign"`
	}
	if code := call(t, "POST", api+"/v1/terminals/prepare", "", reg, &prep); code != 200 {
		t.Fatalf("prepare: %d", code)
	}
	reg.Body, reg.Sig = prep.Body, ed25519.Sign(priv, prep.Sign)
	ack := register(t, n, reg)
	if ack.Signer != record.SignerTerminal {
		t.Fatalf("signer %s", ack.Signer)
	}
	for _, token := range []string{"", n.AdminToken()} {
		if code := call(t, "POST", api+"/v1/terminals", token, client.Registration{UID: "keyed-1", Address: "10.99.0.66"}, nil); code != http.StatusForbidden {
			t.Errorf("key-less registration of a keyed uid (token %v): %d, want 403", token != "", code)
		}
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if code := call(t, "POST", api+"/v1/terminals/prepare", "", client.Registration{UID: "keyed-1", Key: other.Public().(ed25519.PublicKey)}, nil); code != http.StatusForbidden {
		t.Errorf("prepare with another key: %d, want 403", code)
	}
	// A forged signature over a good body.
	bad := reg
	bad.Sig = ed25519.Sign(other, prep.Sign)
	if code := call(t, "POST", api+"/v1/terminals", "", bad, nil); code < 400 || code >= 500 {
		t.Errorf("registration with a forged signature: %d, want 4xx", code)
	}
	var got client.Terminal
	call(t, "GET", api+"/v1/terminals/"+ack.Terminal, ack.Token, nil, &got)
	if got.Signer != record.SignerTerminal || got.Address == "10.99.0.66" || n.Registry().Count() != 1 {
		t.Errorf("after takeover attempts: %+v, %d terminals", got, n.Registry().Count())
	}
}

// TestAPIRateLimitBeyondLoopback: a client beyond loopback that searches
// or opens WebSockets too fast gets 429 with Retry-After; the node stays up.
func TestAPIRateLimitBeyondLoopback(t *testing.T) {
	n := lanNode(t)
	for _, c := range []struct {
		path  string
		count int
	}{{"/v1/search?q=uid:nobody&timeout=1ms", 150}, {"/v1/ws", 100}} {
		limited := 0
		for range c.count {
			resp, err := http.Get(n.APIURL() + c.path)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				limited++
				var e map[string]string
				if json.Unmarshal(raw, &e) != nil || e["error"] == "" || resp.Header.Get("Retry-After") == "" {
					t.Fatalf("429 without error or Retry-After: %q %v", raw, resp.Header)
				}
			}
		}
		t.Logf("%s: %d of %d requests limited", c.path, limited, c.count)
		if limited == 0 {
			t.Errorf("%s: %d requests in a row, none limited", c.path, c.count)
		}
	}
	if code := getJSON(t, n.APIURL()+"/healthz", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
}

// signedReg prepares and signs a registration with priv's key.
func signedReg(t *testing.T, n *node.Node, reg client.Registration, priv ed25519.PrivateKey) client.Registration {
	t.Helper()
	reg.Key = priv.Public().(ed25519.PublicKey)
	var prep struct {
		Body []byte `json:"body"`
		Sign []byte `json:"sign"`
	}
	if code := call(t, "POST", n.APIURL()+"/v1/terminals/prepare", "", reg, &prep); code != 200 {
		t.Fatalf("prepare: %d", code)
	}
	reg.Body, reg.Sig = prep.Body, ed25519.Sign(priv, prep.Sign)
	return reg
}

// TestReregistrationNeedsToken: over the LAN, registering the uid of a
// key-less terminal again (which would hand over its handle, a new token
// and its calls) needs that terminal's token or the admin token; a
// terminal's own key re-registers it without one.
func TestReregistrationNeedsToken(t *testing.T) {
	n := lanNode(t)
	api := n.APIURL()
	dave := register(t, n, client.Registration{Name: "Dave", UID: "dave", Address: "10.99.0.20"})
	other := register(t, n, client.Registration{Name: "Other", UID: "other"})
	_, attackerKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, c := range []struct {
		who   string
		token string
		reg   client.Registration
	}{
		{"no token", "", client.Registration{Name: "Dave", UID: "dave", Address: "10.99.0.66"}},
		{"another terminal's token", other.Token, client.Registration{UID: "dave", Address: "10.99.0.66"}},
		{"a made-up token", "0123456789abcdef0123456789abcdef", client.Registration{UID: "dave", Address: "10.99.0.66"}},
		{"a key of its own", "", signedReg(t, n, client.Registration{UID: "dave", Address: "10.99.0.66"}, attackerKey)},
	} {
		if code := call(t, "POST", api+"/v1/terminals", c.token, c.reg, nil); code != http.StatusForbidden {
			t.Errorf("re-registering dave with %s: %d, want 403", c.who, code)
		}
	}
	// Dave's registration and token are untouched.
	var got client.Terminal
	call(t, "GET", api+"/v1/terminals/"+dave.Terminal, dave.Token, nil, &got)
	if got.Address != "10.99.0.20" || got.Signer != record.SignerNode {
		t.Errorf("after takeover attempts dave is %+v", got)
	}
	if code := call(t, "POST", api+"/v1/terminals/"+dave.Terminal+"/heartbeat", dave.Token, nil, nil); code != 200 {
		t.Errorf("dave's own token after the attempts: %d, want 200", code)
	}
	// Dave himself, and the admin, may.
	var ack client.Ack
	if code := call(t, "POST", api+"/v1/terminals", dave.Token, client.Registration{UID: "dave", Address: "10.99.0.21"}, &ack); code != http.StatusCreated || ack.Terminal != dave.Terminal {
		t.Errorf("re-registration with dave's token: %d, handle %q (want %q)", code, ack.Terminal, dave.Terminal)
	}
	if code := call(t, "POST", api+"/v1/terminals", n.AdminToken(), client.Registration{UID: "dave", Address: "10.99.0.22"}, &ack); code != http.StatusCreated || ack.Terminal != dave.Terminal {
		t.Errorf("re-registration with the admin token: %d, handle %q", code, ack.Terminal)
	}
	// A keyed terminal re-registers with its key alone.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	first := register(t, n, signedReg(t, n, client.Registration{Name: "Keyed", UID: "keyed-2"}, key))
	again := register(t, n, signedReg(t, n, client.Registration{Name: "Keyed", UID: "keyed-2", Status: "busy"}, key))
	if again.Terminal != first.Terminal {
		t.Errorf("keyed re-registration moved %q to %q", first.Terminal, again.Terminal)
	}
	if c := n.Registry().Count(); c != 3 {
		t.Errorf("%d terminals, want 3", c)
	}
}

// TestNewTerminalsPerClientLimited: beyond loopback one client address
// registers at most 16 new terminals at once (then one a minute); updates
// of its terminals, the admin and loopback clients are not limited.
// Without it one client filled a node's register (and, with a week's
// TTL, kept new terminals out for a week).
func TestNewTerminalsPerClientLimited(t *testing.T) {
	n := lanNode(t)
	var first client.Ack
	for i := range 16 {
		ack := register(t, n, client.Registration{UID: fmt.Sprintf("new-%d", i)})
		if i == 0 {
			first = ack
		}
	}
	if code := call(t, "POST", n.APIURL()+"/v1/terminals", "", client.Registration{UID: "new-16"}, nil); code != http.StatusTooManyRequests {
		t.Fatalf("a 17th new terminal from one address: %d, want 429", code)
	}
	if code := call(t, "POST", n.APIURL()+"/v1/terminals", first.Token, client.Registration{UID: "new-0", Name: "Renamed"}, nil); code != http.StatusCreated {
		t.Fatalf("an update of its own terminal: %d, want 201", code)
	}
	if code := call(t, "POST", n.APIURL()+"/v1/terminals", n.AdminToken(), client.Registration{UID: "by-admin"}, nil); code != http.StatusCreated {
		t.Fatalf("a new terminal with the admin token: %d, want 201", code)
	}
	lo := nodetest.Start(t, nodetest.Options(t))
	for i := range 20 {
		register(t, lo, client.Registration{UID: fmt.Sprintf("local-%d", i)})
	}
}
