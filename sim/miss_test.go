package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/irmv/irmv/internal/p2pstream"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A failed request logged by search is kept for its peer and named by kind.
func TestMissReason(t *testing.T) {
	var a askErrors
	log := slog.New(&a)
	p := peer.ID("host")
	log.Debug("Lookup failed", "peer", p, "err", fmt.Errorf("read: %w", network.ErrReset))
	log.Debug("Something else", "peer", peer.ID("other"), "err", errors.New("x"))
	if got := askReason(a.take(p)); got != missAskReset {
		t.Fatalf("reason %q, want %q", got, missAskReset)
	}
	if err := a.take(p); err != nil {
		t.Fatalf("error kept after take: %v", err)
	}
	if err := a.take("other"); err != nil {
		t.Fatalf("a message other than a failed lookup was kept: %v", err)
	}
	for err, want := range map[error]string{
		nil: missAskNoError,
		fmt.Errorf("%w /irmv/lookup/1.0.0: na", p2pstream.ErrNotSupported): missAskNotSupp,
		context.DeadlineExceeded:                   missAskTimeout,
		context.Canceled:                           missAskCut,
		errors.New("failed to dial: no addresses"): missAskDial,
		errors.New("odd"):                          missAskOther + "odd",
	} {
		if got := askReason(err); got != want {
			t.Errorf("askReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// A miss without a provider says whether a node storing the record was
// asked and how its request failed.
func TestHolderFailures(t *testing.T) {
	tr := newTrace()
	tr.queried = []peer.ID{"a", "b", "a"}
	holdsNone := func(peer.ID) bool { return false }
	holdsB := func(p peer.ID) bool { return p == "b" }
	if got, want := tr.holderFailures(holdsNone), ", no node storing the record was asked"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := tr.holderFailures(holdsB), ", nodes storing the record answered without it"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	tr.dhtFailed("b", fmt.Errorf("%w /irmv/kad/1.0.0: na", p2pstream.ErrNotSupported))
	if got, want := tr.holderFailures(holdsB), ", a request to a node storing the record failed: protocol not supported"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// A miss lists whom the query asked, closest first, with the step each
// was asked at, dead and failed ones marked, and where the record is.
func TestAsked(t *testing.T) {
	tr := newTrace()
	tr.queried = []peer.ID{"a", "b", "c", "a"}
	tr.depth = map[peer.ID]int{"a": 1, "b": 2, "c": 1}
	tr.dhtFailed("b", errors.New("reset"))
	rank := map[peer.ID]int{"a": 9, "b": 4}
	got := tr.asked(func(p peer.ID) int { return rank[p] }, func(p peer.ID) bool { return p == "c" }, []string{"1", "2h"})
	if want := "asked 3 (1 dead): x:r 4:2! 9:r; record on live ranks 1 2h"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
