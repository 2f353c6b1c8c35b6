package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Ogg page layout (RFC 3533 section 6).
const (
	oggHeaderLen      = 27
	oggFlagContinued  = 0x01
	oggSegmentsOffset = 26
	oggSerialOffset   = 14
	oggCRCOffset      = 22
	oggMaxPacket      = 1 << 20 // larger packets are not Opus (RFC 6716 allows ~1275 B a frame)
)

// teeBuffer remembers the bytes read through it since the last reset, so that
// the segment table of the page oggreader just parsed can be looked at.
type teeBuffer struct {
	r   io.Reader
	buf []byte
}

func (t *teeBuffer) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	return n, err
}

// opusReader yields the Opus packets of an Ogg/Opus stream (RFC 7845). Pages
// come from pion's oggreader; the packets within them are split with the
// page's lacing values, since encoders such as opusenc put up to a second of
// packets into one page, and joined where they continue on the next page.
type opusReader struct {
	tee     *teeBuffer
	ogg     *oggreader.OggReader
	serial  uint32
	queue   [][]byte
	partial []byte
	tags    bool // the OpusTags packet was seen (and dropped)
}

func newOpusReader(r io.Reader) (*opusReader, error) {
	tee := &teeBuffer{r: r}
	ogg, _, err := oggreader.NewWith(tee)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotOpus, err)
	}
	if len(tee.buf) < oggHeaderLen {
		return nil, ErrNotOpus
	}
	o := &opusReader{tee: tee, ogg: ogg, serial: binary.LittleEndian.Uint32(tee.buf[oggSerialOffset:])}
	tee.buf = tee.buf[:0]
	return o, nil
}

// Next returns the next audio packet, or io.EOF at the end of the stream.
func (o *opusReader) Next() ([]byte, error) {
	for len(o.queue) == 0 {
		if err := o.readPage(); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, io.EOF // a truncated last page ends the stream
			}
			return nil, err
		}
	}
	pkt := o.queue[0]
	o.queue = o.queue[1:]
	return pkt, nil
}

func (o *opusReader) readPage() error {
	o.tee.buf = o.tee.buf[:0]
	payload, _, err := o.ogg.ParseNextPage()
	if err != nil {
		return err
	}
	raw := o.tee.buf
	if len(raw) < oggHeaderLen || len(raw) < oggHeaderLen+int(raw[oggSegmentsOffset]) {
		return fmt.Errorf("%w: short page", ErrNotOpus)
	}
	if binary.LittleEndian.Uint32(raw[oggSerialOffset:]) != o.serial {
		return nil // another logical stream
	}
	continued := raw[5]&oggFlagContinued != 0
	if !continued {
		o.partial = nil // a packet left open by the previous page is lost
	}
	lacing := raw[oggHeaderLen : oggHeaderLen+int(raw[oggSegmentsOffset])]
	cur := o.partial
	o.partial = nil
	dropFirst := continued && cur == nil // continuation of a packet we never saw
	off := 0
	for _, l := range lacing {
		if off+int(l) > len(payload) {
			return fmt.Errorf("%w: lacing exceeds page", ErrNotOpus)
		}
		cur = append(cur, payload[off:off+int(l)]...)
		off += int(l)
		if len(cur) > oggMaxPacket {
			return fmt.Errorf("%w: packet too large", ErrNotOpus)
		}
		if l == 255 {
			continue
		}
		if dropFirst {
			dropFirst = false
		} else {
			o.emit(cur)
		}
		cur = nil
	}
	if len(lacing) > 0 && lacing[len(lacing)-1] == 255 {
		o.partial = cur
	}
	return nil
}

func (o *opusReader) emit(pkt []byte) {
	if !o.tags {
		o.tags = true
		if bytes.HasPrefix(pkt, []byte("OpusTags")) {
			return
		}
	}
	if len(pkt) == 0 {
		return // zero-length packets carry no audio (RFC 6716 section 3.4)
	}
	o.queue = append(o.queue, pkt)
}

// opusDuration is the audio length of an Opus packet from its TOC byte
// (RFC 6716 section 3.1); 20 ms where the packet is malformed.
func opusDuration(pkt []byte) time.Duration {
	const fallback = 20 * time.Millisecond
	if len(pkt) == 0 {
		return fallback
	}
	toc := pkt[0]
	config := toc >> 3
	var frame time.Duration
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = [...]time.Duration{10, 20, 40, 60}[config&3] * time.Millisecond
	case config < 16: // hybrid: 10, 20 ms
		frame = [...]time.Duration{10, 20}[config&1] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [...]time.Duration{2500, 5000, 10000, 20000}[config&3] * time.Microsecond
	}
	frames := 1
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(pkt) < 2 {
			return fallback
		}
		frames = int(pkt[1] & 0x3f)
	}
	d := frame * time.Duration(frames)
	if d <= 0 || d > 120*time.Millisecond {
		return fallback
	}
	return d
}

// OpusPackets reads every audio packet of an Ogg/Opus stream (RFC 7845),
// the OpusHead and OpusTags headers left out: what Play would send, and
// what a recording holds.
func OpusPackets(r io.Reader) ([][]byte, error) {
	o, err := newOpusReader(r)
	if err != nil {
		return nil, err
	}
	var pkts [][]byte
	for {
		pkt, err := o.Next()
		if errors.Is(err, io.EOF) {
			return pkts, nil
		}
		if err != nil {
			return pkts, err
		}
		pkts = append(pkts, pkt)
	}
}

// CheckOpusFile checks that path is an Ogg/Opus file with at least one
// audio packet, so that a caller can refuse a wrong file before it calls.
// Errors wrap ErrNotOpus when the file is not Ogg/Opus.
func CheckOpusFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	o, err := newOpusReader(f)
	if err != nil {
		return err
	}
	if _, err := o.Next(); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: no audio packets", ErrNotOpus)
		}
		return fmt.Errorf("%w: %w", ErrNotOpus, err)
	}
	return nil
}

// withPreSkip returns an Ogg page whose OpusHead packet (RFC 7845 section
// 5.1) declares preSkip, its checksum redone; any other page unchanged.
func withPreSkip(page []byte, preSkip uint16) []byte {
	if len(page) < oggHeaderLen || !bytes.HasPrefix(page, []byte("OggS")) {
		return page
	}
	start := oggHeaderLen + int(page[oggSegmentsOffset])
	if len(page) < start+19 || !bytes.HasPrefix(page[start:], []byte("OpusHead")) {
		return page
	}
	out := bytes.Clone(page)
	binary.LittleEndian.PutUint16(out[start+10:], preSkip)
	binary.LittleEndian.PutUint32(out[oggCRCOffset:], 0)
	binary.LittleEndian.PutUint32(out[oggCRCOffset:], oggCRC(out))
	return out
}

// oggCRC is the checksum of an Ogg page whose checksum field is zero
// (RFC 3533 section 6: CRC-32, polynomial 0x04c11db7, not reflected, zero
// initial value and final XOR).
func oggCRC(page []byte) uint32 {
	var crc uint32
	for _, b := range page {
		crc ^= uint32(b) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
