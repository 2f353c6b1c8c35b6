package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func limited(t *testing.T, h http.Handler, remote, path string) (int, http.Header) {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code == http.StatusTooManyRequests {
		var e map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] == "" {
			t.Fatalf("429 without {\"error\"}: %q", w.Body.String())
		}
	}
	return w.Code, w.Header()
}

func TestAPILimiterBuckets(t *testing.T) {
	l := newAPILimiter()
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	h := l.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))

	for _, c := range []struct {
		path  string
		burst int
	}{{"/v1/terminals", apiBurst}, {"/v1/search", apiSearchBurst}, {"/v1/ws", apiWSBurst}} {
		t.Run(c.path, func(t *testing.T) {
			remote := "192.0.2.1:4000"
			for i := range c.burst {
				if code, _ := limited(t, h, remote, c.path); code != 200 {
					t.Fatalf("request %d of the burst: %d", i, code)
				}
			}
			code, hdr := limited(t, h, remote, c.path)
			if code != http.StatusTooManyRequests {
				t.Fatalf("request over the burst: %d", code)
			}
			if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("Retry-After %q", hdr.Get("Retry-After"))
			}
			// Another client is not affected; a token comes back in time.
			if code, _ := limited(t, h, "192.0.2.2:4000", c.path); code != 200 {
				t.Errorf("other client: %d", code)
			}
			now = now.Add(time.Second)
			if code, _ := limited(t, h, remote, c.path); code != 200 {
				t.Errorf("after a second: %d", code)
			}
		})
	}
	// The classes are separate: searches used up don't block the rest.
	if code, _ := limited(t, h, "192.0.2.3:1", "/v1/search"); code != 200 {
		t.Fatal(code)
	}
	// An IPv6 client is its /64.
	for i := range apiSearchBurst {
		limited(t, h, fmt.Sprintf("[2001:db8::%x]:1", i+1), "/v1/search")
	}
	if code, _ := limited(t, h, "[2001:db8::ffff]:1", "/v1/search"); code != http.StatusTooManyRequests {
		t.Errorf("new address in a used-up /64: %d, want 429", code)
	}
	if code, _ := limited(t, h, "[2001:db8:0:1::1]:1", "/v1/search"); code != 200 {
		t.Errorf("address in another /64: %d", code)
	}
	// Loopback clients are never limited, over IPv4, IPv6 and mapped IPv4.
	for _, remote := range []string{"127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1"} {
		for i := range 3 * apiBurst {
			if code, _ := limited(t, h, remote, "/v1/terminals"); code != 200 {
				t.Fatalf("%s request %d: %d", remote, i, code)
			}
		}
	}
}

func TestAPILimiterBounded(t *testing.T) {
	l := newAPILimiter()
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	for i := range 3 * maxClients {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		l.reserve(ip, classDefault)
		now = now.Add(time.Millisecond)
	}
	if s := l.size(); s > maxClients {
		t.Fatalf("%d buckets, at most %d", s, maxClients)
	}
	// Idle buckets go first when the map is full.
	now = now.Add(2 * clientIdle)
	l.reserve(netip.MustParseAddr("192.0.2.9"), classDefault)
	if s := l.size(); s != 1 {
		t.Fatalf("%d buckets after idle sweep, want 1", s)
	}
}

func BenchmarkAPILimiter(b *testing.B) {
	l := newAPILimiter()
	ips := make([]netip.Addr, 1000)
	for i := range ips {
		ips[i] = netip.MustParseAddr(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	b.ResetTimer()
	for i := range b.N {
		l.reserve(ips[i%len(ips)], classDefault)
	}
}
