package sip

import (
	"encoding/binary"
	"strings"
	"time"

	"github.com/pion/rtp"

	"github.com/irmv/irmv/call/media"
)

// DTMF on the phone's leg is RFC 4733 telephone-event packets; on the
// WebRTC leg it is call/media's control messages on the chat channel (see
// call/media: DTMF). The bridge turns the one into the other.
const (
	dtmfMinDuration = 100 * time.Millisecond // a shorter key press is sent this long
	dtmfPacketTime  = 20 * time.Millisecond
	dtmfGap         = 50 * time.Millisecond // between two key presses
	dtmfEndRepeats  = 3                     // RFC 4733 section 2.5.1.4
	dtmfQueue       = 32
)

// telephoneEvent is the payload of an RFC 4733 packet (section 2.3).
type telephoneEvent struct {
	event    uint8
	end      bool
	volume   uint8  // -dBm0, 0-63
	duration uint16 // in timestamp units
}

func parseTelephoneEvent(b []byte) (telephoneEvent, bool) {
	if len(b) < 4 {
		return telephoneEvent{}, false
	}
	return telephoneEvent{event: b[0], end: b[1]&0x80 != 0, volume: b[1] & 0x3f, duration: binary.BigEndian.Uint16(b[2:])}, true
}

func (e telephoneEvent) marshal() []byte {
	b := []byte{e.event, e.volume & 0x3f, 0, 0}
	if e.end {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], e.duration)
	return b
}

// dtmfKey is a key press for the phone.
type dtmfKey struct {
	digit byte
	d     time.Duration
}

// fromPhoneDTMF passes a phone's key press to the irmv side once, when
// its event ends (the end packet is sent three times; a new event has a
// new timestamp).
func (bc *bridgeCall) fromPhoneDTMF(pkt *rtp.Packet, peer *media.Peer) {
	ev, ok := parseTelephoneEvent(pkt.Payload)
	if !ok || !ev.end || int(ev.event) >= len(media.DTMFDigits) {
		return
	}
	bc.mu.Lock()
	dup := bc.eventSeen && bc.eventTS == pkt.Timestamp
	bc.eventSeen, bc.eventTS = true, pkt.Timestamp
	hz := bc.dtmfHz
	bc.mu.Unlock()
	if dup || peer == nil || hz <= 0 {
		return
	}
	d := time.Duration(ev.duration) * time.Second / time.Duration(hz)
	if err := peer.SendDTMF(media.DTMFDigits[ev.event], d); err != nil {
		bc.log.Debug("Key press not passed on", "err", err)
	}
}

// onControl takes the irmv side's control messages: key presses go to
// the phone.
func (bc *bridgeCall) onControl(b []byte) {
	digit, d, ok := media.ParseDTMF(b)
	if !ok {
		return
	}
	select {
	case bc.dtmfq <- dtmfKey{digit, d}:
	default: // a flood of keys: dropped
	}
}

// sendDTMF sends the queued key presses to the phone as RFC 4733 events,
// one after the other, until the call ends.
func (bc *bridgeCall) sendDTMF() {
	for {
		select {
		case <-bc.done:
			return
		case k := <-bc.dtmfq:
			if !bc.playKey(k) {
				return
			}
		}
	}
}

// playKey sends one key press: a packet every 20 ms with the duration so
// far (the first with the marker bit), then the end packet three times,
// 20 ms apart too; all with the timestamp of the event's start (RFC 4733
// section 2.5). It reports false when the call ended.
func (bc *bridgeCall) playKey(k dtmfKey) bool {
	bc.mu.Lock()
	pt, hz, to := bc.dtmfPT, bc.dtmfHz, bc.phone
	if !bc.sending {
		to = nil
	}
	total := uint32(max(k.d, dtmfMinDuration) * time.Duration(max(hz, 0)) / time.Second)
	step := uint32(dtmfPacketTime * time.Duration(max(hz, 0)) / time.Second)
	// The event starts now in the audio's time, and after the previous
	// one: a receiver tells events apart by their timestamps.
	ts := bc.outTS
	silent := bc.filled || time.Since(bc.lastOut) >= fillAfter
	if silent {
		ts += bc.step() // after the bridge's last silence packet
	}
	if bc.eventsOut && int32(ts-bc.nextEventTS) < 0 {
		ts = bc.nextEventTS
	}
	bc.eventsOut, bc.nextEventTS = true, ts+total+step
	send := pt >= 0 && hz > 0 && to != nil
	bc.keyOn = send
	bc.mu.Unlock()
	if !send {
		return true
	}
	keyDone := func() {
		bc.mu.Lock()
		bc.keyOn = false
		// In silence the bridge's stream goes on from the event's end:
		// the packets after it let the phone take the end packets.
		if silent && (bc.filled || time.Since(bc.lastOut) >= fillAfter) {
			bc.outTS, bc.filled = ts+total, true
		}
		bc.mu.Unlock()
	}
	tick := time.NewTicker(dtmfPacketTime)
	defer tick.Stop()
	ev := telephoneEvent{event: uint8(strings.IndexByte(media.DTMFDigits, k.digit)), volume: 10}
	for dur, first := step, true; ; dur, first = dur+step, false {
		end := dur >= total
		ev.duration, ev.end = uint16(min(dur, total, 0xffff)), end
		repeats := 1
		if end {
			repeats = dtmfEndRepeats
		}
		for range repeats {
			bc.sendEvent(uint8(pt), ts, first, ev)
			// One packet a packet time: a receiver's jitter buffer
			// drops a burst (baresip's does).
			select {
			case <-tick.C:
			case <-bc.done:
				return false
			}
		}
		if end {
			break
		}
	}
	keyDone()
	t := time.NewTimer(dtmfGap)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-bc.done:
		return false
	}
}

// sendEvent sends one telephone-event packet in the stream of the audio
// the bridge sends the phone: same SSRC, the next sequence number.
func (bc *bridgeCall) sendEvent(pt uint8, ts uint32, marker bool, ev telephoneEvent) {
	bc.mu.Lock()
	bc.seqOff++
	bc.outSeq++
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, Marker: marker, PayloadType: pt, SequenceNumber: bc.outSeq,
		Timestamp: ts, SSRC: bc.ssrc}, Payload: ev.marshal()}
	to := bc.phone
	bc.mu.Unlock()
	bc.writePhone(&pkt, to)
}
