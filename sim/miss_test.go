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
