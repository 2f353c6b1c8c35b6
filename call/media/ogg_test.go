package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"time"
)

// oggPage builds one page with the given lacing values over payload.
func oggPage(flags byte, serial, seq uint32, lacing []byte, payload []byte) []byte {
	h := make([]byte, oggHeaderLen, oggHeaderLen+len(lacing)+len(payload))
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint32(h[14:], serial)
	binary.LittleEndian.PutUint32(h[18:], seq)
	h[26] = byte(len(lacing))
	h = append(h, lacing...)
	h = append(h, payload...)
	binary.LittleEndian.PutUint32(h[22:], oggCRC(h))
	return h
}

// lace returns the lacing values of packets laid out whole in one page.
func lace(pkts ...[]byte) ([]byte, []byte) {
	var lacing, payload []byte
	for _, p := range pkts {
		n := len(p)
		for n >= 255 {
			lacing = append(lacing, 255)
			n -= 255
		}
		lacing = append(lacing, byte(n))
		payload = append(payload, p...)
	}
	return lacing, payload
}

// opusHead is an OpusHead packet: version 1, stereo, pre-skip 3840, 48 kHz.
func opusHead() []byte {
	return []byte("OpusHead\x01\x02\x00\x0f\x80\xbb\x00\x00\x00\x00\x00")
}

func pkt(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func TestOpusReader(t *testing.T) {
	const serial = 7
	head := func() []byte { l, p := lace(opusHead()); return oggPage(0x02, serial, 0, l, p) }
	tags := func() []byte {
		l, p := lace([]byte("OpusTags\x04\x00\x00\x00irmv\x00\x00\x00\x00"))
		return oggPage(0, serial, 1, l, p)
	}
	big := pkt(0xb0, 600) // 600 bytes: lacing 255, 255, 90
	for _, tc := range []struct {
		name  string
		pages [][]byte
		want  [][]byte
	}{
		{"one packet a page", [][]byte{head(), tags(),
			func() []byte { l, p := lace(pkt(1, 3)); return oggPage(0, serial, 2, l, p) }(),
			func() []byte { l, p := lace(pkt(2, 4)); return oggPage(0, serial, 3, l, p) }(),
		}, [][]byte{pkt(1, 3), pkt(2, 4)}},
		{"many packets a page", [][]byte{head(), tags(),
			func() []byte { l, p := lace(pkt(1, 3), pkt(2, 255), pkt(3, 1)); return oggPage(0, serial, 2, l, p) }(),
		}, [][]byte{pkt(1, 3), pkt(2, 255), pkt(3, 1)}},
		{"packet across pages", [][]byte{head(), tags(),
			oggPage(0, serial, 2, []byte{1, 255}, append(pkt(1, 1), big[:255]...)),
			oggPage(0x01, serial, 3, []byte{255, 90, 2}, append(slices.Clone(big[255:]), pkt(4, 2)...)),
		}, [][]byte{pkt(1, 1), big, pkt(4, 2)}},
		{"continuation without start is dropped", [][]byte{head(), tags(),
			oggPage(0x01, serial, 2, []byte{5, 2}, append(pkt(9, 5), pkt(4, 2)...)),
		}, [][]byte{pkt(4, 2)}},
		{"other stream ignored", [][]byte{head(), tags(),
			func() []byte { l, p := lace(pkt(5, 5)); return oggPage(0, serial+1, 0, l, p) }(),
			func() []byte { l, p := lace(pkt(1, 3)); return oggPage(0, serial, 2, l, p) }(),
		}, [][]byte{pkt(1, 3)}},
		{"empty packets skipped", [][]byte{head(), tags(),
			oggPage(0, serial, 2, []byte{0, 3}, pkt(1, 3)),
		}, [][]byte{pkt(1, 3)}},
		{"truncated last page", [][]byte{head(), tags(),
			func() []byte { l, p := lace(pkt(1, 3)); return oggPage(0, serial, 2, l, p) }(),
			oggPage(0, serial, 3, []byte{50}, pkt(2, 50))[:40],
		}, [][]byte{pkt(1, 3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newOpusReader(bytes.NewReader(bytes.Join(tc.pages, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			for {
				p, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p)
			}
			if !slices.EqualFunc(got, tc.want, bytes.Equal) {
				t.Fatalf("got %d packets %x, want %d %x", len(got), got, len(tc.want), tc.want)
			}
		})
	}
}

func TestOpusReaderFixture(t *testing.T) {
	pkts := opusPackets(t, readFixture(t))
	// opusenc wrote 99 packets of 20 ms into pages of up to a second.
	if len(pkts) != 99 {
		t.Fatalf("%d packets, want 99", len(pkts))
	}
	for i, p := range pkts {
		if d := opusDuration(p); d != 20*time.Millisecond {
			t.Fatalf("packet %d lasts %v", i, d)
		}
	}
}

func TestOpusDuration(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		want time.Duration
	}{
		{[]byte{0 << 3}, 10 * time.Millisecond},       // SILK NB 10 ms
		{[]byte{3 << 3}, 60 * time.Millisecond},       // SILK NB 60 ms
		{[]byte{13 << 3}, 20 * time.Millisecond},      // hybrid 20 ms
		{[]byte{16 << 3}, 2500 * time.Microsecond},    // CELT 2.5 ms
		{[]byte{31<<3 | 1}, 40 * time.Millisecond},    // CELT 20 ms, two frames
		{[]byte{31<<3 | 3, 3}, 60 * time.Millisecond}, // CELT 20 ms, three frames (code 3)
		{[]byte{3<<3 | 3, 3}, 20 * time.Millisecond},  // 180 ms is over the limit: fallback
		{[]byte{31<<3 | 3}, 20 * time.Millisecond},    // code 3 without frame count
		{nil, 20 * time.Millisecond},
	} {
		if got := opusDuration(tc.pkt); got != tc.want {
			t.Errorf("opusDuration(%x) = %v, want %v", tc.pkt, got, tc.want)
		}
	}
}

func FuzzOpusReader(f *testing.F) {
	fixture := readFixture(f)
	f.Add(fixture)
	f.Add(fixture[:len(fixture)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := newOpusReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for range 10000 {
			p, err := r.Next()
			if err != nil {
				return
			}
			if len(p) == 0 || len(p) > oggMaxPacket {
				t.Fatalf("packet of %d bytes", len(p))
			}
			opusDuration(p)
		}
	})
}
