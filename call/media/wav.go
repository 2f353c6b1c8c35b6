package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
	"github.com/zaf/g711"
)

// G.711 as irmv sends it: 8 kHz, one channel, 20 ms (160 samples) a
// packet, the packet time RFC 3551 section 4.5 recommends.
const (
	g711Frame   = 160
	g711FrameMS = 20
	// maxWAV bounds a WAV file Play reads into memory when it cannot seek.
	maxWAV = 64 << 20
)

// playSource is the file Play sends: Ogg/Opus or WAV.
type playSource struct {
	opus  *opusReader
	wav   *wav.Decoder
	chans int
	enc   func(lpcm []byte) []byte // the call's G.711 encoder, for WAV
	buf   *audio.IntBuffer
}

// openPlay reads the start of a file Play sends and tells its format.
func openPlay(r io.Reader) (*playSource, error) {
	head := make([]byte, 12)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	head = head[:n]
	var rs io.ReadSeeker
	if s, ok := r.(io.ReadSeeker); ok {
		if _, err := s.Seek(int64(-n), io.SeekCurrent); err == nil {
			rs = s
		}
	}
	whole := func() io.Reader {
		if rs != nil {
			return rs
		}
		return io.MultiReader(bytes.NewReader(head), r)
	}
	switch {
	case bytes.HasPrefix(head, []byte("OggS")):
		o, err := newOpusReader(whole())
		if err != nil {
			return nil, err
		}
		return &playSource{opus: o}, nil
	case n == 12 && string(head[:4]) == "RIFF" && string(head[8:]) == "WAVE":
		if rs == nil {
			b, err := io.ReadAll(io.LimitReader(whole(), maxWAV+1))
			if err != nil {
				return nil, err
			}
			if len(b) > maxWAV {
				return nil, fmt.Errorf("%w: WAV larger than %d MB", ErrPlayFormat, maxWAV>>20)
			}
			rs = bytes.NewReader(b)
		}
		return openWAV(rs)
	}
	return nil, fmt.Errorf("%w (nor WAV)", ErrNotOpus)
}

// openWAV checks that a WAV file is what G.711 carries: 8 kHz, 16-bit
// linear PCM, one or two channels.
func openWAV(rs io.ReadSeeker) (*playSource, error) {
	d := wav.NewDecoder(rs)
	if !d.IsValidFile() {
		if err := d.Err(); err != nil {
			return nil, fmt.Errorf("%w: WAV: %v", ErrPlayFormat, err)
		}
		return nil, fmt.Errorf("%w: not a valid WAV file", ErrPlayFormat)
	}
	if d.WavAudioFormat != wavPCM || d.BitDepth != 16 || d.SampleRate != g711ClockRate || d.NumChans > 2 {
		return nil, fmt.Errorf("%w: WAV of format %d, %d bits, %d Hz, %d channels; G.711 wants 16-bit PCM at 8000 Hz, 1 or 2 channels (sox IN -r 8000 -b 16 OUT.wav)",
			ErrPlayFormat, d.WavAudioFormat, d.BitDepth, d.SampleRate, d.NumChans)
	}
	if err := d.FwdToPCM(); err != nil {
		return nil, fmt.Errorf("%w: WAV: %v", ErrPlayFormat, err)
	}
	ch := int(d.NumChans)
	return &playSource{wav: d, chans: ch, buf: &audio.IntBuffer{Data: make([]int, g711Frame*ch)}}, nil
}

const wavPCM = 1 // WAVE_FORMAT_PCM

// use checks that the file fits codec, the one the call sends.
func (s *playSource) use(c Codec) error {
	switch {
	case s.opus != nil && c == CodecOpus:
		return nil
	case s.wav != nil && c.G711():
		s.enc = g711.EncodeUlaw
		if c == CodecPCMA {
			s.enc = g711.EncodeAlaw
		}
		return nil
	case s.opus != nil:
		return fmt.Errorf("%w: the call sends %s, the file is Ogg/Opus (play an 8 kHz WAV)", ErrPlayFormat, c)
	}
	return fmt.Errorf("%w: the call sends %s, the file is WAV (play an Ogg/Opus file)", ErrPlayFormat, c)
}

// next is the next packet's payload and its length in time, io.EOF at the
// end.
func (s *playSource) next() ([]byte, time.Duration, error) {
	if s.opus != nil {
		pkt, err := s.opus.Next()
		if err != nil {
			return nil, 0, err
		}
		return pkt, opusDuration(pkt), nil
	}
	// A frame of samples; the decoder may return fewer than asked.
	got := 0
	for got < len(s.buf.Data) {
		part := &audio.IntBuffer{Data: s.buf.Data[got:]}
		n, err := s.wav.PCMBuffer(part)
		if err != nil {
			return nil, 0, fmt.Errorf("media: read WAV: %w", err)
		}
		if n == 0 {
			break
		}
		got += n
	}
	frames := got / s.chans
	if frames == 0 {
		return nil, 0, io.EOF
	}
	lpcm := make([]byte, 2*frames)
	for i := range frames {
		v := 0
		for c := range s.chans {
			v += s.buf.Data[i*s.chans+c]
		}
		binary.LittleEndian.PutUint16(lpcm[2*i:], uint16(int16(v/s.chans)))
	}
	return s.enc(lpcm), time.Duration(frames) * time.Second / g711ClockRate, nil
}

// CheckPlayFile checks that path is a file Play can send, so that a caller
// can refuse a wrong file before it calls: Ogg/Opus with at least one
// audio packet, or WAV as G.711 wants it. It returns the codec the file
// plays on. Errors wrap [ErrNotOpus] for a file that is neither Ogg nor
// WAV, [ErrPlayFormat] for a WAV of another format.
func CheckPlayFile(path string) (Codec, error) {
	f, err := os.Open(path)
	if err != nil {
		return CodecUnknown, err
	}
	defer f.Close()
	s, err := openPlay(f)
	if err != nil {
		return CodecUnknown, err
	}
	if s.wav != nil {
		return CodecPCMU, nil
	}
	if _, err := s.opus.Next(); err != nil {
		if errors.Is(err, io.EOF) {
			return CodecUnknown, fmt.Errorf("%w: no audio packets", ErrNotOpus)
		}
		return CodecUnknown, fmt.Errorf("%w: %w", ErrNotOpus, err)
	}
	return CodecOpus, nil
}

// wavRecorder writes received G.711 packets, decoded to 16-bit linear
// PCM, into a WAV file (8 kHz, one channel). Gaps in the RTP timestamps
// of up to maxGap (lost packets, a pause) become silence, so that the
// recording keeps time.
type wavRecorder struct {
	enc    *wav.Encoder
	dec    func(pcm []byte) []byte
	nextTS uint32 // timestamp the next packet should have
	have   bool
}

const maxGap = 2 * g711ClockRate

func newWAVRecorder(w io.Writer, c Codec) (*wavRecorder, error) {
	ws, ok := w.(io.WriteSeeker)
	if !ok {
		return nil, errors.New("media: record: a G.711 recording (WAV) needs a writer that can seek")
	}
	dec := g711.DecodeUlaw
	if c == CodecPCMA {
		dec = g711.DecodeAlaw
	}
	return &wavRecorder{enc: wav.NewEncoder(ws, g711ClockRate, 16, 1, wavPCM), dec: dec}, nil
}

func (r *wavRecorder) write(ts uint32, payload []byte) error {
	var silence int
	if r.have {
		if gap := int32(ts - r.nextTS); gap > 0 && gap <= maxGap {
			silence = int(gap)
		} else if gap < 0 && gap > -maxGap {
			return nil // late or repeated
		}
	}
	r.have, r.nextTS = true, ts+uint32(len(payload))
	lpcm := r.dec(payload)
	data := make([]int, silence, silence+len(lpcm)/2)
	for i := 0; i+1 < len(lpcm); i += 2 {
		data = append(data, int(int16(binary.LittleEndian.Uint16(lpcm[i:]))))
	}
	return r.enc.Write(&audio.IntBuffer{Format: &audio.Format{NumChannels: 1, SampleRate: g711ClockRate}, Data: data, SourceBitDepth: 16})
}

func (r *wavRecorder) close() error { return r.enc.Close() }
