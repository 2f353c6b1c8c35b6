package node_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// TestCloseWithFreshConnection: a client connected to the API that has
// not sent a request yet (an HTTP client dials ahead, or gave up on its
// request) does not hold Close: http.Server.Shutdown leaves such a
// connection open until it is 5 s old, and Close's shutdown timeout is 5 s.
func TestCloseWithFreshConnection(t *testing.T) {
	n, err := node.New(nodetest.Options(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(n.APIURL(), "http://")
	fresh, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	// The server accepts in order: once a later connection is answered,
	// the fresh one has been accepted.
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := cl.Get(n.APIURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	start := time.Now()
	if err := n.Close(); err != nil {
		t.Errorf("Close with a connection that sent nothing: %v (after %v)", err, time.Since(start))
	}
	t.Logf("Close took %v", time.Since(start))
}
