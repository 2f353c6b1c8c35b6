// Package dhttest starts kad-dht nodes on 127.0.0.1 for tests of the
// packages built on the DHT.
package dhttest

import (
	"testing"
	"time"

	"github.com/irmv/irmv/internal/testenv"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
)

// Node starts a libp2p host on 127.0.0.1 with a DHT server on it (no
// automatic refresh), both closed when the test ends.
func Node(t testing.TB) (host.Host, *dht.IpfsDHT) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "host", h)
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/irmv-test"), dht.DisableAutoRefresh())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return h, d
}

// WaitFor polls cond until it holds, failing the test after a minute.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
