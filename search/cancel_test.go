package search_test

import (
	"context"
	"testing"
	"time"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/search"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A node that never answers must not hold QueryNode past its caller's
// cancellation (a search that reached its limit, or whose client left).
func TestQueryNodeHonoursCancel(t *testing.T) {
	asker, mute := newHost(t), newHost(t)
	release := make(chan struct{})
	defer close(release)
	asked := make(chan struct{}, 1)
	mute.SetStreamHandler(search.LookupProtocol, func(s network.Stream) {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-release
		s.Reset()
	})
	if err := asker.Connect(context.Background(), peer.AddrInfo{ID: mute.ID(), Addrs: mute.Addrs()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	done := make(chan error, 1)
	go func() {
		_, _, err := search.QueryNode(ctx, asker, mute.ID(), []ident.ID{{Kind: ident.KindUID, Value: "x"}}, 1)
		done <- err
	}()
	// Cancel once the query is out and waiting for the answer.
	select {
	case <-asked:
	case err := <-done:
		t.Fatalf("QueryNode returned before asking: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the query never reached the mute node")
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("QueryNode succeeded against a mute node")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("QueryNode still waiting 20 s after its context was cancelled")
	}
}

// A non-positive interval used to panic the publisher's goroutine.
func TestPublisherZeroInterval(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		p := search.NewPublisher(nil, d, nil, nil)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
