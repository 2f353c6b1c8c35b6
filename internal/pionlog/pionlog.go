// Package pionlog routes pion's leveled loggers (pion/webrtc, ice, turn)
// into log/slog; pion's default prints to stderr. Trace records get a
// level below slog's debug, debug stays debug, the others keep their level,
// except reports of a call into an ICE agent that is closed: at a call's
// end they are expected (a statistics read racing pion's own close) and
// go to debug.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pion/logging"
)

// agentClosed is the text of pion/ice's ErrClosed, written out: importing
// pion/ice would link it into builds without WebRTC (the node-only build).
const agentClosed = "the agent is closed"

// LevelTrace is the slog level of pion's trace records.
const LevelTrace = slog.LevelDebug - 4

// Factory returns a pion LoggerFactory writing to log, each logger with
// its pion scope as the "scope" attribute.
func Factory(log *slog.Logger) logging.LoggerFactory { return factory{log} }

type factory struct{ log *slog.Logger }

func (f factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{log: f.log.With("scope", scope)}
}

type logger struct{ log *slog.Logger }

func (l logger) emit(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	text := format
	if len(args) > 0 {
		text = fmt.Sprintf(format, args...)
	}
	if level > slog.LevelDebug && strings.HasSuffix(text, agentClosed) {
		if level = slog.LevelDebug; !l.log.Enabled(ctx, level) {
			return
		}
	}
	l.log.Log(ctx, level, "Pion", "text", text)
}

func (l logger) Trace(msg string)                  { l.emit(LevelTrace, "%s", msg) }
func (l logger) Tracef(format string, args ...any) { l.emit(LevelTrace, format, args...) }
func (l logger) Debug(msg string)                  { l.emit(slog.LevelDebug, "%s", msg) }
func (l logger) Debugf(format string, args ...any) { l.emit(slog.LevelDebug, format, args...) }
func (l logger) Info(msg string)                   { l.emit(slog.LevelInfo, "%s", msg) }
func (l logger) Infof(format string, args ...any)  { l.emit(slog.LevelInfo, format, args...) }
func (l logger) Warn(msg string)                   { l.emit(slog.LevelWarn, "%s", msg) }
func (l logger) Warnf(format string, args ...any)  { l.emit(slog.LevelWarn, format, args...) }
func (l logger) Error(msg string)                  { l.emit(slog.LevelError, "%s", msg) }
func (l logger) Errorf(format string, args ...any) { l.emit(slog.LevelError, format, args...) }
