package media

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/transport/v5/test"
)

// TestRecordFromFirstPacket: a recording started before the call records
// every packet from the first, even when the caller plays the moment it is
// connected.
func TestRecordFromFirstPacket(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	fixture := readFixture(t)
	want := opusPackets(t, fixture)
	var received atomic.Int64
	all := make(chan struct{})
	p := newPair(t, Options{}, Options{OnTrackPacket: func(*rtp.Packet) {
		if received.Add(1) == int64(len(want)) {
			close(all)
		}
	}})
	t.Cleanup(func() { p.close(t) })

	var rec bytes.Buffer
	waitRec, err := p.callee.StartRecording(&rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.callee.StartRecording(io.Discard); !errors.Is(err, ErrRecording) {
		t.Errorf("second StartRecording: %v, want ErrRecording", err)
	}
	played := make(chan error, 1)
	go func() { played <- p.caller.Play(bytes.NewReader(fixture)) }()
	p.negotiate(t, nil, nil)
	select {
	case <-all:
	case <-time.After(waitLong + 2*time.Duration(len(want))*20*time.Millisecond):
		t.Fatalf("received %d of %d packets", received.Load(), len(want))
	}
	if err := <-played; err != nil {
		t.Fatalf("Play: %v", err)
	}
	p.close(t)
	if err := waitRec(); err != nil {
		t.Fatalf("recording: %v", err)
	}
	got := opusPackets(t, rec.Bytes())
	if len(got) == 0 || !bytes.Equal(got[0], want[0]) {
		t.Fatalf("first recorded packet is not the first played (%d recorded)", len(got))
	}
	if len(got) != len(want) {
		t.Fatalf("recorded %d packets, played %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("packet %d differs", i)
		}
	}
}
