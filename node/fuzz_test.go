package node_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/irmv/irmv/node/nodetest"
)

// FuzzRegisterBody posts arbitrary bodies to POST /v1/terminals: the node
// answers 201 with an acknowledgement or a 4xx with {"error": …}, never
// a 5xx, and stores a terminal only when it answers 201.
func FuzzRegisterBody(f *testing.F) {
	n := nodetest.Start(f, nodetest.Options(f))
	url := n.APIURL() + "/v1/terminals"
	for _, s := range []string{
		`{"name":"José Müller","phone":"030 1234567","uid":"desk-42","ip":"10.99.0.42"}`,
		`{"name":"x","phone":"abc"}`, `{"nam":"x"}`, `{"name":1}`, `[]`, `{"uid":"a","ttl":-5}`,
		`{"uid":"a","status":"away"}`, `{"uid":"a","key":"AAAA"}`, `{"name":"a\u0000b"}`, `{}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := n.Registry().Count()
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out map[string]any
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("status %d with a body that is not JSON: %q", resp.StatusCode, data)
		}
		switch {
		case resp.StatusCode == http.StatusCreated:
			if out["terminal"] == nil || out["expires_at"] == nil {
				t.Fatalf("201 without an acknowledgement: %s", data)
			}
		case resp.StatusCode >= 400 && resp.StatusCode < 500:
			if msg, _ := out["error"].(string); msg == "" {
				t.Fatalf("%d without an error message: %s", resp.StatusCode, data)
			}
			if after := n.Registry().Count(); after != before {
				t.Fatalf("refused (%d) but stored: %d -> %d terminals", resp.StatusCode, before, after)
			}
		default:
			t.Fatalf("status %d for %q: %s", resp.StatusCode, body, data)
		}
	})
}
