package media

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/go-audio/audio"
	"github.com/go-audio/wav"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5/test"
	"github.com/zaf/g711"
)

func TestSDPCodecs(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
	for _, tc := range []struct {
		name, media string
		want        []SDPCodec
	}{
		{"static without rtpmap", "m=audio 4000 RTP/AVP 8 0\r\n",
			[]SDPCodec{{CodecPCMA, 8}, {CodecPCMU, 0}}},
		{"opus first, dtmf and unknown left out", "m=audio 4000 RTP/AVP 96 0 101 9\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:9 G722/8000\r\n",
			[]SDPCodec{{CodecOpus, 96}, {CodecPCMU, 0}}},
		{"upper-case names, a codec named twice", "m=audio 4000 RTP/AVP 100 0 101\r\na=rtpmap:100 PCMU/8000\r\na=rtpmap:101 OPUS/48000/2\r\n",
			[]SDPCodec{{CodecPCMU, 100}, {CodecOpus, 101}}},
		{"video only", "m=video 4000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n", nil},
		{"no known codec", "m=audio 4000 RTP/AVP 9 18\r\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SDPCodecs(head + tc.media)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("SDPCodecs = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("SDPCodecs = %v, want %v", got, tc.want)
				}
			}
		})
	}
	if _, err := SDPCodecs("not SDP"); err == nil {
		t.Error("SDPCodecs of garbage: no error")
	}
}

// The answer takes the first of the offer's codecs it supports and names
// only that; both sides then send it.
func TestCodecNegotiation(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	for _, tc := range []struct {
		name           string
		caller, callee []Codec
		want           Codec
	}{
		{"defaults: opus", nil, nil, CodecOpus},
		{"caller G.711 only", []Codec{CodecPCMU, CodecPCMA}, nil, CodecPCMU},
		{"callee PCMA only", nil, []Codec{CodecPCMA}, CodecPCMA},
		{"caller prefers PCMA", []Codec{CodecPCMA, CodecOpus}, nil, CodecPCMA},
		{"nothing in common", []Codec{CodecOpus}, []Codec{CodecPCMU}, CodecUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, Options{Codecs: tc.caller}, Options{Codecs: tc.callee})
			defer p.close(t)
			offer, err := p.caller.Offer()
			if err != nil {
				t.Fatal(err)
			}
			answer, err := p.callee.Answer(offer, nil)
			if tc.want == CodecUnknown {
				if !errors.Is(err, ErrNoCodec) {
					t.Fatalf("Answer: %v, want ErrNoCodec", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			named, err := SDPCodecs(answer.SDP)
			if err != nil || len(named) != 1 || named[0].Codec != tc.want {
				t.Fatalf("answer names %v (%v), want only %s", named, err, tc.want)
			}
			if err := p.caller.Accept(answer, nil); err != nil {
				t.Fatal(err)
			}
			if p.caller.Codec() != tc.want || p.callee.Codec() != tc.want {
				t.Fatalf("caller sends %s, callee %s, want %s", p.caller.Codec(), p.callee.Codec(), tc.want)
			}
		})
	}
}

// toneWAV writes secs seconds of a sine of hz at 8 kHz, 16 bits, in chans
// channels.
func toneWAV(tb testing.TB, hz float64, secs float64, rate, chans int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "tone.wav")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	enc := wav.NewEncoder(f, rate, 16, chans, 1)
	n := int(secs * float64(rate))
	data := make([]int, 0, n*chans)
	for i := range n {
		v := int(12000 * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
		for range chans {
			data = append(data, v)
		}
	}
	if err := enc.Write(&audio.IntBuffer{Format: &audio.Format{NumChannels: chans, SampleRate: rate}, Data: data, SourceBitDepth: 16}); err != nil {
		tb.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// zeroCrossingHz estimates the frequency of a pure tone.
func zeroCrossingHz(samples []int, rate int) float64 {
	n := 0
	for i := 1; i < len(samples); i++ {
		if (samples[i-1] < 0) != (samples[i] < 0) {
			n++
		}
	}
	return float64(n) / 2 / (float64(len(samples)) / float64(rate))
}

// A G.711 call: the caller plays a WAV file, encoded to the negotiated
// law; the callee records a WAV file that holds the same tone.
func TestG711PlayAndRecord(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	for _, c := range []Codec{CodecPCMU, CodecPCMA} {
		t.Run(c.String(), func(t *testing.T) {
			tone := toneWAV(t, 1000, 1, 8000, 2) // stereo: mixed down
			var received atomic.Int64
			all := make(chan struct{})
			p := newPair(t, Options{Codecs: []Codec{c}}, Options{OnTrackPacket: func(pkt *rtp.Packet) {
				if pkt.PayloadType != c.PayloadType() || len(pkt.Payload) != g711Frame {
					t.Errorf("packet of payload type %d, %d bytes", pkt.PayloadType, len(pkt.Payload))
				}
				if received.Add(1) == 50 { // 1 s of 20 ms packets
					close(all)
				}
			}})
			t.Cleanup(func() { p.close(t) })
			path := filepath.Join(t.TempDir(), "rec.wav")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			waitRec, err := p.callee.StartRecording(f)
			if err != nil {
				t.Fatal(err)
			}
			src, err := os.Open(tone)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			played := make(chan error, 1)
			go func() { played <- p.caller.Play(src) }()
			p.negotiate(t, nil, nil)
			wait(t, all, "1 s of G.711")
			if err := <-played; err != nil {
				t.Fatalf("Play: %v", err)
			}
			p.close(t)
			if err := waitRec(); err != nil {
				t.Fatalf("recording: %v", err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				t.Fatal(err)
			}
			d := wav.NewDecoder(f)
			buf, err := d.FullPCMBuffer()
			if err != nil {
				t.Fatal(err)
			}
			if d.SampleRate != 8000 || d.NumChans != 1 || d.BitDepth != 16 {
				t.Fatalf("recording is %d Hz, %d channels, %d bits", d.SampleRate, d.NumChans, d.BitDepth)
			}
			if n := len(buf.Data); n < 7800 || n > 8200 {
				t.Errorf("recorded %d samples, want about 8000", n)
			}
			if hz := zeroCrossingHz(buf.Data, 8000); math.Abs(hz-1000) > 20 {
				t.Errorf("recorded tone of %.0f Hz, want 1000", hz)
			}
		})
	}
}

func TestPlayFormats(t *testing.T) {
	dir := t.TempDir()
	ogg := filepath.Join(dir, "a.ogg")
	if err := os.WriteFile(ogg, readFixture(t), 0o644); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(junk, []byte("hello, this is no audio"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		want       Codec
		err        error
	}{
		{"Ogg/Opus", ogg, CodecOpus, nil},
		{"WAV 8 kHz", toneWAV(t, 440, 0.1, 8000, 1), CodecPCMU, nil},
		{"WAV 48 kHz", toneWAV(t, 440, 0.1, 48000, 1), CodecUnknown, ErrPlayFormat},
		{"truncated WAV", writeFile(t, []byte("RIFF....WAVEfmt ")), CodecUnknown, ErrPlayFormat},
		{"text", junk, CodecUnknown, ErrNotOpus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CheckPlayFile(tc.path)
			if c != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("CheckPlayFile = %s, %v; want %s, %v", c, err, tc.want, tc.err)
			}
		})
	}
	// A file of the other codec is refused once the call has settled its
	// codec; a reader that cannot seek is read whole.
	for _, tc := range []struct {
		name string
		file []byte
		c    Codec
	}{
		{"Ogg on PCMU", readFixture(t), CodecPCMU},
		{"WAV on Opus", mustRead(t, toneWAV(t, 440, 0.1, 8000, 1)), CodecOpus},
	} {
		s, err := openPlay(bytes.NewBuffer(tc.file))
		if err != nil {
			t.Fatalf("%s: openPlay: %v", tc.name, err)
		}
		if err := s.use(tc.c); !errors.Is(err, ErrPlayFormat) {
			t.Errorf("%s: use: %v, want ErrPlayFormat", tc.name, err)
		}
	}
}

func writeFile(tb testing.TB, b []byte) string {
	path := filepath.Join(tb.TempDir(), "f")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

func mustRead(tb testing.TB, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The G.711 tables are the ITU's: silence and full scale map to the
// well-known code words, and decoding inverts encoding within the law's
// step size.
func TestG711Laws(t *testing.T) {
	for _, tc := range []struct {
		in         int16
		ulaw, alaw uint8
	}{{0, 0xff, 0xd5}, {32767, 0x80, 0xaa}, {-32768, 0x00, 0x2a}} {
		if u := g711.EncodeUlawFrame(tc.in); u != tc.ulaw {
			t.Errorf("μ-law(%d) = %#x, want %#x", tc.in, u, tc.ulaw)
		}
		if a := g711.EncodeAlawFrame(tc.in); a != tc.alaw {
			t.Errorf("A-law(%d) = %#x, want %#x", tc.in, a, tc.alaw)
		}
	}
	for v := -32000; v <= 32000; v += 250 {
		for _, law := range []struct {
			enc func(int16) uint8
			dec func(uint8) int16
		}{{g711.EncodeUlawFrame, g711.DecodeUlawFrame}, {g711.EncodeAlawFrame, g711.DecodeAlawFrame}} {
			back := int(law.dec(law.enc(int16(v))))
			if diff := math.Abs(float64(back - v)); diff > math.Max(16, math.Abs(float64(v))/16) {
				t.Fatalf("%d decodes back as %d", v, back)
			}
		}
	}
}
