package node_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/search"
	"github.com/libp2p/go-libp2p/core/network"
)

// Close must end a search that is still waiting on a slow node instead of
// letting the API shutdown time out (which also let call.Switch close
// while WebSocket handlers could still start).
func TestCloseEndsRunningSearch(t *testing.T) {
	nodes := nodetest.Chain(t, 2, nil)
	a, b := nodes[0], nodes[1]
	if _, err := b.Registry().Register(client.Registration{UID: "slow-1", Address: "10.99.0.8"}); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "identifier announced", func() bool {
		return len(apiSearch(t, a, "uid:slow-1", client.ViaDHT)) > 0
	})
	// b now takes the lookup and never answers.
	asked := make(chan struct{}, 1)
	release := make(chan struct{})
	defer close(release)
	b.Host().SetStreamHandler(search.LookupProtocol, func(s network.Stream) {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-release
		s.Reset()
	})
	u := a.APIURL() + "/v1/search?" + url.Values{"q": {"uid:slow-1"}, "via": {"dht"}, "timeout": {"60s"}}.Encode()
	go func() {
		resp, err := http.Get(u)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		t.Fatal("search never asked the hosting node")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close with a search running: %v", err)
	}
}
