package media

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// Play sends an audio file on the audio track in real time, from when the
// call is connected: the Opus packets of an Ogg/Opus stream unchanged on
// an Opus call, each as long as its TOC byte says (RFC 6716 section 3.1),
// and a WAV file (8 kHz, 16-bit PCM, mono or stereo mixed down) encoded
// to μ-law or A-law on a G.711 call, 20 ms a packet. It returns nil at the
// end of the stream and [ErrClosed] when the call ends first. A file that
// does not fit the call's codec is refused ([ErrPlayFormat]): nothing is
// transcoded. Anything but Ogg or WAV is refused with [ErrNotOpus].
func (p *Peer) Play(r io.Reader) error {
	src, err := openPlay(r)
	if err != nil {
		return err
	}
	select {
	case <-p.connected:
	case <-p.ended:
		return ErrClosed
	}
	p.mu.Lock()
	track, codec := p.track, p.codec
	p.mu.Unlock()
	if track == nil {
		return errors.New("media: Play on a PassThrough Peer")
	}
	if err := src.use(codec); err != nil {
		return err
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop() // since Go 1.23 a stopped timer can be Reset without draining
	defer timer.Stop()
	start := time.Now()
	var at time.Duration // media time of the next packet
	for {
		pkt, d, err := src.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if wait := time.Until(start.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-p.ended:
				return ErrClosed
			}
		}
		if err := track.WriteSample(media.Sample{Data: pkt, Duration: d}); err != nil {
			if p.isClosed() {
				return ErrClosed
			}
			return fmt.Errorf("media: send audio: %w", err)
		}
		at += d
	}
}

// recorder writes received packets into one recording: an Ogg logical
// stream for Opus, a WAV file for G.711, as the first packet's codec says.
type recorder struct {
	out   io.Writer // the caller's writer
	codec Codec     // of the first packet; packets of others are dropped
	ogg   *oggwriter.Writer
	track *oggwriter.Track
	wav   *wavRecorder
	n     int   // packets written
	err   error // first write error; later packets are dropped
}

// recordSSRC is the SSRC the Ogg track is registered under; packets are
// rewritten to it so that a change of the sender's SSRC (a restart) keeps
// one stream.
const recordSSRC = 0

// RecordFormatter is implemented by writers given to [Peer.Record] that
// want to know the recording's format before its first byte: "ogg"
// (Ogg/Opus) or "wav" (G.711 decoded to 16-bit PCM), the extension its
// file should have.
type RecordFormatter interface {
	RecordFormat(ext string)
}

func (r *recorder) write(pkt *rtp.Packet, c Codec) {
	if r.err != nil {
		return
	}
	if r.codec == CodecUnknown {
		if r.err = r.start(c); r.err != nil {
			return
		}
	}
	if c != r.codec {
		return
	}
	if r.wav != nil {
		r.err = r.wav.write(pkt.Timestamp, pkt.Payload)
	} else {
		cp := *pkt
		cp.SSRC = recordSSRC
		r.err = r.track.WriteRTP(&cp)
	}
	r.n++
}

// start opens the recording in the format of codec c.
func (r *recorder) start(c Codec) error {
	if c == CodecUnknown {
		return errors.New("media: record: audio of an unknown codec")
	}
	r.codec = c
	ext := "ogg"
	if c.G711() {
		ext = "wav"
	}
	if f, ok := r.out.(RecordFormatter); ok {
		f.RecordFormat(ext)
	}
	if c.G711() {
		w, err := newWAVRecorder(r.out, c)
		r.wav = w
		return err
	}
	opts := []oggwriter.WriterOption{oggwriter.WithSampleRate(opusClockRate), oggwriter.WithChannelCount(opusChannels)}
	if sw, ok := r.out.(interface {
		io.Seeker
		io.WriterAt
	}); ok {
		opts = append(opts, oggwriter.WithSeekableOutput(sw))
	}
	ow, err := oggwriter.NewWriter(&recordOutput{Writer: r.out}, opts...)
	if err != nil {
		return fmt.Errorf("media: record: %w", err)
	}
	tr, err := ow.NewTrack(recordSSRC)
	if err != nil {
		return fmt.Errorf("media: record: %w", err)
	}
	r.ogg, r.track = ow, tr
	return nil
}

// close finishes the recording.
func (r *recorder) close() error {
	switch {
	case r.n == 0:
		return r.err // Close would write the headers of an empty stream
	case r.wav != nil:
		return errors.Join(r.err, r.wav.close())
	}
	return errors.Join(r.err, r.ogg.Close())
}

// recordPreSkip is the pre-skip a recording's OpusHead declares (RFC 7845
// section 4.2): libopus's encoder lookahead at 48 kHz (6.5 ms), where every
// stream libopus encodes (Chromium's, opusenc's) starts, so a recording
// starts where its source did. pion's oggwriter writes 3840 (80 ms, meant
// for streams cut from the middle, which a recording is not) and has no
// option for it, so its header page is rewritten on the way out.
const recordPreSkip = 312

// recordOutput passes oggwriter's pages to the caller's writer, the first
// (OpusHead) page with recordPreSkip, and hides the writer's Close method,
// which oggwriter would otherwise call.
type recordOutput struct {
	io.Writer
	headed bool
}

func (w *recordOutput) Write(page []byte) (int, error) {
	if !w.headed {
		w.headed = true
		page = withPreSkip(page, recordPreSkip)
	}
	return w.Writer.Write(page)
}

// Record writes the received audio into w until the call ends (Close, or
// the connection fails or is closed by the other side); then it finishes
// the recording and returns. Opus is written as an Ogg/Opus stream (48 kHz,
// two channels, RFC 7845), the packets unchanged; G.711 as a WAV file
// (8 kHz, one channel, 16-bit PCM), which needs w to be an io.WriteSeeker.
// A w that implements [RecordFormatter] is told which before the first
// byte. Packets that arrive before Record is called are not recorded:
// callers that run it in a goroutine should use [Peer.StartRecording]
// instead, before Offer or Answer. It does not close w. A call that
// received no audio leaves w empty. Where w can seek and write at an
// offset (an *os.File), the last Ogg page is marked as the end of the
// stream; other writers get an empty end-of-stream page appended.
func (p *Peer) Record(w io.Writer) error {
	wait, err := p.StartRecording(w)
	if err != nil {
		return err
	}
	return wait()
}

// StartRecording is [Peer.Record] in two steps: it starts recording into w
// before it returns, so that called before Offer or Answer it records from
// the first packet, and wait blocks until the call ends, finishes the
// recording and returns its error. wait must be called (once); it does not
// close w.
func (p *Peer) StartRecording(w io.Writer) (wait func() error, err error) {
	rec := &recorder{out: w}
	p.recMu.Lock()
	if p.rec != nil {
		p.recMu.Unlock()
		return nil, ErrRecording
	}
	p.rec = rec
	p.recMu.Unlock()

	return func() error {
		<-p.ended
		p.recMu.Lock()
		p.rec = nil
		p.recMu.Unlock()
		return rec.close()
	}, nil
}
