package sip

import (
	"github.com/pion/rtcp"
)

// isRTCP tells RTCP from RTP on one port (RFC 5761 section 4): RTCP's
// packet types 192-223 fall where RTP has the marker bit and payload
// types 64-95, which RTP/AVP does not use.
func isRTCP(b []byte) bool {
	return len(b) >= 8 && b[0]>>6 == 2 && b[1] >= 192 && b[1] <= 223
}

// fromPhoneRTCP takes one RTCP packet from the phone: on an SRTP leg it
// must authenticate (SRTCP; phones send some RTCP in clear even there:
// baresip a pinhole "PING" before its keys are set and its closing BYE,
// dropped as rejected); it is counted, not passed on (the WebRTC side
// has RTCP of its own).
func (bc *bridgeCall) fromPhoneRTCP(data, dec []byte) {
	bc.mu.Lock()
	early := !bc.ptSet
	bc.mu.Unlock()
	if early { // a called phone's, before its answer says SRTP or not
		bc.countRTCP("early")
		return
	}
	protection := "plain"
	if leg := bc.leg(); leg != nil {
		var err error
		if data, err = leg.decryptRTCP(dec, data); err != nil {
			bc.countRTCP("rejected")
			return
		}
		protection = "srtcp"
	}
	if _, err := rtcp.Unmarshal(data); err != nil {
		return
	}
	bc.countRTCP(protection)
}

func (bc *bridgeCall) countRTCP(result string) {
	if bc.m != nil {
		bc.m.rtcp.WithLabelValues(result).Inc()
	}
}
