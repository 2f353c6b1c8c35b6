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

// Play sends the Opus packets of an Ogg/Opus stream on the audio track in
// real time, each packet as long as its TOC byte says (RFC 6716 section 3.1),
// from when the call is connected. It returns nil at the end of the stream
// and [ErrClosed] when the call ends first. Packets are sent unchanged, so
// the stream should be 48 kHz Opus as WebRTC expects.
func (p *Peer) Play(r io.Reader) error {
	src, err := newOpusReader(r)
	if err != nil {
		return err
	}
	select {
	case <-p.connected:
	case <-p.ended:
		return ErrClosed
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop() // since Go 1.23 a stopped timer can be Reset without draining
	defer timer.Stop()
	start := time.Now()
	var at time.Duration // media time of the next packet
	for {
		pkt, err := src.Next()
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
		d := opusDuration(pkt)
		if err := p.track.WriteSample(media.Sample{Data: pkt, Duration: d}); err != nil {
			if p.isClosed() {
				return ErrClosed
			}
			return fmt.Errorf("media: send audio: %w", err)
		}
		at += d
	}
}

// recorder writes received packets into one Ogg logical stream.
type recorder struct {
	w     *oggwriter.Writer
	track *oggwriter.Track
	n     int   // packets written
	err   error // first write error; later packets are dropped
}

// recordSSRC is the SSRC the Ogg track is registered under; packets are
// rewritten to it so that a change of the sender's SSRC (a restart) keeps
// one stream.
const recordSSRC = 0

func (r *recorder) write(pkt *rtp.Packet) {
	if r.err != nil {
		return
	}
	cp := *pkt
	cp.SSRC = recordSSRC
	r.err = r.track.WriteRTP(&cp)
	r.n++
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

// Record writes the received audio into w as an Ogg/Opus stream (48 kHz,
// two channels, RFC 7845), the Opus packets unchanged, until the call ends
// (Close, or the connection fails or is closed by the other side); then it
// finishes the stream and returns. Packets that arrive before Record is
// called are not recorded: callers that run it in a goroutine should use
// [Peer.StartRecording] instead, before Offer or Answer. It does not close w.
// A call that received no audio leaves w empty. Where w can seek and write
// at an offset (an *os.File), the last audio page is marked as the end of
// the stream; other writers get an empty end-of-stream page appended.
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
// stream and returns its error. wait must be called (once); it does not
// close w.
func (p *Peer) StartRecording(w io.Writer) (wait func() error, err error) {
	opts := []oggwriter.WriterOption{oggwriter.WithSampleRate(opusClockRate), oggwriter.WithChannelCount(opusChannels)}
	if sw, ok := w.(interface {
		io.Seeker
		io.WriterAt
	}); ok {
		opts = append(opts, oggwriter.WithSeekableOutput(sw))
	}
	ow, err := oggwriter.NewWriter(&recordOutput{Writer: w}, opts...)
	if err != nil {
		return nil, fmt.Errorf("media: record: %w", err)
	}
	tr, err := ow.NewTrack(recordSSRC)
	if err != nil {
		return nil, fmt.Errorf("media: record: %w", err)
	}
	rec := &recorder{w: ow, track: tr}
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
		if rec.n == 0 {
			return nil // Close would write the headers of an empty stream
		}
		return errors.Join(rec.err, ow.Close())
	}, nil
}
