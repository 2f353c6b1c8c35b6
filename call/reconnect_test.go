package call_test

import (
	"testing"

	"github.com/irmv/irmv/node/nodetest"
	"github.com/irmv/irmv/record"
)

// TestOldConnectionClosesAfterNewer: a terminal that reconnects (a phone
// woken from a freeze, or one whose node dropped it) has its new
// WebSocket taken before the old one's close is handled; that close must
// not mark the terminal disconnected or offline. Only the close of the
// newest connection does.
func TestOldConnectionClosesAfterNewer(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	old := connect(t, n, "roamer")
	term := old.ack.Terminal
	newer := helloAs(t, n, old.ack)
	// The node closes the old connection for the newer one; the old
	// client's own close comes after as well.
	for range old.in {
	}
	old.conn.CloseNow()
	shown := func() record.Status {
		for _, tm := range n.Registry().List() {
			if tm.Terminal == term {
				return tm.Status
			}
		}
		t.Fatalf("terminal %s gone", term)
		return record.StatusUnknown
	}
	// The old connection's handler has ended (the gauge counts a replaced
	// WebSocket until then): its close was handled after the newer hello.
	nodetest.WaitFor(t, "the old connection's handler done", func() bool {
		return metric(t, n, "irmv_terminal_websockets") == 1
	})
	if !n.Calls().Connected(term) || shown() != record.StatusOnline {
		t.Fatalf("after the old connection closed: connected %v, shown %s; want connected and online", n.Calls().Connected(term), shown())
	}
	newer.conn.CloseNow()
	nodetest.WaitFor(t, "the terminal shown offline once its newest connection closed", func() bool {
		return !n.Calls().Connected(term) && shown() == record.StatusOffline
	})
}
