package node_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// rawConn is one client TCP connection to the API, speaking HTTP/1.1 by
// hand so that the test sees exactly when the node closes it.
type rawConn struct {
	t    *testing.T
	c    net.Conn
	br   *bufio.Reader
	host string
}

func dialRaw(t *testing.T, addr net.Addr) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The test closes some itself.
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("closing a raw connection: %v", err)
		}
	})
	return &rawConn{t: t, c: c, br: bufio.NewReader(c), host: addr.String()}
}

// get sends GET path and reads the answer; err is the connection's error
// if the node closed it instead of answering.
func (r *rawConn) get(path string) (*http.Response, error) {
	r.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(r.c, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, r.host); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// closedByNode waits (generously) for the node to close the connection and
// fails if it does not.
func (r *rawConn) closedByNode(what string) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := r.br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("%s: the node kept the connection open", what)
	}
	if err == nil {
		r.t.Fatalf("%s: the node sent more data instead of closing", what)
	}
}

// TestConnectionCapPerClient: one client address beyond loopback holds at
// most APIMaxConnsPerClient connections; more are closed at once and
// counted, and a closed one frees its slot. Loopback clients are not
// capped.
func TestConnectionCapPerClient(t *testing.T) {
	const max = 8
	n := lanNodeWith(t, func(o *node.Options) { o.APIMaxConnsPerClient = max })
	held := make([]*rawConn, 0, max)
	for i := range max {
		c := dialRaw(t, n.APIAddr())
		if resp, err := c.get("/healthz"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v %v", i, resp, err)
		}
		held = append(held, c)
	}
	over := dialRaw(t, n.APIAddr())
	if resp, err := over.get("/healthz"); err == nil {
		t.Fatalf("connection %d of one client answered %d, want closed", max+1, resp.StatusCode)
	}
	// The held ones still work.
	if resp, err := held[0].get("/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("a held connection after the refusal: %v %v", resp, err)
	}
	// Closing one frees a slot (once the node has seen the close).
	held[0].c.Close()
	nodetest.WaitFor(t, "a freed slot", func() bool {
		c, err := net.Dial("tcp", n.APIAddr().String())
		if err != nil {
			return false
		}
		defer c.Close()
		rc := &rawConn{t: t, c: c, br: bufio.NewReader(c), host: n.APIAddr().String()}
		resp, err := rc.get("/healthz")
		return err == nil && resp.StatusCode == 200
	})
	var metrics string
	{
		req, _ := http.NewRequest("GET", n.APIURL()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+n.AdminToken())
		// A new client connection needs a slot: release the others first.
		for _, c := range held[1:] {
			c.c.Close()
		}
		nodetest.WaitFor(t, "metrics", func() bool {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			metrics = string(b)
			return resp.StatusCode == 200
		})
	}
	if !strings.Contains(metrics, `irmv_api_connections_refused_total{listener="api"}`) ||
		strings.Contains(metrics, `irmv_api_connections_refused_total{listener="api"} 0`) {
		t.Errorf("refused connections not counted:\n%s", grepLines(metrics, "refused"))
	}

	// Loopback: this machine is not capped.
	lo := nodetest.Start(t, func() node.Options { o := nodetest.Options(t); o.APIMaxConnsPerClient = max; return o }())
	for i := range 3 * max {
		if resp, err := dialRaw(t, lo.APIAddr()).get("/healthz"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("loopback connection %d: %v %v", i, resp, err)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSlowClientsTimedOut: a request whose body never completes and a
// keep-alive connection left idle are closed by the node; a live WebSocket
// outlasts both timeouts.
func TestSlowClientsTimedOut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	n := lanNodeWith(t, func(o *node.Options) { o.APIReadTimeout, o.APIIdleTimeout = timeout, timeout })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+n.APIAddr().String()+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	wsCtx := ws.CloseRead(ctx)

	slow := dialRaw(t, n.APIAddr())
	fmt.Fprintf(slow.c, "POST /v1/terminals HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"uid\":", slow.host)
	// The node answers the broken request (or not) and closes.
	slow.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, slow.br); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a request body that never completes kept the connection open")
		}
	}

	idle := dialRaw(t, n.APIAddr())
	if resp, err := idle.get("/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	idle.closedByNode("an idle keep-alive connection")

	// Both timeouts have passed since the WebSocket opened: it still
	// answers pings.
	if err := ws.Ping(ctx); err != nil {
		t.Fatalf("the WebSocket did not outlive the timeouts: %v (%v)", err, context.Cause(wsCtx))
	}
}

// TestRateLimitedConnectionClosed: a 429 answer closes its connection, so
// a client over its rate holds none while it waits.
func TestRateLimitedConnectionClosed(t *testing.T) {
	n := lanNode(t)
	c := dialRaw(t, n.APIAddr())
	for i := range 200 {
		resp, err := c.get("/v1/ws") // 426; the WebSocket bucket is small
		if err != nil {
			t.Fatalf("request %d: %v before any 429", i, err)
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			if !resp.Close {
				t.Errorf("429 without Connection: close")
			}
			c.closedByNode("after a 429")
			return
		}
	}
	t.Fatal("200 WebSocket requests on one connection, none limited")
}

// TestHugeHeadersRefused: a request whose headers exceed 16 KiB gets 431
// and the connection is closed; it is not
// read up to net/http's default of 1 MiB (64 such connections of one LAN
// client took an access point from 40 MB to 157 MB: BenchmarkAPIHeaderFlood). Ordinary requests
// with large-ish headers still pass.
func TestHugeHeadersRefused(t *testing.T) {
	n := lanNode(t)
	send := func(headerBytes int) (*http.Response, error) {
		c := dialRaw(t, n.APIAddr())
		c.c.SetDeadline(time.Now().Add(30 * time.Second))
		// Written from a goroutine: the node may stop reading (and
		// answer) before the whole header is out.
		go fmt.Fprintf(c.c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Pad: %s\r\n\r\n", c.host, strings.Repeat("a", headerBytes))
		resp, err := http.ReadResponse(c.br, nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := send(4 << 10); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a 4 KiB header: %v %v", resp, err)
	}
	resp, err := send(256 << 10)
	if err != nil {
		t.Fatalf("a 256 KiB header: no answer: %v", err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 256 KiB header: %d, want 431", resp.StatusCode)
	}
}
