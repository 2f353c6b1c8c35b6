package phone

import (
	"context"
	"log/slog"
)

// pionQuieter lowers pion's log records (message "Pion", from call/media)
// by one level: pion warns about routine events of every call (pings
// before the first candidate pair, streams closed at hangup), which are
// not a terminal user's warnings.
type pionQuieter struct{ h slog.Handler }

const pionDemote = 4 // slog's distance between levels

func (q pionQuieter) Enabled(ctx context.Context, l slog.Level) bool {
	return q.h.Enabled(ctx, l-pionDemote)
}

func (q pionQuieter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "Pion" {
		r.Level -= pionDemote
	}
	if !q.h.Enabled(ctx, r.Level) {
		return nil
	}
	return q.h.Handle(ctx, r)
}

func (q pionQuieter) WithAttrs(as []slog.Attr) slog.Handler { return pionQuieter{q.h.WithAttrs(as)} }
func (q pionQuieter) WithGroup(name string) slog.Handler    { return pionQuieter{q.h.WithGroup(name)} }
