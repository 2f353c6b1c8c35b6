package media

import (
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Moving a call to another route is make-before-break: a second Peer for
// the same call, made with Options.Continues (and Options.RelayOnly for
// the relay: pion applies ICETransportPolicy only at construction, not on
// an ICE restart), is negotiated beside the running one. Both share one
// audio track, sent on the old connection until the new one is connected
// and on the new one from then on; both write into the same recording
// until the old one is closed. A Play or recording started on the old
// Peer carries on in the new one when the old one ends. Closing the new
// Peer while the old one still runs abandons it: the old one goes on
// alone (and sends again).

// link makes next the Peer that continues p's call.
func (p *Peer) link(next *Peer) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.handedOver {
		return ErrClosed
	}
	select {
	case <-p.ended:
		return ErrClosed
	default:
	}
	p.next = next // replaces one being abandoned
	return nil
}

// end marks p's connection as over. If another Peer continues the call,
// p's Done waits for that one; if p continues a Peer that still runs, p is
// abandoned and unlinked from it.
func (p *Peer) end() {
	if prev := p.opts.Continues; prev != nil {
		prev.mu.Lock()
		abandoned := prev.next == p && !prev.handedOver
		if abandoned {
			prev.next = nil
		}
		open := !prev.closed
		prev.mu.Unlock()
		if abandoned && open {
			prev.sendTrack(true, nil) // the audio goes back the old way
		}
	}
	p.mu.Lock()
	next := p.next
	if next != nil {
		p.handedOver = true
	}
	p.mu.Unlock()
	if next != nil {
		p.sendTrack(false, nil)
	}
	if next == nil {
		p.endedOnce.Do(func() { close(p.ended) })
		return
	}
	p.followOnce.Do(func() {
		// Not in p.wg: Close must not wait for the call's next leg.
		go func() {
			<-next.ended
			p.endedOnce.Do(func() { close(p.ended) })
		}()
	})
}

// sendTrack binds the call's audio track to p's sender (on) or unbinds
// it. A Peer continued by another stops sending once the new one is
// connected, so that the track's writes never fail on a connection that
// is going away (which would stop a Play), and starts again if the new one
// is abandoned. With only set, p stops sending only while only is the
// Peer that continues it (not one already abandoned).
func (p *Peer) sendTrack(on bool, only *Peer) {
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	p.mu.Lock()
	sender := p.sender
	change := sender != nil && p.detached == on && (only == nil || p.next == only)
	if change {
		p.detached = !on
	}
	p.mu.Unlock()
	if !change {
		return
	}
	var err error
	if on {
		local, _ := p.localTrack()
		err = sender.ReplaceTrack(local)
	} else {
		err = sender.ReplaceTrack(nil)
	}
	if err != nil {
		p.log.Debug("Switching the audio track", "on", on, "err", err)
	}
}

// record writes a received packet into the call's recording, which may
// belong to a Peer this one continues. While two legs run, both may
// deliver the same audio: the recording follows the newest leg that has
// delivered a packet and drops the older legs' packets from then on (or
// goes back to an older one if the newer was abandoned). Legs are ordered
// by Continues, not by RTP sequence numbers: each connection of a browser
// starts its own random sequence.
func (p *Peer) record(pkt *rtp.Packet, c Codec) {
	for q := p; q != nil; q = q.opts.Continues {
		q.recMu.Lock()
		if q.rec == nil {
			q.recMu.Unlock()
			continue
		}
		if from := q.recFrom; from == nil || from == p || p.continues(from) || from.over() {
			q.rec.write(pkt, c)
			q.recFrom = p
		}
		q.recMu.Unlock()
		return
	}
}

// continues reports whether p is a later leg of old's call.
func (p *Peer) continues(old *Peer) bool {
	for q := p.opts.Continues; q != nil; q = q.opts.Continues {
		if q == old {
			return true
		}
	}
	return false
}

// over reports whether p's connection has ended without a leg taking the
// call over (an abandoned leg, or the call's end).
func (p *Peer) over() bool {
	select {
	case <-p.ended:
		return true
	default:
		return false
	}
}

// Meter turns a Peer's statistics, which count from the start of the call,
// into per-interval samples: the loss of a sample is that of the packets
// since the previous one, so that a call that has moved off a lossy route
// shows it at once. Not safe for concurrent use.
type Meter struct {
	p     *Peer
	prev  reading
	start time.Time
}

// NewMeter starts measuring p.
func (p *Peer) NewMeter() *Meter { return &Meter{p: p, start: time.Now()} }

// Sample is the quality since the previous Sample (since the start of p's
// connection for the first; see reading.since), with how long no audio
// has arrived and whether the other side answers ICE.
func (m *Meter) Sample() Quality {
	q := m.next(m.p.readStats())
	q.Route = m.p.Route()
	last := m.start
	if t := m.p.lastPacket.Load(); t > last.UnixNano() {
		last = time.Unix(0, t)
	}
	if d := time.Since(last); d >= NoAudioAfter {
		q.NoAudio = d.Seconds()
	}
	switch m.p.pc.ICEConnectionState() {
	case webrtc.ICEConnectionStateDisconnected, webrtc.ICEConnectionStateFailed:
		q.Disconnected = true
	}
	return q
}

// next is the quality from the previous reading to r.
func (m *Meter) next(r reading) Quality {
	q := r.since(m.prev)
	r.lost = max(r.lost, m.prev.lost)
	m.prev = r
	return q
}
