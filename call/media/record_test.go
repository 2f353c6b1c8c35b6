package media

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/transport/v5/test"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
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
	// The recording declares the source's pre-skip (opusenc's 312, not
	// oggwriter's 3840), so a player starts it where the source started.
	if got, want := preSkip(t, rec.Bytes()), preSkip(t, fixture); got != want {
		t.Errorf("recording's pre-skip %d, the source's %d", got, want)
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

// preSkip is the pre-skip of an Ogg/Opus stream's OpusHead (pion's reader
// checks the page's checksum).
func preSkip(tb testing.TB, b []byte) uint16 {
	tb.Helper()
	_, h, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	return h.PreSkip
}

// TestRecordNoAudioLeavesNothing: a call that received no audio leaves its
// recording empty, not an Ogg stream without audio.
func TestRecordNoAudioLeavesNothing(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	p := newPair(t, Options{}, Options{})
	t.Cleanup(func() { p.close(t) })
	var rec bytes.Buffer
	waitRec, err := p.callee.StartRecording(&rec)
	if err != nil {
		t.Fatal(err)
	}
	p.negotiate(t, nil, nil)
	wait(t, p.callee.Connected(), "connected")
	p.close(t)
	if err := waitRec(); err != nil {
		t.Fatal(err)
	}
	if rec.Len() != 0 {
		t.Fatalf("recording of a silent call has %d bytes, want none", rec.Len())
	}
}

// TestRecordFileEndsOnLastPage: recorded into a file, the stream's last
// page carries audio and the end-of-stream flag, with no empty page after
// it (RFC 3533 section 6; RFC 7845 section 4 frowns on empty EOS pages).
func TestRecordFileEndsOnLastPage(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	fixture := readFixture(t)
	p := newPair(t, Options{}, Options{})
	t.Cleanup(func() { p.close(t) })
	f, err := os.Create(filepath.Join(t.TempDir(), "rec.ogg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	waitRec, err := p.callee.StartRecording(f)
	if err != nil {
		t.Fatal(err)
	}
	played := make(chan error, 1)
	go func() { played <- p.caller.Play(bytes.NewReader(fixture)) }()
	p.negotiate(t, nil, nil)
	wait(t, p.callee.FirstPacket(), "first packet")
	if err := <-played; err != nil {
		t.Fatalf("Play: %v", err)
	}
	p.close(t)
	if err := waitRec(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got := opusPackets(t, b); len(got) == 0 {
		t.Fatal("no audio recorded")
	}
	// Walk to the last page.
	var last []byte
	for len(b) >= 27 {
		nseg := int(b[26])
		size := 27 + nseg
		for _, l := range b[27 : 27+nseg] {
			size += int(l)
		}
		last, b = b[:size], b[size:]
	}
	if last == nil || last[5]&0x04 == 0 {
		t.Fatal("last page does not end the stream")
	}
	if last[26] == 0 {
		t.Fatal("the stream ends with an empty page")
	}
}
