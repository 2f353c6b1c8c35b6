package demo

import (
	"bytes"

	"encoding/binary"
	"time"

	"github.com/irmv/irmv/call/media"
)

// OpusPackets counts the audio packets of an Ogg/Opus file; a damaged
// file counts what could be read.
func OpusPackets(b []byte) int {
	pkts, _ := media.OpusPackets(bytes.NewReader(b))
	return len(pkts)
}

// OggDuration is the play time of an Ogg/Opus file: the last page's granule
// position (48 kHz samples) less the pre-skip of the OpusHead header.
func OggDuration(b []byte) time.Duration {
	var granule uint64
	preSkip := uint64(0)
	first := true
	for len(b) >= 27 && string(b[:4]) == "OggS" {
		nseg := int(b[26])
		if len(b) < 27+nseg {
			break
		}
		size := 0
		for _, l := range b[27 : 27+nseg] {
			size += int(l)
		}
		body := b[27+nseg:]
		if len(body) < size {
			break
		}
		if first && size >= 12 && string(body[:8]) == "OpusHead" {
			preSkip = uint64(binary.LittleEndian.Uint16(body[10:12]))
		}
		first = false
		if g := binary.LittleEndian.Uint64(b[6:14]); g != ^uint64(0) {
			granule = g
		}
		b = body[size:]
	}
	if granule < preSkip {
		return 0
	}
	return time.Duration(granule-preSkip) * time.Second / 48000
}
