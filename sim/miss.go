package sim

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/irmv/irmv/internal/p2pstream"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// askErrors keeps the last error of each failed lookup request a node sent
// (search logs "Lookup failed" with the peer and the error), so that a
// missed lookup can say why asking the hosting node failed.
type askErrors struct {
	mu   sync.Mutex
	last map[peer.ID]error
}

func (a *askErrors) Enabled(context.Context, slog.Level) bool { return true }
func (a *askErrors) WithAttrs([]slog.Attr) slog.Handler       { return a }
func (a *askErrors) WithGroup(string) slog.Handler            { return a }

func (a *askErrors) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "Lookup failed" {
		return nil
	}
	var p peer.ID
	var err error
	r.Attrs(func(at slog.Attr) bool {
		switch at.Key {
		case "peer":
			p, _ = at.Value.Any().(peer.ID)
		case "err":
			err, _ = at.Value.Any().(error)
		}
		return true
	})
	if p != "" && err != nil {
		a.mu.Lock()
		if a.last == nil {
			a.last = map[peer.ID]error{}
		}
		a.last[p] = err
		a.mu.Unlock()
	}
	return nil
}

// take returns and forgets the last error of a request to p.
func (a *askErrors) take(p peer.ID) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.last[p]
	delete(a.last, p)
	return err
}

// Reasons a lookup missed (Result.Misses).
const (
	missNoProvider    = "dht named no provider"
	missNoRecord      = "dht named no provider, no live node stores the record"
	missOtherProvider = "dht named only other providers"
	missAskNotSupp    = "ask failed: protocol not supported"
	missAskReset      = "ask failed: stream reset"
	missAskTimeout    = "ask failed: timeout"
	missAskCut        = "ask cut off: the search ended"
	missAskDial       = "ask failed: dial"
	missAskOther      = "ask failed: "
	missAskNoError    = "ask answered without the terminal"
	missSearch        = "search refused"
)

// askReason names the kind of a failed request to the hosting node.
func askReason(err error) string {
	var se *network.StreamError
	switch {
	case err == nil:
		return missAskNoError
	case errors.Is(err, p2pstream.ErrNotSupported):
		return missAskNotSupp
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return missAskTimeout
	case errors.Is(err, context.Canceled):
		return missAskCut
	case errors.Is(err, network.ErrReset), errors.As(err, &se):
		return missAskReset
	case strings.Contains(err.Error(), "dial"), strings.Contains(err.Error(), "connection failed"):
		return missAskDial
	}
	return missAskOther + err.Error()
}
