package node_test

import (
	"github.com/irmv/irmv/internal/testenv"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// A bootstrap node that accepts each connection and drops it at once (an
// overloaded node whose resource manager refuses the peer after the
// handshake, say) is redialled with backoff, not in a tight loop: a dial
// that connects only to be dropped is no success.
func TestBootstrapFlappingBacksOff(t *testing.T) {
	boot, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { boot.Close() })
	// At start the bootstrapper, the DHT and the relay keeper each dial
	// it a few times (5 or 6 in all over the window below, with
	// backoff); a redial loop makes hundreds.
	const tooMany = 20
	var conns atomic.Int64
	loop := make(chan struct{})
	boot.Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if conns.Add(1) == tooMany {
			close(loop)
		}
		go c.Close()
	}})
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: boot.ID(), Addrs: boot.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	o := nodetest.Options(t)
	o.Bootstrap = []string{addrs[0].String()}
	o.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	n := nodetest.Start(t, o)
	// An observation window: load only makes fewer dials.
	window := time.NewTimer(6 * time.Second)
	defer window.Stop()
	select {
	case <-loop:
		t.Fatalf("%d connections to a bootstrap node that drops them: redialled without backoff", tooMany)
	case <-window.C:
	}
	if conns.Load() == 0 {
		t.Fatal("bootstrap node never dialled")
	}
	// The API tells why, and when the next dial comes (the DHT and the
	// relay keeper dial it too, so it may be up for a moment: the error
	// stays until a connection has lasted).
	nodetest.WaitFor(t, "the drop reported", func() bool {
		info := n.Info().Bootstrap
		return len(info.Peers) == 1 && info.Peers[0].Error == "connection dropped at once" &&
			(info.Peers[0].Connected || info.Peers[0].NextDial != "")
	})
}

// TestBootstrapJoinLogged: each node that joins through a bootstrap node
// says so at info, whichever of its parts dialled it first (the DHT and
// the relay keeper dial the bootstrap nodes too; when one of them won, the
// node said nothing while others did).
func TestBootstrapJoinLogged(t *testing.T) {
	first := nodetest.Start(t, nodetest.Options(t))
	addr := nodetest.LoopbackAddr(t, first)
	for i := range 3 {
		var logs testenv.SyncBuffer
		o := nodetest.Options(t)
		o.Bootstrap = []string{addr}
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		n := nodetest.Start(t, o)
		var info client.NodeInfo
		nodetest.WaitFor(t, "bootstrap connected", func() bool {
			getJSON(t, n.APIURL()+"/v1/node", &info)
			return info.Bootstrap.State == client.BootConnected
		})
		want := `msg="Connected to bootstrap node" addr=` + addr
		nodetest.WaitFor(t, "the join logged", func() bool { return strings.Contains(logs.String(), want) })
		if c := strings.Count(logs.String(), "Connected to bootstrap node"); c != 1 {
			t.Errorf("node %d: joined, logged %d times:\n%s", i, c, logs.String())
		}
	}
}
