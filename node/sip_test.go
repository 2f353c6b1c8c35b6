//go:build !irmv_no_sip

package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/sip/baresiptest"
)

// sipNode starts a node with the SIP side on loopback; phones from the
// networks open (CIDR) call and register without credentials.
func sipNode(t *testing.T, open ...string) *node.Node {
	t.Helper()
	o := nodetest.Options(t)
	o.SIP, o.SIPOpen = "127.0.0.1:0", open
	return nodetest.Start(t, o)
}

// sipNodes starts node A with the SIP side on loopback and node B joined
// to it.
func sipNodes(t *testing.T) (a, b *node.Node) {
	t.Helper()
	ns := nodetest.Chain(t, 2, func(i int, o *node.Options) {
		if i == 0 {
			o.SIP = "127.0.0.1:0"
		}
	})
	return ns[0], ns[1]
}

// find searches from n until a terminal with the wanted uid turns up.
func find(t testing.TB, n *node.Node, query, uid string) client.Result {
	t.Helper()
	var got client.Result
	nodetest.WaitFor(t, "search "+query, func() bool {
		ch, err := n.Search().Search(context.Background(), client.Query{Text: query, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for r := range ch {
			if r.Identifiers.UID == uid {
				got, found = r, true
			}
		}
		return found
	})
	return got
}

func TestBaresipRegisters(t *testing.T) {
	baresiptest.Need(t)
	a, b := sipNodes(t)
	if _, err := a.SIP().AddUser(client.SIPUser{User: "alice", Password: "s3cret", Phone: "030 1234567"}); err != nil {
		t.Fatal(err)
	}
	port := a.SIP().Addr().(*net.UDPAddr).Port
	baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1",
		Account: fmt.Sprintf(`"Alice Example" <sip:alice@127.0.0.1:%d>;auth_pass=s3cret;regint=600`, port)})
	nodetest.WaitFor(t, "baresip registered", func() bool { return len(a.SIP().Bindings()) == 1 })

	// Found from node B by number and by name, online, hosted by A.
	for _, q := range []string{"+49 30 1234567", "alice example"} {
		r := find(t, b, q, "alice")
		if r.Node != a.ID().String() || r.Status.String() != "online" || r.Identifiers.Name != "Alice Example" || r.Identifiers.Phone != "+49301234567" {
			t.Fatalf("search %q from B: %+v", q, r)
		}
	}
}

func TestBaresipWrongPassword(t *testing.T) {
	baresiptest.Need(t)
	a, _ := sipNodes(t)
	if _, err := a.SIP().AddUser(client.SIPUser{User: "bob", Password: "right"}); err != nil {
		t.Fatal(err)
	}
	port := a.SIP().Addr().(*net.UDPAddr).Port
	p := baresiptest.Start(t, baresiptest.Config{IP: "127.0.0.1",
		Account: fmt.Sprintf(`<sip:bob@127.0.0.1:%d>;auth_pass=wrong;regint=600`, port)})
	p.WaitOutput("403 Forbidden", 20*time.Second)
	if n := len(a.SIP().Bindings()); n != 0 {
		t.Fatalf("%d bindings after a wrong password", n)
	}
	if n := a.Registry().Count(); n != 0 {
		t.Fatalf("%d terminals after a wrong password", n)
	}
}

func TestSIPUsersAPI(t *testing.T) {
	a, b := sipNodes(t)
	post := func(n *node.Node, body string) int {
		t.Helper()
		res, err := http.Post(n.APIURL()+"/v1/sip/users", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
			t.Fatalf("%s: %d without a JSON body", body, res.StatusCode)
		}
		if res.StatusCode >= 400 && out["error"] == nil {
			t.Fatalf("%s: %d without error", body, res.StatusCode)
		}
		if _, leaked := out["ha1_md5"]; leaked {
			t.Fatal("API shows password hashes")
		}
		return res.StatusCode
	}
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"user":"alice","password":"pw","phone":"030 1234567"}`, 201},
		{`{"user":"al ice","password":"pw"}`, 400},
		{`{"user":"bob"}`, 400},
		{`{"user":"bob","password":"pw","phone":"not a number"}`, 400},
		{`{"user":"bob","password":"pw","extra":1}`, 400},
		{`[]`, 400},
	} {
		if got := post(a, tc.body); got != tc.want {
			t.Errorf("POST %s: %d, want %d", tc.body, got, tc.want)
		}
	}
	if got := a.SIP().Users(); len(got) != 1 || got[0].User != "alice" || got[0].Phone != "+49301234567" {
		t.Fatalf("users %+v, want alice only, phone +49301234567", got)
	}
	// Node B has no SIP side.
	if got := post(b, `{"user":"alice","password":"pw"}`); got != 404 {
		t.Fatalf("POST on a node without --sip: %d, want 404", got)
	}
}
