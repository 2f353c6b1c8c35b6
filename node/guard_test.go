package node_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

// raw makes a request with the given headers and body and returns the
// status and the answer's headers; an error answer must be JSON.
func raw(t *testing.T, method, url string, hdr map[string]string, body string) (int, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e map[string]any
		if json.Unmarshal(data, &e) != nil || e["error"] == nil {
			t.Errorf("%s %s: %d without {\"error\"}: %q", method, url, resp.StatusCode, data)
		}
	}
	return resp.StatusCode, resp.Header
}

// TestForeignHostRefused: a page whose DNS name was rebound to the node's
// address sends its own name as Host; the API refuses it (403) and answers
// only its own addresses and the names given with --api-host.
func TestForeignHostRefused(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	port := n.APIAddr().String()[strings.LastIndex(n.APIAddr().String(), ":"):]
	reg := `{"uid":"rebind-1","name":"Rebound"}`
	for _, c := range []struct {
		host string
		want int
	}{
		{"127.0.0.1" + port, 200},
		{"localhost" + port, 200},
		{"LocalHost" + port, 200},
		{"[::1]" + port, 200},
		{"0.0.0.0" + port, 200},
		{"evil.example" + port, http.StatusForbidden},
		{"evil.example", http.StatusForbidden},
		{"localhost.evil.example" + port, http.StatusForbidden},
		{"127.0.0.1:1", http.StatusForbidden},
		{"10.99.0.1" + port, http.StatusForbidden},
	} {
		for _, path := range []string{"/v1/node", "/v1/terminals", "/metrics", "/"} {
			if code, _ := raw(t, "GET", n.APIURL()+path, map[string]string{"Host": c.host}, ""); code != c.want {
				t.Errorf("GET %s with Host %s: %d, want %d", path, c.host, code, c.want)
			}
		}
		if c.want != 200 {
			if code, _ := raw(t, "POST", n.APIURL()+"/v1/terminals", map[string]string{"Host": c.host, "Content-Type": "application/json"}, reg); code != http.StatusForbidden {
				t.Errorf("register with Host %s: %d, want 403", c.host, code)
			}
		}
	}
	if c := n.Registry().Count(); c != 0 {
		t.Errorf("refused registrations stored %d terminals", c)
	}

	// Beyond loopback: the listener's address and the configured names.
	lan := lanNodeWith(t, func(o *node.Options) { o.APIHosts = []string{"ap.lan", "[fd00::1]"} })
	lport := lan.APIAddr().String()[strings.LastIndex(lan.APIAddr().String(), ":"):]
	for _, c := range []struct {
		host string
		want int
	}{
		{lanAddr + lport, 200},
		{"ap.lan" + lport, 200},
		{"AP.LAN", 200},
		{"[fd00::1]:443", 200},
		{"localhost" + lport, http.StatusForbidden},
		{"127.0.0.1" + lport, http.StatusForbidden},
		{"0.0.0.0" + lport, http.StatusForbidden},
		{"evil.example" + lport, http.StatusForbidden},
		{"ap.lan.evil.example" + lport, http.StatusForbidden},
	} {
		if code, _ := raw(t, "GET", lan.APIURL()+"/v1/node", map[string]string{"Host": c.host}, ""); code != c.want {
			t.Errorf("LAN API: GET /v1/node with Host %s: %d, want %d", c.host, code, c.want)
		}
	}
}

// TestAPIHostOption: malformed --api-host values are refused at start.
func TestAPIHostOption(t *testing.T) {
	for _, bad := range []string{"", " ", "ap.lan/x", "a b"} {
		o := nodetest.Options(t)
		o.APIHosts = []string{bad}
		if n, err := node.New(o); err == nil {
			n.Close()
			t.Errorf("APIHosts %q accepted", bad)
		}
	}
}

// TestCrossOriginWritesRefused: requests that a page of another origin can
// make without CORS (a form post, a no-cors fetch) change nothing: browsers
// mark them with Sec-Fetch-Site or Origin (403), and their bodies cannot
// be application/json (415). The node's own page (same origin) may.
func TestCrossOriginWritesRefused(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	api := n.APIURL()
	ack, err := n.Registry().Register(client.Registration{Name: "Victim", UID: "victim-1", Address: "10.99.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	term := "/v1/terminals/" + ack.Terminal
	reg := `{"uid":"csrf-1","address":"6.6.6.6"}`
	for _, c := range []struct {
		name   string
		hdr    map[string]string
		method string
		path   string
		body   string
		want   int
	}{
		{"form post cross-site", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, "POST", "/v1/terminals", reg, 403},
		{"text/plain post cross-site", map[string]string{"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}, "POST", "/v1/terminals", reg, 403},
		{"JSON post from another loopback port", map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"}, "POST", "/v1/terminals", reg, 403},
		{"Origin only, foreign", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, "POST", "/v1/terminals", reg, 403},
		{"status cross-site", map[string]string{"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}, "PUT", term + "/status", `{"status":"busy"}`, 403},
		{"heartbeat cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, "POST", term + "/heartbeat", "", 403},
		{"delete cross-site", map[string]string{"Origin": "http://evil.example"}, "DELETE", term, "", 403},
		{"text/plain body, no browser", map[string]string{"Content-Type": "text/plain"}, "POST", "/v1/terminals", reg, 415},
		{"form body, no browser", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "POST", "/v1/terminals", reg, 415},
		{"no Content-Type", nil, "POST", "/v1/terminals", reg, 415},
		{"status as text/plain", map[string]string{"Content-Type": "text/plain"}, "PUT", term + "/status", `{"status":"busy"}`, 415},
		{"prepare as text/plain", map[string]string{"Content-Type": "text/plain"}, "POST", "/v1/terminals/prepare", reg, 415},
		// The node's own page, same origin, without a token: browsers get
		// no loopback exemption.
		{"same-origin page changes status without token", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": api}, "PUT", term + "/status", `{"status":"busy"}`, 403},
		{"same-origin page deletes without token", map[string]string{"Sec-Fetch-Site": "same-origin"}, "DELETE", term, "", 403},
		{"same-origin page lists terminals", map[string]string{"Sec-Fetch-Site": "same-origin"}, "GET", "/v1/terminals", "", 403},
		{"same-origin page re-registers the victim's uid", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, "POST", "/v1/terminals", `{"uid":"victim-1","address":"6.6.6.6"}`, 403},
	} {
		if code, _ := raw(t, c.method, api+c.path, c.hdr, c.body); code != c.want {
			t.Errorf("%s: %s %s: %d, want %d", c.name, c.method, c.path, code, c.want)
		}
	}
	got, err := n.Registry().Get(ack.Terminal)
	if err != nil || got.Status != record.StatusOnline || n.Registry().Count() != 1 {
		t.Fatalf("refused requests changed the register: %+v %v, %d terminals", got, err, n.Registry().Count())
	}
	// What the page itself does works: register (no token needed).
	same := map[string]string{"Content-Type": "application/json; charset=utf-8", "Sec-Fetch-Site": "same-origin", "Origin": api}
	if code, _ := raw(t, "POST", api+"/v1/terminals", same, `{"name":"Page"}`); code != http.StatusCreated {
		t.Errorf("same-origin registration: %d, want 201", code)
	}
	// A program on this machine (no browser headers) needs no token.
	if code, _ := raw(t, "PUT", api+term+"/status", map[string]string{"Content-Type": "application/json"}, `{"status":"idle"}`); code != 200 {
		t.Errorf("status from a local program: %d, want 200", code)
	}
	if c := n.Registry().Count(); c != 2 {
		t.Errorf("%d terminals, want 2", c)
	}
}

// TestBrowsersAreRateLimitedOnLoopback: loopback clients are exempt from
// the rate limits, browsers on loopback are not (any page may send their
// requests).
func TestBrowsersAreRateLimitedOnLoopback(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	n.StopAPIClockForTest() // the buckets never refill: the count is exact
	count := func(hdr map[string]string) (limited int) {
		for range 600 {
			if code, _ := raw(t, "GET", n.APIURL()+"/healthz", hdr, ""); code == http.StatusTooManyRequests {
				limited++
			}
		}
		return limited
	}
	if l := count(nil); l != 0 {
		t.Errorf("a local program was limited %d times", l)
	}
	if l := count(map[string]string{"Sec-Fetch-Site": "cross-site"}); l != 600-node.APIBurstForTest {
		t.Errorf("a browser on loopback: %d of 600 requests in a row limited, want all past the burst of %d", l, node.APIBurstForTest)
	}
}

// TestSecurityHeaders: every answer forbids framing and sniffing, and
// no answer may be loaded by a page of another origin.
func TestSecurityHeaders(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	for _, c := range []struct{ method, path, host string }{
		{"GET", "/", ""},
		{"GET", "/static/app.js", ""},
		{"GET", "/v1/node", ""},
		{"GET", "/v1/search?q=nobody&timeout=1ms", ""},
		{"GET", "/v1/nope", ""},
		{"GET", "/v1/node", "evil.example"},
	} {
		_, h := raw(t, c.method, n.APIURL()+c.path, map[string]string{"Host": c.host}, "")
		for k, v := range map[string]string{
			"X-Frame-Options":              "DENY",
			"X-Content-Type-Options":       "nosniff",
			"Content-Security-Policy":      "frame-ancestors 'none'",
			"Cross-Origin-Resource-Policy": "same-origin",
		} {
			if got := h.Get(k); got != v {
				t.Errorf("%s %s (Host %q): %s %q, want %q", c.method, c.path, c.host, k, got, v)
			}
		}
	}
}

// TestListingNeedsAdminBeyondLoopback: over the LAN only the admin lists
// the terminals and reads /metrics; a terminal reads its own registration
// with its token; search stays open.
func TestListingNeedsAdminBeyondLoopback(t *testing.T) {
	n := lanNode(t)
	api := n.APIURL()
	mine := register(t, n, client.Registration{Name: "Listed", UID: "list-1"})
	other := register(t, n, client.Registration{Name: "Other", UID: "list-2"})
	for _, c := range []struct {
		path  string
		token string
		want  int
	}{
		{"/v1/terminals", "", 403},
		{"/v1/terminals", mine.Token, 403},
		{"/v1/terminals", n.AdminToken(), 200},
		{"/metrics", "", 403},
		{"/metrics", mine.Token, 403},
		{"/metrics", n.AdminToken(), 200},
		{"/v1/terminals/" + mine.Terminal, "", 403},
		{"/v1/terminals/" + mine.Terminal, other.Token, 403},
		{"/v1/terminals/" + mine.Terminal, mine.Token, 200},
		{"/v1/terminals/" + mine.Terminal, n.AdminToken(), 200},
		{"/v1/search?q=Listed&timeout=1s", "", 200},
		{"/v1/node", "", 200},
	} {
		hdr := map[string]string{}
		if c.token != "" {
			hdr["Authorization"] = "Bearer " + c.token
		}
		if code, _ := raw(t, "GET", api+c.path, hdr, ""); code != c.want {
			t.Errorf("GET %s (token %v): %d, want %d", c.path, c.token != "", code, c.want)
		}
	}
	var list struct {
		Terminals []client.Terminal `json:"terminals"`
	}
	if code := call(t, "GET", api+"/v1/terminals", n.AdminToken(), nil, &list); code != 200 || len(list.Terminals) != 2 {
		t.Errorf("admin listing: %d, %d terminals", code, len(list.Terminals))
	}
}
