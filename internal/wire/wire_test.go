package wire

import (
	"bufio"
	"bytes"
	"errors"
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

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	Write(&buf, msg{"seed", 1}, 100)
	f.Add(buf.Bytes())
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var m msg
		Read(bufio.NewReader(bytes.NewReader(data)), &m, 64)
	})
}
