package media

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Codec is an audio codec a Peer negotiates. Both sides of a call send
// the one codec that the answer names first (the answer names only one):
// the first of the offer's codecs that the answerer takes.
type Codec int

// The audio codecs. G.711 is there for SIP phones that have nothing else
// (the node's bridge passes their RTP through unchanged); browsers offer
// it too.
const (
	CodecUnknown Codec = iota
	CodecOpus          // RFC 7587: 48 kHz, signalled as two channels
	CodecPCMU          // G.711 μ-law, 8 kHz (RFC 3551 section 4.5.14)
	CodecPCMA          // G.711 A-law, 8 kHz
)

// DefaultCodecs are the codecs a Peer negotiates without Options.Codecs,
// in order of preference.
func DefaultCodecs() []Codec { return []Codec{CodecOpus, CodecPCMU, CodecPCMA} }

// String is the codec's RTP name (RFC 3551 / RFC 7587).
func (c Codec) String() string {
	switch c {
	case CodecOpus:
		return "opus"
	case CodecPCMU:
		return "PCMU"
	case CodecPCMA:
		return "PCMA"
	}
	return "unknown"
}

// MarshalText writes the codec's name.
func (c Codec) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// G711 reports whether c is PCMU or PCMA.
func (c Codec) G711() bool { return c == CodecPCMU || c == CodecPCMA }

// ClockRate is the codec's RTP clock rate.
func (c Codec) ClockRate() int {
	if c == CodecOpus {
		return opusClockRate
	}
	return g711ClockRate
}

// PayloadType is the payload type irmv offers the codec with: static for
// G.711, Opus's the one browsers use.
func (c Codec) PayloadType() uint8 {
	switch c {
	case CodecPCMU:
		return 0
	case CodecPCMA:
		return 8
	}
	return opusPayloadType
}

const g711ClockRate = 8000

func (c Codec) capability() webrtc.RTPCodecCapability {
	switch c {
	case CodecPCMU:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: g711ClockRate}
	case CodecPCMA:
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: g711ClockRate}
	}
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: opusClockRate, Channels: opusChannels,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
}

// CodecOf is the codec of an RTP encoding name with its clock rate
// ("opus/48000", "PCMU/8000", case-insensitive), or of a MIME type
// ("audio/PCMU"); CodecUnknown for others.
func CodecOf(name string) Codec {
	name = strings.ToLower(strings.TrimPrefix(strings.ToLower(name), "audio/"))
	switch name {
	case "opus/48000", "opus/48000/2", "opus":
		return CodecOpus
	case "pcmu/8000", "pcmu/8000/1", "pcmu":
		return CodecPCMU
	case "pcma/8000", "pcma/8000/1", "pcma":
		return CodecPCMA
	}
	return CodecUnknown
}

// SDPCodec is one audio codec of a session description with the payload
// type it is named with there.
type SDPCodec struct {
	Codec       Codec
	PayloadType uint8
}

// SDPCodecs lists the codecs of the first audio section of a session
// description that irmv knows, in the description's order, each once.
func SDPCodecs(desc string) ([]SDPCodec, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(desc); err != nil {
		return nil, fmt.Errorf("media: session description: %w", err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" {
			continue
		}
		var out []SDPCodec
		seen := map[Codec]bool{}
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.Atoi(f)
			if err != nil || pt < 0 || pt > 127 {
				continue
			}
			c := CodecUnknown
			switch pt { // static payload types need no rtpmap (RFC 3551)
			case 0:
				c = CodecPCMU
			case 8:
				c = CodecPCMA
			}
			if rc, err := sd.GetCodecForPayloadType(uint8(pt)); err == nil && rc.Name != "" {
				c = CodecOf(fmt.Sprintf("%s/%d", rc.Name, rc.ClockRate))
			}
			if c != CodecUnknown && !seen[c] {
				seen[c] = true
				out = append(out, SDPCodec{Codec: c, PayloadType: uint8(pt)})
			}
		}
		return out, nil
	}
	return nil, nil
}

// pickCodec is the first codec of desc that is in want.
func pickCodec(desc string, want []Codec) (SDPCodec, error) {
	have, err := SDPCodecs(desc)
	if err != nil {
		return SDPCodec{}, err
	}
	for _, h := range have {
		for _, w := range want {
			if h.Codec == w {
				return h, nil
			}
		}
	}
	return SDPCodec{}, fmt.Errorf("%w: offered %v, supported %v", ErrNoCodec, have, want)
}

func (s SDPCodec) String() string { return fmt.Sprintf("%s/%d", s.Codec, s.PayloadType) }

// checkCodecs is Options.Codecs checked, DefaultCodecs for none.
func checkCodecs(cs []Codec) ([]Codec, error) {
	if len(cs) == 0 {
		return DefaultCodecs(), nil
	}
	seen := map[Codec]bool{}
	for _, c := range cs {
		if c.String() == "unknown" || seen[c] {
			return nil, fmt.Errorf("media: Options.Codecs %v: unknown or repeated codec", cs)
		}
		seen[c] = true
	}
	return append([]Codec(nil), cs...), nil
}

// newTrack makes the local audio track of codec c: one that takes RTP
// packets with passThrough, else one that takes samples.
func newTrack(c Codec, passThrough bool) (*webrtc.TrackLocalStaticSample, *webrtc.TrackLocalStaticRTP, error) {
	if passThrough {
		tr, err := webrtc.NewTrackLocalStaticRTP(c.capability(), "audio", "irmv")
		if err != nil {
			return nil, nil, fmt.Errorf("media: new track: %w", err)
		}
		return nil, tr, nil
	}
	tr, err := webrtc.NewTrackLocalStaticSample(c.capability(), "audio", "irmv")
	if err != nil {
		return nil, nil, fmt.Errorf("media: new track: %w", err)
	}
	return tr, nil, nil
}

// localTrack is the track the Peer sends and its codec.
func (p *Peer) localTrack() (webrtc.TrackLocal, Codec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rtpTrack != nil {
		return p.rtpTrack, p.codec
	}
	return p.track, p.codec
}

// Codec is the codec the Peer sends (and, with a peer of irmv's, receives):
// the first of Options.Codecs until Answer or Accept has settled it.
func (p *Peer) Codec() Codec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.codec
}

// useCodec makes sc the codec the Peer sends: its track is replaced by one
// of that codec before the track is bound (a Peer that continues another
// keeps that one's), and the audio transceiver names only sc from now on,
// in this answer and in later offers (ICE restarts).
func (p *Peer) useCodec(sc SDPCodec) error {
	p.mu.Lock()
	cur, sender := p.codec, p.sender
	p.mu.Unlock()
	if cur != sc.Codec {
		if p.opts.Continues != nil && !p.opts.PassThrough {
			return fmt.Errorf("%w: this call sends %s, the other side takes %s", ErrNoCodec, cur, sc.Codec)
		}
		track, rtpTrack, err := newTrack(sc.Codec, p.opts.PassThrough)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.track, p.rtpTrack, p.codec = track, rtpTrack, sc.Codec
		p.mu.Unlock()
		if sender != nil {
			local, _ := p.localTrack()
			if err := sender.ReplaceTrack(local); err != nil {
				return fmt.Errorf("media: replace track: %w", err)
			}
		}
	}
	pref := []webrtc.RTPCodecParameters{{RTPCodecCapability: sc.Codec.capability(), PayloadType: webrtc.PayloadType(sc.PayloadType)}}
	for _, t := range p.pc.GetTransceivers() {
		if t.Kind() != webrtc.RTPCodecTypeAudio {
			continue
		}
		if err := t.SetCodecPreferences(pref); err != nil {
			return fmt.Errorf("media: codec preferences: %w", err)
		}
	}
	return nil
}
