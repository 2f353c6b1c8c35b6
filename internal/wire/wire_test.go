package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
)

type msg struct {
	A string `json:"a"`
	B int    `json:"b"`
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, msg{"x", 7}, 100); err != nil {
		t.Fatal(err)
	}
	var got msg
	if err := Read(bufio.NewReader(&buf), &got, 100); err != nil || got != (msg{"x", 7}) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestLimits(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, msg{A: string(make([]byte, 200))}, 100); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write over limit: %v", err)
	}
	buf.Reset()
	Write(&buf, msg{A: "long enough to exceed"}, 1000)
	var got msg
	if err := Read(bufio.NewReader(&buf), &got, 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("read over limit: %v", err)
	}
	for _, in := range [][]byte{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {5, '{'}, {2, 'x', 'y'}, {0}, {0, 2, '{', '}'}} {
		if err := Read(bufio.NewReader(bytes.NewReader(in)), &got, 100); !errors.Is(err, ErrMalformed) {
			t.Errorf("Read(%x) = %v, want ErrMalformed", in, err)
		}
	}
}

// An unbuffered reader gives up no byte after the frame: the next frame
// on the same stream reads whole.
func TestUnbufferedReadsOneFrame(t *testing.T) {
	var buf bytes.Buffer
	for i := range 3 {
		if err := Write(&buf, msg{"m", i}, 100); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(buf.Bytes())
	for i := range 3 {
		var got msg
		if err := Read(r, &got, 100); err != nil || got != (msg{"m", i}) {
			t.Fatalf("frame %d: %+v, %v", i, got, err)
		}
	}
	if err := Read(r, &msg{}, 100); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// allocated returns the fewest bytes ReadBody allocated over a few reads
// of data (other goroutines can only add to a measurement).
func allocated(data []byte, max int) uint64 {
	var least uint64 = 1 << 63
	var before, after runtime.MemStats
	for range 3 {
		r := bytes.NewReader(data)
		runtime.ReadMemStats(&before)
		_, _ = ReadBody(r, max)
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// allocBound is what reading len(data) bytes may allocate, whatever length
// the frame announces: the growing buffer's doublings and a first chunk.
func allocBound(n int) uint64 { return uint64(4*n + 4*chunk) }

func TestAllocationFollowsData(t *testing.T) {
	const max = 16 << 20
	claim := binary.AppendUvarint(nil, max)
	for _, sent := range []int{0, 10, 5000, 100 << 10} {
		data := append(claim, make([]byte, sent)...)
		if got := allocated(data, max); got > allocBound(len(data)) {
			t.Errorf("a frame announcing %d bytes with %d sent allocated %d bytes (bound %d)", max, sent, got, allocBound(len(data)))
		}
	}
}

// FuzzRead: any input reads as one message, io.EOF (nothing at all), or an
// error wrapping ErrTooLarge or ErrMalformed; no more than the length and
// max bytes are consumed; a frame over max is refused from its length
// alone; what reads writes back and reads the same; and every strict
// prefix of a frame that reads is an error, never a message; an
// unbuffered read consumes exactly the frame; and what a read allocates
// follows the input's length, not the length the frame announces.
func FuzzRead(f *testing.F) {
	const max = 64
	var buf bytes.Buffer
	Write(&buf, msg{"seed", 1}, max)
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte("\x0c{\"a\":\"<&>\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Whatever length the input announces, memory follows the bytes
		// that arrived.
		if got := allocated(data, 1<<30); got > allocBound(len(data)) {
			t.Fatalf("%d input bytes allocated %d (bound %d)", len(data), got, allocBound(len(data)))
		}
		var m msg
		r := bytes.NewReader(data)
		err := Read(bufio.NewReaderSize(r, 16), &m, max)
		size, n := binary.Uvarint(data)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			if len(data) != 0 {
				t.Fatalf("io.EOF for %d bytes", len(data))
			}
			return
		case errors.Is(err, ErrTooLarge):
			if n <= 0 || size <= max {
				t.Fatalf("ErrTooLarge for a frame of %d bytes (length field %d)", size, n)
			}
			return
		case errors.Is(err, ErrMalformed):
			return
		default:
			t.Fatalf("unclassified error: %v", err)
		}
		if n <= 0 || size > max || uint64(len(data)) < uint64(n)+size {
			t.Fatalf("read %+v from %x: not one frame of at most %d bytes", m, data, max)
		}
		frame := data[:n+int(size)]
		// Bounded: bufio reads ahead in 16-byte chunks at most.
		if consumed := len(data) - r.Len(); consumed > len(frame)+16 {
			t.Fatalf("consumed %d bytes for a frame of %d", consumed, len(frame))
		}
		for i := range frame {
			var p msg
			if err := Read(bufio.NewReader(bytes.NewReader(frame[:i])), &p, max); err == nil {
				t.Fatalf("prefix %x of %x read as %+v", frame[:i], frame, p)
			}
		}
		// Unbuffered, exactly the frame is consumed.
		r = bytes.NewReader(data)
		if err := Read(r, &msg{}, max); err != nil || len(data)-r.Len() != len(frame) {
			t.Fatalf("unbuffered read consumed %d bytes of a %d-byte frame (%v)", len(data)-r.Len(), len(frame), err)
		}
		// JSON may re-encode longer (escapes), hence the larger limit.
		var out bytes.Buffer
		if err := Write(&out, m, 8*max); err != nil {
			t.Fatalf("Write(%+v): %v", m, err)
		}
		var again msg
		if err := Read(bufio.NewReader(&out), &again, 8*max); err != nil || again != m {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
	})
}
