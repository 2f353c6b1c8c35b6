package pionlog

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/pion/ice/v4"
)

// TestClosedAgentIsDebug: pion's error about a call into a closed ICE
// agent (a statistics read at a call's end) is not shown at the default
// level; other errors are.
func TestClosedAgentIsDebug(t *testing.T) {
	if agentClosed != ice.ErrClosed.Error() {
		t.Fatalf("agentClosed %q, pion/ice's ErrClosed says %q", agentClosed, ice.ErrClosed)
	}
	var b bytes.Buffer
	l := Factory(slog.New(slog.NewTextHandler(&b, nil))).NewLogger("ice")
	l.Errorf("Failed to get selected candidate pair stats: %v", fmt.Errorf("wrapped: %w", ice.ErrClosed))
	if b.Len() != 0 {
		t.Errorf("closed-agent error logged at the default level: %s", b.String())
	}
	l.Errorf("Failed to read: %v", "boom")
	if !strings.Contains(b.String(), "boom") || !strings.Contains(b.String(), "level=ERROR") {
		t.Errorf("other error: %q", b.String())
	}
	var d bytes.Buffer
	Factory(slog.New(slog.NewTextHandler(&d, &slog.HandlerOptions{Level: slog.LevelDebug}))).NewLogger("ice").Warnf("x: %v", ice.ErrClosed)
	if !strings.Contains(d.String(), "level=DEBUG") {
		t.Errorf("closed-agent warning at debug: %q", d.String())
	}
}
