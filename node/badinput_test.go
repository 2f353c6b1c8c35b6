package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// TestBadInputAtAPI sends malformed, oversized, wrongly typed and
// out-of-range input to every endpoint: each answers 4xx with {"error"}
// in plain words (no Go package prefix such as "ident: " or "json: "),
// nothing is stored or changed, and the node stays up.
func TestBadInputAtAPI(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	api := n.APIURL()
	ack, err := n.Registry().Register(client.Registration{Name: "Existing", UID: "exists-1", Address: "10.99.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	term := "/v1/terminals/" + ack.Terminal
	big := `{"name":"` + strings.Repeat("a", 70<<10) + `"}`
	cases := []struct {
		name, method, path, body string
	}{
		{"register empty body", "POST", "/v1/terminals", ""},
		{"register not JSON", "POST", "/v1/terminals", "name=x"},
		{"register array", "POST", "/v1/terminals", `[]`},
		{"register no identifier", "POST", "/v1/terminals", `{}`},
		{"register unknown field", "POST", "/v1/terminals", `{"nam":"x"}`},
		{"register name a number", "POST", "/v1/terminals", `{"name":1}`},
		{"register ttl a string", "POST", "/v1/terminals", `{"uid":"a","ttl":"1h"}`},
		{"register ttl negative", "POST", "/v1/terminals", `{"uid":"a","ttl":-5}`},
		{"register ttl huge", "POST", "/v1/terminals", `{"uid":"a","ttl":99999999999}`},
		{"register bad status", "POST", "/v1/terminals", `{"uid":"a","status":"away"}`},
		{"register bad phone", "POST", "/v1/terminals", `{"phone":"abc"}`},
		{"register bad ip", "POST", "/v1/terminals", `{"uid":"a","ip":"999.1.1.1"}`},
		{"register bad address", "POST", "/v1/terminals", `{"uid":"a","address":"not an address"}`},
		{"register NUL in name", "POST", "/v1/terminals", `{"name":"a\u0000b"}`},
		{"register bad key", "POST", "/v1/terminals", `{"uid":"a","key":"AAAA"}`},
		{"register key not base64", "POST", "/v1/terminals", `{"uid":"a","key":"!!"}`},
		{"register uid too long", "POST", "/v1/terminals", `{"uid":"` + strings.Repeat("u", 5000) + `"}`},
		{"register oversized", "POST", "/v1/terminals", big},
		{"register two objects", "POST", "/v1/terminals", `{"uid":"a"}{"uid":"b"}`},
		{"register truncated", "POST", "/v1/terminals", `{"uid":"a"`},
		{"prepare without key", "POST", "/v1/terminals/prepare", `{"uid":"a"}`},
		{"prepare garbage", "POST", "/v1/terminals/prepare", "\x00\xff"},
		{"get unknown", "GET", "/v1/terminals/nope", ""},
		{"delete unknown", "DELETE", "/v1/terminals/nope", ""},
		{"status unknown terminal", "PUT", "/v1/terminals/nope/status", `{"status":"busy"}`},
		{"status bad value", "PUT", term + "/status", `{"status":"asleep"}`},
		{"status number", "PUT", term + "/status", `{"status":3}`},
		{"status empty body", "PUT", term + "/status", ""},
		{"status unknown field", "PUT", term + "/status", `{"status":"busy","x":1}`},
		{"status oversized", "PUT", term + "/status", big},
		{"heartbeat unknown", "POST", "/v1/terminals/nope/heartbeat", ""},
		{"search no q", "GET", "/v1/search", ""},
		{"search bad via", "GET", "/v1/search?q=anna&via=bogus", ""},
		{"search bad limit", "GET", "/v1/search?q=anna&limit=x", ""},
		{"search negative limit", "GET", "/v1/search?q=anna&limit=-1", ""},
		{"search limit with junk", "GET", "/v1/search?q=anna&limit=5abc", ""},
		{"search huge limit", "GET", "/v1/search?q=anna&limit=100000", ""},
		{"search bad timeout", "GET", "/v1/search?q=anna&timeout=soon", ""},
		{"search negative timeout", "GET", "/v1/search?q=anna&timeout=-1s", ""},
		{"search huge timeout", "GET", "/v1/search?q=anna&timeout=100h", ""},
		{"search bad phone", "GET", "/v1/search?q=phone:abc", ""},
		{"search bad uid", "GET", "/v1/search?q=uid:a%20b", ""},
		{"search bad ip", "GET", "/v1/search?q=ip:999.1.1.1", ""},
		{"search control character", "GET", "/v1/search?q=a%01b", ""},
		{"search huge q", "GET", "/v1/search?q=" + strings.Repeat("x", 6000), ""},
		{"ws without upgrade", "GET", "/v1/ws", ""},
		{"ws garbage body", "GET", "/v1/ws", "\x00garbage"},
		{"unknown endpoint", "GET", "/v1/nope", ""},
		{"wrong method", "PATCH", "/v1/terminals", `{}`},
	}
	before := n.Registry().List()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			req, err := http.NewRequest(c.method, api+c.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s %s: %d, want 4xx: %.200s", c.method, c.path, resp.StatusCode, raw)
			}
			var e map[string]any
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Errorf("answer is not JSON: %.200q", raw)
			} else if msg, _ := e["error"].(string); msg == "" {
				t.Errorf("answer without error: %.200s", raw)
			} else if p := goPrefix.FindString(msg); p != "" {
				t.Errorf("error %.200q carries the Go package prefix %q", msg, p)
			}
		})
	}
	after := n.Registry().List()
	a, _ := json.Marshal(before)
	b, _ := json.Marshal(after)
	if !bytes.Equal(a, b) {
		t.Errorf("bad input changed the register:\nbefore %s\nafter  %s", a, b)
	}
	if code := getJSON(t, api+"/healthz", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
}

// goPrefix finds the Go package prefix of an error text ("ident: ",
// "json: "), which a user of the API or CLI should not see.
var goPrefix = regexp.MustCompile(`(^|: )(ident|share|search|flood|record|media|node|client|json|strconv|phonenumbers|multiaddr): `)

// TestWebSocketGarbage opens real WebSockets and sends garbage, oversized
// and wrongly typed frames: the node closes them and stays up.
func TestWebSocketGarbage(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	url := "ws" + strings.TrimPrefix(n.APIURL(), "http") + "/v1/ws"
	for name, send := range map[string]func(context.Context, *websocket.Conn) error{
		"binary garbage": func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2, 0xff})
		},
		"text not JSON": func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageText, []byte("hello?"))
		},
		"hello with bad token": func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","terminal":"nope","token":"nope"}`))
		},
		"invite before hello": func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageText, []byte(`{"type":"invite","call":"00","to":{"node":"x","terminal":"y"}}`))
		},
		"oversized": func(ctx context.Context, c *websocket.Conn) error {
			return c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("x"), 200<<10))
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			send(ctx, c) // may fail once the node has closed
			// The node answers an error and/or closes; it never hangs.
			for {
				if _, _, err := c.Read(ctx); err != nil {
					if ctx.Err() != nil {
						t.Fatal("the node kept a garbage WebSocket open")
					}
					break
				}
			}
		})
	}
	if code := getJSON(t, n.APIURL()+"/healthz", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	if c := n.Registry().Count(); c != 0 {
		t.Errorf("%d terminals stored", c)
	}
}

// TestNationalNumberNeedsRegion: a national number registered at a node
// without --region is refused with the way out, not libphonenumber's
// "invalid country code".
func TestNationalNumberNeedsRegion(t *testing.T) {
	o := nodetest.Options(t)
	o.Region = ""
	n := nodetest.Start(t, o)
	resp, err := http.Post(n.APIURL()+"/v1/terminals", "application/json", strings.NewReader(`{"phone":"030 1234567"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct{ Error string }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(e.Error, "--region") || !strings.Contains(e.Error, "+ and the country code") {
		t.Errorf("national number without a region: %d %q", resp.StatusCode, e.Error)
	}
	if l := n.Registry().List(); len(l) != 0 {
		t.Errorf("%d terminals stored", len(l))
	}
}
