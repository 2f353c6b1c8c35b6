package phone

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
)

// TestLegRecordPath: a conference's --record PATH gives each party its own
// Ogg file, with .ogg even when PATH has no extension.
func TestLegRecordPath(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"/tmp/conf.ogg", "/tmp/conf-bob.ogg"},
		{"/tmp/conf", "/tmp/conf-bob.ogg"},
		{"conf.opus", "conf-bob.opus"},
		{"/tmp/a.b/conf", "/tmp/a.b/conf-bob.ogg"},
	} {
		if got := legRecordPath(c.file, "bob"); got != c.want {
			t.Errorf("legRecordPath(%q) = %q, want %q", c.file, got, c.want)
		}
	}
}

// TestSilentPartyLeavesNoRecording: recording a party that sends no audio
// leaves no file, neither during the call (a 0-byte .ogg that no player
// opens) nor after it, and "ended" names no recording.
func TestSilentPartyLeavesNoRecording(t *testing.T) {
	nodes := startNodes(t, 2)
	evB, recDir := newEvents(), t.TempDir()
	b := startPhone(t, nodes[1], Options{
		Registration: client.Registration{UID: "silent-callee"},
		Answer:       AnswerAuto,
		RecordDir:    recDir,
		OnEvent:      evB.add,
	})
	evA := newEvents()
	a := startPhone(t, nodes[0], Options{Registration: client.Registration{UID: "silent-caller"}, OnEvent: evA.add})
	evA.wait(t, client.EventRegistered, "")
	res := find(t, apiClient(t, nodes[0]), "uid:silent-callee", b.Ack().Terminal)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := a.Call(ctx, res, CallOptions{}) // plays nothing
	if err != nil {
		t.Fatalf("Call: %v (events %s)", err, evA)
	}
	evB.wait(t, client.EventConnected, c.ID())
	evA.wait(t, client.EventConnected, c.ID())
	// Both sides' chat channel is open: the call is fully up, and a
	// recording created up front would be there by now.
	select {
	case <-incoming(t, b).Peer().ChatReady():
	case <-time.After(waitLong):
		t.Fatal("chat channel not open")
	}
	if files := dirFiles(t, recDir); len(files) != 0 {
		t.Errorf("during the call: %v in the recording directory, want nothing", files)
	}
	if err := c.Hangup(); err != nil {
		t.Fatal(err)
	}
	if end := evB.wait(t, client.EventEnded, c.ID()); end.Record != "" {
		t.Errorf("ended names recording %q", end.Record)
	}
	if files := dirFiles(t, recDir); len(files) != 0 {
		t.Errorf("after the call: %v in the recording directory, want nothing", files)
	}
}

func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
