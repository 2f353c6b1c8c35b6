package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
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
	for _, in := range [][]byte{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {5, '{'}, {2, 'x', 'y'}} {
		if err := Read(bufio.NewReader(bytes.NewReader(in)), &got, 100); err == nil {
			t.Errorf("Read(%x) accepted garbage", in)
		}
	}
}

// FuzzRead: any input reads as one message, io.EOF (nothing at all), or an
// error wrapping ErrTooLarge or ErrMalformed; no more than the length and
// max bytes are consumed; a frame over max is refused from its length
// alone; what reads writes back and reads the same; and every strict
// prefix of a frame that reads is an error, never a message.
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
