// Package logging builds the one slog handler that irmv and libp2p share.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/libp2p/go-libp2p/gologshim"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error") in format ("text" or "json"), and routes go-libp2p's logs
// through the same handler.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	gologshim.SetDefaultHandler(h)
	l := slog.New(h)
	// Libraries that use the standard log package (mDNS) go through it too.
	slog.SetDefault(l)
	return l, nil
}
