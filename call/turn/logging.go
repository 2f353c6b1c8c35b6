package turn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion/turn's leveled loggers into slog (pion's default
// prints to stderr): trace and debug become slog debug records, the others
// keep their level.
type pionLogs struct{ log *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{log: f.log.With("scope", scope)}
}

type pionLogger struct{ log *slog.Logger }

func (l pionLogger) emit(level slog.Level, format string, args ...any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	text := format
	if len(args) > 0 {
		text = fmt.Sprintf(format, args...)
	}
	l.log.Log(ctx, level, "Pion", "text", text)
}

func (l pionLogger) Trace(msg string)                  { l.emit(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.emit(slog.LevelDebug, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.emit(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.emit(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.emit(slog.LevelInfo, "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.emit(slog.LevelInfo, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.emit(slog.LevelWarn, "%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.emit(slog.LevelWarn, format, args...) }
func (l pionLogger) Error(msg string)                  { l.emit(slog.LevelError, "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.emit(slog.LevelError, format, args...) }
