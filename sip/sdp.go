package sip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/irmv/irmv/call/media"
)

// maxSDP bounds the session descriptions the bridge parses.
const maxSDP = 8 << 10

// audioOffer is what the bridge needs from a phone's SDP: where its RTP
// goes and the payload types of the codecs it offers.
type audioOffer struct {
	addr   *net.UDPAddr
	opus   int // payload type; -1: not offered
	pcmu   int
	pcma   int
	dtmf   int // telephone-event
	dtmfHz int
	rtcp   rtcpTarget
}

var errNoAudio = errors.New("no usable audio stream")

// parseAudio reads the first audio stream of an SDP offer or answer.
func parseAudio(body []byte) (audioOffer, error) {
	o := audioOffer{opus: -1, pcmu: -1, pcma: -1, dtmf: -1}
	if len(body) == 0 || len(body) > maxSDP {
		return o, fmt.Errorf("%w: SDP of %d bytes", errNoAudio, len(body))
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return o, fmt.Errorf("%w: %v", errNoAudio, err)
	}
	var md *sdp.MediaDescription
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "audio" && m.MediaName.Port.Value > 0 {
			md = m
			break
		}
	}
	if md == nil {
		return o, errNoAudio
	}
	conn := sd.ConnectionInformation
	if md.ConnectionInformation != nil {
		conn = md.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return o, fmt.Errorf("%w: no connection address", errNoAudio)
	}
	ip := net.ParseIP(conn.Address.Address)
	if ip == nil {
		return o, fmt.Errorf("%w: connection address %q", errNoAudio, conn.Address.Address)
	}
	o.addr = &net.UDPAddr{IP: ip, Port: md.MediaName.Port.Value}
	_, o.rtcp.mux = md.Attribute("rtcp-mux")
	if v, ok := md.Attribute("rtcp"); ok {
		o.rtcp.addr = rtcpAttr(v, ip)
	}
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		name := ""
		switch pt {
		case 0:
			name = "pcmu/8000"
		case 8:
			name = "pcma/8000"
		}
		if c, err := sd.GetCodecForPayloadType(uint8(pt)); err == nil {
			name = strings.ToLower(fmt.Sprintf("%s/%d", c.Name, c.ClockRate))
		}
		switch {
		case name == "opus/48000" && o.opus < 0:
			o.opus = pt
		case name == "pcmu/8000" && o.pcmu < 0:
			o.pcmu = pt
		case name == "pcma/8000" && o.pcma < 0:
			o.pcma = pt
		case strings.HasPrefix(name, "telephone-event/") && o.dtmf < 0:
			o.dtmf = pt
			o.dtmfHz, _ = strconv.Atoi(strings.TrimPrefix(name, "telephone-event/"))
		}
	}
	return o, nil
}

// rtcpAttr reads a=rtcp (RFC 3605: "PORT [IN IP4|IP6 ADDR]"); ip is the
// stream's address, taken when the line names none. Nil when unusable.
func rtcpAttr(v string, ip net.IP) *net.UDPAddr {
	f := strings.Fields(v)
	if len(f) == 0 {
		return nil
	}
	port, err := strconv.Atoi(f[0])
	if err != nil || port <= 0 || port > 65535 {
		return nil
	}
	if len(f) == 4 && f[1] == "IN" {
		a := net.ParseIP(f[3])
		if a == nil {
			return nil
		}
		ip = a
	}
	return &net.UDPAddr{IP: ip, Port: port}
}

// phoneCodec is a codec on the phone's leg with its payload type there.
type phoneCodec struct {
	codec media.Codec
	pt    int
}

// codecs are the codecs of a phone's description that the bridge passes
// through, Opus first (it is preferred where both sides have it), then
// PCMU, then PCMA.
func (o audioOffer) codecs() []phoneCodec {
	var out []phoneCodec
	for _, c := range []phoneCodec{{media.CodecOpus, o.opus}, {media.CodecPCMU, o.pcmu}, {media.CodecPCMA, o.pcma}} {
		if c.pt >= 0 {
			out = append(out, c)
		}
	}
	return out
}

// ptOf is the payload type of codec c in the phone's description, -1 if
// it has none.
func (o audioOffer) ptOf(c media.Codec) int {
	for _, pc := range o.codecs() {
		if pc.codec == c {
			return pc.pt
		}
	}
	return -1
}

// answerSDP is the bridge's side of a phone's call: plain RTP (and the
// phone's RTCP) at ip:port with codecs (an offer may name several, an answer names one) and, if
// dtmfPT ≥ 0, telephone-event at dtmfHz; mux answers a phone's
// a=rtcp-mux.
func answerSDP(ip net.IP, port int, codecs []phoneCodec, dtmfPT, dtmfHz int, sessID uint64, mux bool) []byte {
	fam := "IP4"
	if ip.To4() == nil {
		fam = "IP6"
	}
	var fmts []string
	for _, c := range codecs {
		fmts = append(fmts, strconv.Itoa(c.pt))
	}
	if dtmfPT >= 0 {
		fmts = append(fmts, strconv.Itoa(dtmfPT))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=irmv %d 1 IN %s %s\r\ns=irmv\r\nc=IN %s %s\r\nt=0 0\r\n", sessID, fam, ip, fam, ip)
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %s\r\n", port, strings.Join(fmts, " "))
	for _, c := range codecs {
		switch c.codec {
		case media.CodecOpus:
			fmt.Fprintf(&b, "a=rtpmap:%d opus/48000/2\r\na=fmtp:%d useinbandfec=1\r\n", c.pt, c.pt)
		default:
			fmt.Fprintf(&b, "a=rtpmap:%d %s/8000\r\n", c.pt, c.codec)
		}
	}
	if dtmfPT >= 0 {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/%d\r\na=fmtp:%d 0-16\r\n", dtmfPT, dtmfHz, dtmfPT)
	}
	// The phone's RTCP comes to the RTP port (RFC 3605), where the bridge
	// tells it apart (RFC 5761 section 4); the bridge listens on port + 1
	// too, for phones that ignore a=rtcp.
	fmt.Fprintf(&b, "a=rtcp:%d\r\n", port)
	if mux {
		b.WriteString("a=rtcp-mux\r\n")
	}
	b.WriteString("a=sendrecv\r\n")
	return []byte(b.String())
}
