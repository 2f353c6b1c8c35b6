package sip

import (
	"bytes"
	"time"

	"github.com/pion/rtp"

	"github.com/irmv/irmv/call/media"
)

// While the irmv side sends no audio (no --play, a muted or DTX sender),
// the bridge keeps the phone's stream flowing with silence in the call's
// codec, one packet a packet time: a phone's jitter buffer holds the
// last packets it got (baresip: the end of the last key press) until
// more come, and some phones end a call whose media stopped. After the
// call ends its RTP socket stays open a short while, reading and
// discarding (and its RTCP port), so that the phone's last packets after the BYE find a port
// (no ICMP port unreachable, which baresip reports as the call failing).
const (
	fillAfter  = 3 * dtmfPacketTime // irmv side silent this long: fill
	fillPacket = dtmfPacketTime
	rtpGrace   = 1500 * time.Millisecond
)

// silence is one packet time of silence in c: G.711's zero level, Opus's
// 20 ms CELT silence frame.
func silence(c media.Codec) []byte {
	switch c {
	case media.CodecPCMU:
		return bytes.Repeat([]byte{0xff}, g711Packet)
	case media.CodecPCMA:
		return bytes.Repeat([]byte{0xd5}, g711Packet)
	}
	return []byte{0xf8, 0xff, 0xfe}
}

const g711Packet = 160 // samples (bytes) in 20 ms at 8 kHz

// step is one packet time in the call's RTP clock (under mu).
func (bc *bridgeCall) step() uint32 {
	return uint32(fillPacket * time.Duration(bc.codec.ClockRate()) / time.Second)
}

// keepAlive fills the irmv side's silences until the call ends, then
// closes the RTP socket after the grace (at once when the node shuts
// down: shutdown is closed).
func (bc *bridgeCall) keepAlive(shutdown <-chan struct{}) {
	defer bc.rtp.Close()
	if bc.rtcpPort != nil {
		defer bc.rtcpPort.Close()
	}
	tick := time.NewTicker(fillPacket)
	defer tick.Stop()
	for {
		select {
		case <-bc.done:
			grace := time.NewTimer(rtpGrace)
			defer grace.Stop()
			select {
			case <-grace.C:
			case <-shutdown:
			}
			return
		case <-tick.C:
			bc.fill()
		}
	}
}

// fill sends one packet of silence when the irmv side has been silent for
// fillAfter and no key press is being sent.
func (bc *bridgeCall) fill() {
	bc.mu.Lock()
	if !bc.ptSet || !bc.sending || bc.keyOn || bc.phone == nil || time.Since(bc.lastOut) < fillAfter {
		bc.mu.Unlock()
		return
	}
	bc.seqOff++
	bc.outSeq++
	bc.outTS += bc.step()
	bc.filled = true
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: bc.phonePT, SequenceNumber: bc.outSeq,
		Timestamp: bc.outTS, SSRC: bc.ssrc}, Payload: silence(bc.codec)}
	to := bc.phone
	bc.mu.Unlock()
	bc.writePhone(&pkt, to)
}
