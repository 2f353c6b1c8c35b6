package sip

import (
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestIsRTCP(t *testing.T) {
	sr, _ := (&rtcp.SenderReport{SSRC: 5}).Marshal()
	rr, _ := (&rtcp.ReceiverReport{SSRC: 5}).Marshal()
	bye, _ := (&rtcp.Goodbye{Sources: []uint32{5}}).Marshal()
	for _, b := range [][]byte{sr, rr, bye} {
		if !isRTCP(b) {
			t.Errorf("%x not taken for RTCP", b)
		}
	}
	for _, pt := range []uint8{0, 8, 96, 101, 111, 127} {
		for _, marker := range []bool{false, true} {
			b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SSRC: 5}, Payload: []byte{1, 2, 3, 4}}).Marshal()
			if isRTCP(b) {
				t.Errorf("RTP payload type %d (marker %t) taken for RTCP", pt, marker)
			}
		}
	}
	if isRTCP([]byte{0x80, 200}) {
		t.Error("a 2-byte packet taken for RTCP")
	}
}

// The phone's RTCP on an SRTP leg is SRTCP: what authenticates is
// counted, replays, tampered and plain RTCP are rejected (and counted so);
// on a plain leg plain RTCP is counted; before a called phone's answer
// nothing is taken.
func TestPhoneRTCP(t *testing.T) {
	m := newMetrics(nil, nil)
	count := func(l string) float64 { return testutil.ToFloat64(m.rtcp.WithLabelValues(l)) }
	report, _ := (&rtcp.ReceiverReport{SSRC: 5, Reports: []rtcp.ReceptionReport{{SSRC: 7, LastSequenceNumber: 100}}}).Marshal()

	(&bridgeCall{m: m}).fromPhoneRTCP(report, nil) // before the phone's answer
	if got := count("early"); got != 1 {
		t.Errorf("early RTCP counted %v, want 1", got)
	}
	plainCall := &bridgeCall{m: m, ptSet: true}
	plainCall.fromPhoneRTCP(report, nil)
	plainCall.fromPhoneRTCP([]byte{0x80, 201, 0, 9, 1, 2, 3, 4}, nil) // length beyond the packet
	if got := count("plain"); got != 1 {
		t.Errorf("plain RTCP counted %v, want 1", got)
	}

	phoneKey, nodeKey := newCrypto(1, offerSuite), newCrypto(1, offerSuite)
	leg, err := newSRTPLeg(nodeKey, phoneKey)
	if err != nil {
		t.Fatal(err)
	}
	leg.m = m
	phone, err := newContext(phoneKey)
	if err != nil {
		t.Fatal(err)
	}
	srtpCall := &bridgeCall{m: m, srtp: leg, ptSet: true}
	sent, err := phone.EncryptRTCP(nil, report, nil)
	if err != nil {
		t.Fatal(err)
	}
	srtpCall.fromPhoneRTCP(sent, nil)
	if got := count("srtcp"); got != 1 {
		t.Fatalf("SRTCP counted %v, want 1", got)
	}
	srtpCall.fromPhoneRTCP(sent, nil) // a replay
	tampered, _ := phone.EncryptRTCP(nil, report, nil)
	tampered[len(tampered)-1] ^= 1
	srtpCall.fromPhoneRTCP(tampered, nil)
	srtpCall.fromPhoneRTCP(report, nil) // plain
	if got := count("srtcp"); got != 1 {
		t.Errorf("SRTCP counted %v after bad packets, want 1", got)
	}
	if got := count("rejected"); got != 3 {
		t.Errorf("%v rejected, want 3", got)
	}
}
