package phone

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/irmv/irmv/call/policy"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// numberedOgg writes an Ogg/Opus file of n 20 ms packets, each carrying
// its index after the first packet's TOC byte (nothing decodes them: the
// recording at the other end shows which arrived).
func numberedOgg(tb testing.TB, n int) string {
	tb.Helper()
	src, err := os.ReadFile(fixture)
	if err != nil {
		tb.Fatal(err)
	}
	toc := oggPackets(tb, src)[0][0]
	path := filepath.Join(tb.TempDir(), "numbered.ogg")
	w, err := oggwriter.New(path, 48000, 2)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		pkt := make([]byte, 40)
		pkt[0] = toc
		binary.BigEndian.PutUint32(pkt[1:], uint32(i))
		if err := w.WriteRTP(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: pkt}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// gapOf reads a recording of numberedOgg packets: how many arrived, and
// the longest run missing between the first and the last that did.
func gapOf(tb testing.TB, path string) (got, longest int) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	prev := -1
	for _, p := range oggPackets(tb, b) {
		i := int(binary.BigEndian.Uint32(p[1:]))
		if prev >= 0 && i-prev-1 > longest {
			longest = i - prev - 1
		}
		prev = i
		got++
	}
	return got, longest
}

// TestCallSurvivesMove: during a 20 s call the callee moves to another
// node and then to the caller's (Phone.Move, its old address still up):
// the call goes on, the caller sees route events "moved" and no end, the
// call's signalling follows the callee, and the recording misses at most
// the measured gap.
func TestCallSurvivesMove(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 s call")
	}
	const callFor = 20 * time.Second
	nodes := startNodes(t, 3)
	play := numberedOgg(t, int(callFor/(20*time.Millisecond)))
	evB := newEvents()
	callee := startPhone(t, nodes[0], Options{Registration: client.Registration{UID: "mover"}, Answer: AnswerAuto, Play: play, OnEvent: evB.add})
	evA := newEvents()
	rec := filepath.Join(t.TempDir(), "call.ogg")
	caller := startPhone(t, nodes[2], Options{Registration: client.Registration{UID: "stayer"}, OnEvent: evA.add})
	res := find(t, apiClient(t, nodes[2]), "uid:mover", callee.Ack().Terminal)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := caller.Call(ctx, res, CallOptions{Record: rec, HangupAfter: callFor})
	if err != nil {
		t.Fatalf("Call: %v (%s)", err, evA)
	}
	evA.wait(t, client.EventConnected, c.ID())
	// The moves come in the middle of the call: after 5 and 10 of the
	// caller's quality samples (one a second).
	waitSamples(t, evA, c.ID(), 5)
	moved := time.Now()
	if err := callee.Move(ctx, apiClient(t, nodes[1])); err != nil {
		t.Fatalf("Move: %v", err)
	}
	route := evA.wait(t, client.EventRoute, c.ID())
	t.Logf("caller's route event %v after the move: %s → %s (%s)", route.Time.Sub(moved), route.From, route.To, route.Reason)
	if route.Reason != ReasonMoved {
		t.Errorf("route event reason %q, want %q", route.Reason, ReasonMoved)
	}
	if nodes[1].Calls().Calls() != 1 {
		t.Errorf("the new node relays %d calls, want 1", nodes[1].Calls().Calls())
	}

	// Then on to the caller's own node: the call leaves the node-to-node
	// path altogether.
	waitSamples(t, evA, c.ID(), 10)
	moved = time.Now()
	if err := callee.Move(ctx, apiClient(t, nodes[2])); err != nil {
		t.Fatalf("second Move: %v", err)
	}
	nodetest.WaitFor(t, "a second route event", func() bool { return len(evA.all(client.EventRoute)) >= 2 })
	t.Logf("caller's second route event %v after the move to its own node", evA.all(client.EventRoute)[1].Time.Sub(moved))
	ended := evA.wait(t, client.EventEnded, c.ID())
	if ended.Reason != "hangup" {
		t.Fatalf("call ended: %q, want the caller's hangup (%s)", ended.Reason, evA)
	}
	got, gap := gapOf(t, ended.Record)
	t.Logf("recorded %d of %d packets; longest gap %d packets (%d ms)", got, int(callFor/(20*time.Millisecond)), gap, gap*20)
	if gap*20 > 1000 {
		t.Errorf("audio gap of %d ms in a make-before-break move", gap*20)
	}
	if got < int(callFor/(20*time.Millisecond))*3/4 {
		t.Errorf("recorded only %d packets", got)
	}
}

// all returns the events of type typ so far.
func (e *events) all(typ string) []client.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []client.Event
	for _, ev := range e.list {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// waitSamples waits until call has had n quality samples.
func waitSamples(tb testing.TB, e *events, call string, n int) {
	tb.Helper()
	nodetest.WaitFor(tb, "quality samples", func() bool {
		k := 0
		for _, ev := range e.all(client.EventQuality) {
			if ev.Call == call {
				k++
			}
		}
		return k >= n
	})
}

// TestSameKeySameNode: a second Phone with the same key at the same node
// (two `irmv phone` with the default --key) takes the terminal over and
// the first stops (ErrReplaced), as it does when the second registers at
// another node. Both kept reconnecting, each taking the WebSocket from the
// other, once a second; the second stays connected.
func TestSameKeySameNode(t *testing.T) {
	nodes := startNodes(t, 1)
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	evA, evB := newEvents(), newEvents()
	a := startPhone(t, nodes[0], Options{Registration: client.Registration{Name: "Eve One"}, Key: key, Answer: AnswerAuto, OnEvent: evA.add})
	b := startPhone(t, nodes[0], Options{Registration: client.Registration{Name: "Fay Two"}, Key: key, Answer: AnswerAuto, OnEvent: evB.add})
	select {
	case <-a.Done():
	case <-time.After(waitLong):
		t.Fatalf("the first phone did not stop: %s", evA)
	}
	if !errors.Is(a.Err(), ErrReplaced) {
		t.Errorf("first phone's Err: %v, want ErrReplaced", a.Err())
	}
	if e := evA.wait(t, client.EventSuperseded, ""); !strings.Contains(e.Reason, "another phone with this key") {
		t.Errorf("superseded event: %q", e.Reason)
	}
	select {
	case <-b.Done():
		t.Fatalf("the second phone stopped too: %v", b.Err())
	default:
	}
	// The second keeps the terminal: no lost connections, and it stays
	// the one connected (a reconnecting first phone took it within a
	// second).
	for range 3 {
		time.Sleep(time.Second)
		if w := evB.all(client.EventWarning); len(w) > 0 || !nodes[0].Calls().Connected(b.Ack().Terminal) {
			t.Fatalf("second phone: warnings %v, connected %v", w, nodes[0].Calls().Connected(b.Ack().Terminal))
		}
	}
	if ts := nodes[0].Registry().List(); len(ts) != 1 || ts[0].Identifiers.Name != "Fay Two" {
		t.Errorf("registered: %+v", ts)
	}
}

// TestFailoverEndsDisconnected: a Phone whose node died and that moved to
// another node (irmv phone's failover) is no longer disconnected once the
// move returned. Disconnected kept counting until the reconnect loop's
// next try (up to ReconnectMax later), so irmv phone failed over again
// at once, back to the dead node.
func TestFailoverEndsDisconnected(t *testing.T) {
	nodes := startNodes(t, 2)
	p := startPhone(t, nodes[0], Options{Registration: client.Registration{UID: "fails-over"}, Answer: AnswerAuto})
	if err := nodes[0].Close(); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "the phone disconnected", func() bool { return p.Disconnected() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if err := p.Move(ctx, apiClient(t, nodes[1])); err != nil {
		t.Fatal(err)
	}
	// Until the reconnect loop has taken the new connection up (its next
	// try, up to ReconnectMax later), the Phone stays connected.
	for end := time.Now().Add(policy.ReconnectMax + time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if d := p.Disconnected(); d != 0 {
			t.Fatalf("after the move to a live node: disconnected for %v", d)
		}
	}
}
