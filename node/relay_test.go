package node_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/call/turn/grant"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// turnOf is the TURN server among servers whose URL names addr, if any.
func turnOf(servers []signal.ICEServer, addr string) (signal.ICEServer, bool) {
	for _, s := range servers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:"+addr) {
				return s, true
			}
		}
	}
	return signal.ICEServer{}, false
}

// A node whose relay address is not public (here: loopback) borrows the
// relay of a node that lends its own (here: named with --turn-relay-ip)
// for its terminals and the other side of their calls; the credentials
// allocate on the lender's relay, as a foreign user named after the
// borrower, and the lender's quota per node holds.
func TestPrivateNodeBorrowsPublicRelay(t *testing.T) {
	nodes := nodetest.Chain(t, 2, func(i int, o *node.Options) {
		if i == 0 {
			o.TURNRelayIP = net.IPv4(127, 0, 0, 1) // the operator says: reachable
		}
	})
	lender, borrower := nodes[0], nodes[1]
	lendAddr := lender.TURN().Addr().String()
	ownAddr := borrower.TURN().Addr().String()

	if _, ok := turnOf(lender.ICEServersForTest("t"), ownAddr); ok {
		t.Fatalf("the lender borrowed: %v", lender.ICEServersForTest("t"))
	}
	got := borrower.ICEServersForTest("t")
	if _, ok := turnOf(got, ownAddr); !ok {
		t.Fatalf("welcome lacks the borrower's own relay %s: %v", ownAddr, got)
	}
	lent, ok := turnOf(got, lendAddr)
	if !ok {
		t.Fatalf("welcome lacks the lender's relay %s: %v", lendAddr, got)
	}
	if want := ":" + turn.ForeignPrefix + borrower.ID().String(); !strings.HasSuffix(lent.Username, want) {
		t.Errorf("lent username %q: want it to end in %q", lent.Username, want)
	}
	peerSide, ok := turnOf(borrower.PeerICEServersForTest(lender.ID()), lendAddr)
	if !ok || peerSide.Username != lent.Username {
		t.Errorf("the other side of a call gets %+v, want the lent relay %+v", peerSide, lent)
	}

	// The credentials allocate on the lender's relay.
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: lendAddr, TURNServerAddr: lendAddr,
		Username: lent.Username, Password: lent.Credential, Realm: turn.DefaultRealm,
		Conn: conn, RTO: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocating with lent credentials: %v", err)
	}
	relay.Close()

	// Quota: a node asking without pause is refused within the burst.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	refused := false
	for range grant.Burst + 2 {
		if _, err := grant.Fetch(ctx, borrower.Host(), lender.ID()); errors.Is(err, grant.ErrRefused) {
			refused = true
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !refused {
		t.Errorf("%d grants in a row: none refused", grant.Burst+2)
	}
	// A node that lends nothing does not answer the protocol.
	if _, err := grant.Fetch(ctx, lender.Host(), borrower.ID()); err == nil {
		t.Error("a node with a private relay lent it")
	}
}
