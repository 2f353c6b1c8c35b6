package sip

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/irmv/irmv/call/media"
)

// testBridgeCall is a bridge call's phone leg (no WebRTC side) sending to
// a phone socket, with its key and keep-alive senders running until the
// test ends.
func testBridgeCall(t *testing.T, c media.Codec, pt int) (bc *bridgeCall, phone *net.UDPConn, shutdown chan struct{}, wg *sync.WaitGroup) {
	t.Helper()
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bc = &bridgeCall{rtp: conn, dtmfq: make(chan dtmfKey, 4), done: make(chan struct{}), firstRTP: make(chan struct{}), ssrc: 7}
	bc.setPhone(phone.LocalAddr().(*net.UDPAddr), phoneCodec{c, pt}, 101, c.ClockRate())
	shutdown, wg = make(chan struct{}), &sync.WaitGroup{}
	wg.Add(2)
	go func() { defer wg.Done(); bc.sendDTMF() }()
	go func() { defer wg.Done(); bc.keepAlive(shutdown) }()
	t.Cleanup(func() {
		select {
		case <-bc.done:
		default:
			close(bc.done)
		}
		select {
		case <-shutdown:
		default:
			close(shutdown)
		}
		wg.Wait()
	})
	return bc, phone, shutdown, wg
}

func readRTP(t *testing.T, c *net.UDPConn) rtp.Packet {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
		t.Fatal(err)
	}
	return p
}

// With the irmv side silent the phone gets silence in its codec, one
// packet a packet time in one numbered stream; a key press goes into that
// stream (its end three times with the event's timestamp) and the silence
// goes on after the event's end, so a jitter buffer lets the end out; the
// irmv side's audio then follows on in the same numbering.
func TestSilenceKeepsPhoneStream(t *testing.T) {
	for _, tc := range []struct {
		codec media.Codec
		pt    int
		want  []byte
	}{
		{media.CodecPCMU, 0, silence(media.CodecPCMU)},
		{media.CodecPCMA, 8, silence(media.CodecPCMA)},
		{media.CodecOpus, 111, []byte{0xf8, 0xff, 0xfe}},
	} {
		t.Run(tc.codec.String(), func(t *testing.T) {
			bc, phone, _, _ := testBridgeCall(t, tc.codec, tc.pt)
			step := uint32(tc.codec.ClockRate() / 50)
			bc.mu.Lock()
			bc.sending = true
			bc.mu.Unlock()

			var last rtp.Packet
			next := func() rtp.Packet {
				p := readRTP(t, phone)
				if last.SSRC != 0 && p.SequenceNumber != last.SequenceNumber+1 {
					t.Fatalf("sequence number %d after %d", p.SequenceNumber, last.SequenceNumber)
				}
				if p.SSRC != 7 {
					t.Fatalf("SSRC %d", p.SSRC)
				}
				last = p
				return p
			}
			for i := range 3 {
				p := next()
				if int(p.PayloadType) != tc.pt || string(p.Payload) != string(tc.want) {
					t.Fatalf("packet %d: payload type %d, %x; want silence", i, p.PayloadType, p.Payload)
				}
			}
			bc.onControl([]byte(`{"type":"dtmf","digit":"5","duration_ms":100}`))
			var evTS uint32
			ends := 0
			for ends < 3 {
				p := next()
				if p.PayloadType != 101 {
					continue // silence sent before the key was taken
				}
				ev, _ := parseTelephoneEvent(p.Payload)
				if evTS == 0 {
					evTS = p.Timestamp
				}
				if p.Timestamp != evTS || ev.event != 5 {
					t.Fatalf("event packet %+v %+v, want timestamp %d", p.Header, ev, evTS)
				}
				if ev.end {
					ends++
				}
			}
			// Silence again, after the event's end in time.
			p := next()
			if int(p.PayloadType) != tc.pt || int32(p.Timestamp-(evTS+5*step)) < 0 {
				t.Fatalf("after the key: %+v, want silence from timestamp %d", p.Header, evTS+5*step)
			}
			// The irmv side's audio follows the silence.
			bc.toPhone(&rtp.Packet{Header: rtp.Header{SequenceNumber: 9, Timestamp: 123}, Payload: []byte{1, 2, 3}})
			for {
				p := next()
				if string(p.Payload) == "\x01\x02\x03" {
					if !p.Marker || int32(p.Timestamp-last.Timestamp) < 0 {
						t.Fatalf("audio after silence: %+v", p.Header)
					}
					break
				}
			}
		})
	}
}

// No silence before the phone has the bridge's answer, nor right after
// the irmv side's audio; silence once that is fillAfter old.
func TestNoSilenceWhileAudio(t *testing.T) {
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
	bc := &bridgeCall{rtp: conn, done: make(chan struct{}), firstRTP: make(chan struct{}), ssrc: 7}
	bc.setPhone(phone.LocalAddr().(*net.UDPAddr), phoneCodec{media.CodecPCMU, 0}, -1, 0)
	bc.fill() // not answered yet
	bc.mu.Lock()
	bc.sending = true
	bc.mu.Unlock()
	audio := make([]byte, 160)
	audio[0] = 0x42
	bc.toPhone(&rtp.Packet{Header: rtp.Header{SequenceNumber: 500, Timestamp: 1600}, Payload: audio})
	bc.fill() // audio just went out
	bc.mu.Lock()
	bc.lastOut = time.Now().Add(-fillAfter)
	bc.mu.Unlock()
	bc.fill()
	if p := readRTP(t, phone); p.Payload[0] != 0x42 || p.SequenceNumber != 500 || p.Timestamp != 1600 {
		t.Fatalf("first packet %+v, want the audio", p.Header)
	}
	if p := readRTP(t, phone); p.Payload[0] != 0xff || p.SequenceNumber != 501 || p.Timestamp != 1760 {
		t.Fatalf("second packet %+v %x, want silence after the audio", p.Header, p.Payload[:1])
	}
}

// After the call the RTP socket stays open for the grace (the phone's
// packets find a port: no ICMP port unreachable), and closes at once when
// the node shuts down.
func TestRTPPortGraceAfterCall(t *testing.T) {
	bc, _, shutdown, wg := testBridgeCall(t, media.CodecPCMU, 0)
	phone, err := net.DialUDP("udp", nil, bc.rtp.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	close(bc.done)
	buf := make([]byte, 1500)
	for range 3 {
		if _, err := phone.Write([]byte("late RTP")); err != nil {
			t.Fatalf("the bridge's port closed right after the call: %v", err)
		}
		phone.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := phone.Read(buf); !errors.Is(err, syscall.ECONNREFUSED) && !isTimeout(err) {
			t.Fatalf("read: %v", err)
		} else if errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatal("the bridge's port closed right after the call (port unreachable)")
		}
	}
	close(shutdown)
	wg.Wait()
	phone.Write([]byte("after shutdown"))
	phone.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := phone.Read(buf); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("port still open after shutdown: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
