package sip

import (
	"net"
	"testing"
	"time"

	"github.com/pion/rtp"
)

func TestTelephoneEventPayload(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want telephoneEvent
		ok   bool
	}{
		{[]byte{5, 0x8a, 0x03, 0x20}, telephoneEvent{event: 5, end: true, volume: 10, duration: 800}, true},
		{[]byte{11, 0x0a, 0x00, 0xa0, 0xff}, telephoneEvent{event: 11, volume: 10, duration: 160}, true},
		{[]byte{1, 2, 3}, telephoneEvent{}, false},
		{nil, telephoneEvent{}, false},
	} {
		got, ok := parseTelephoneEvent(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseTelephoneEvent(%x) = %+v, %t; want %+v, %t", tc.in, got, ok, tc.want, tc.ok)
		}
		if ok {
			if back, _ := parseTelephoneEvent(got.marshal()); back != got {
				t.Errorf("%+v marshals to %x", got, got.marshal())
			}
		}
	}
}

// A key press for the phone is an RFC 4733 event in the stream the bridge
// sends: packets every 20 ms with a growing duration, the first marked,
// then the end packet three times, all with one timestamp, numbered on
// from the audio.
func TestKeyPressToPhone(t *testing.T) {
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bc := &bridgeCall{rtp: conn, dtmfq: make(chan dtmfKey, 1), done: make(chan struct{}), firstRTP: make(chan struct{}), ssrc: 42}
	bc.setPhone(phone.LocalAddr().(*net.UDPAddr), phoneCodec{pt: 0}, 101, 8000)
	bc.sending = true
	bc.toPhone(&rtp.Packet{Header: rtp.Header{SequenceNumber: 1000, Timestamp: 16000}, Payload: make([]byte, 160)})
	go bc.sendDTMF()
	defer close(bc.done)
	bc.onControl([]byte(`{"type":"dtmf","digit":"#","duration_ms":200}`))
	bc.onControl([]byte(`{"type":"text"}`)) // not a key: ignored

	phone.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	var pkts []rtp.Packet
	for {
		n, err := phone.Read(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", len(pkts), err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			t.Fatal(err)
		}
		if p.PayloadType == 0 {
			continue // the audio packet
		}
		pkts = append(pkts, p)
		if ev, _ := parseTelephoneEvent(p.Payload); ev.end && len(pkts) >= 3 {
			if e2, _ := parseTelephoneEvent(pkts[len(pkts)-3].Payload); e2.end {
				break
			}
		}
	}
	if len(pkts) != 10+3-1 { // 200 ms: 9 packets before the end, then 3 end packets
		t.Errorf("%d packets, want 12", len(pkts))
	}
	for i, p := range pkts {
		ev, _ := parseTelephoneEvent(p.Payload)
		if p.PayloadType != 101 || p.SSRC != 42 || p.SequenceNumber != uint16(1001+i) || p.Timestamp != pkts[0].Timestamp || p.Marker != (i == 0) || ev.event != 11 {
			t.Errorf("packet %d: %+v %+v", i, p.Header, ev)
		}
		if want := uint16(min(160*(i+1), 1600)); ev.duration != want {
			t.Errorf("packet %d: duration %d, want %d", i, ev.duration, want)
		}
	}
}
