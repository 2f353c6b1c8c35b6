package media

import (
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/signal"
)

// Routes reported by [Peer.Route] and in [Quality].
const (
	RouteUnknown = ""                  // no candidate pair selected yet
	RouteDirect  = signal.RouteDirect  // host, server- or peer-reflexive candidates on both ends
	RouteRelayed = signal.RouteRelayed // a TURN relay on at least one end
)

// Quality is a sample of a running call's quality, in the units of the
// WebRTC statistics (https://www.w3.org/TR/webrtc-stats/).
type Quality struct {
	// Loss is the fraction of audio packets lost, 0 to 1: the worse of what
	// the other side reports for our stream (remote-inbound-rtp
	// fractionLost) and what we count on its stream (inbound-rtp).
	Loss float64 `json:"loss"`
	// Jitter is the interarrival jitter in seconds, the worse of both
	// directions.
	Jitter float64 `json:"jitter"`
	// RTT is the round-trip time in seconds of the selected candidate pair
	// (ICE consent checks), or from the RTCP reports where that is missing.
	RTT float64 `json:"rtt"`
	// Route is RouteDirect, RouteRelayed or RouteUnknown.
	Route string `json:"route"`
	// PacketsReceived counts the audio packets received.
	PacketsReceived uint32 `json:"packets_received"`
}

// rtpStats is pion's statistics report once the first audio packet has
// arrived, and nil before: pion's GetStats reads a remote track's codec
// without its lock while the track's first packet sets it (a data race in
// pion/webrtc v4.2.26); after the first packet the codec changes only
// with the payload type. The selected pair's RTT comes from the ICE
// transport either way.
func (p *Peer) rtpStats() webrtc.StatsReport {
	select {
	case <-p.firstPacket:
		return p.pc.GetStats()
	default:
		return nil
	}
}

// Stats is the call's quality since its start: a Meter's first sample.
func (p *Peer) Stats() Quality {
	q := p.readStats().since(reading{})
	q.Route = p.Route()
	return q
}

// reading is what one walk over a statistics report gives: the cumulative
// counts of the audio received and the latest figures of both directions.
// The web page computes the same (node/web/static/quality.js), tested with
// the same cases (testdata/quality-cases.json).
type reading struct {
	recv, lost int64   // inbound-rtp packetsReceived and packetsLost, summed
	fraction   float64 // the worst remote-inbound-rtp fractionLost (RTCP receiver reports)
	jitter     float64 // the worst jitter of both directions, seconds
	reportRTT  float64 // the worst remote-inbound-rtp roundTripTime, seconds
	pairRTT    float64 // the selected candidate pair's currentRoundTripTime (ICE consent checks)
}

// readStats walks pion's statistics and the selected pair once.
func (p *Peer) readStats() reading {
	r := walkStats(p.rtpStats())
	if ice := p.iceTransport(); ice != nil {
		if ps, ok := ice.GetSelectedCandidatePairStats(); ok {
			r.pairRTT = ps.CurrentRoundTripTime
		}
	}
	return r
}

// walkStats reads the audio streams of a report.
func walkStats(report webrtc.StatsReport) reading {
	var r reading
	for _, s := range report {
		switch s := s.(type) {
		case webrtc.InboundRTPStreamStats:
			if s.Kind != "audio" {
				continue
			}
			r.recv += int64(s.PacketsReceived)
			r.lost += int64(s.PacketsLost)
			r.jitter = max(r.jitter, s.Jitter)
		case webrtc.RemoteInboundRTPStreamStats:
			if s.Kind != "audio" {
				continue
			}
			r.fraction = max(r.fraction, s.FractionLost)
			r.jitter = max(r.jitter, s.Jitter)
			r.reportRTT = max(r.reportRTT, s.RoundTripTime)
		}
	}
	return r
}

// since is the quality of the interval from prev (the zero reading: from
// the start) to r: Loss the worse of the fraction of our packets the other
// side last reported lost and the fraction of its packets lost in the
// interval; Jitter the worse of both directions; RTT the selected pair's,
// else the receiver reports'.
func (r reading) since(prev reading) Quality {
	q := Quality{Loss: r.fraction, Jitter: r.jitter, RTT: r.pairRTT, PacketsReceived: uint32(r.recv)}
	dr, dl := r.recv-prev.recv, max(r.lost-prev.lost, 0) // duplicates can make lost go down
	if dr+dl > 0 {
		q.Loss = max(q.Loss, float64(dl)/float64(dr+dl))
	}
	if q.RTT == 0 {
		q.RTT = r.reportRTT
	}
	return q
}

// Route tells whether the media runs directly between the terminals or
// through a TURN relay, judged by the selected ICE candidate pair:
// [RouteDirect], [RouteRelayed], or [RouteUnknown] before one is selected.
func (p *Peer) Route() string {
	ice := p.iceTransport()
	if ice == nil {
		return RouteUnknown
	}
	pair, err := ice.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return RouteUnknown
	}
	if pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay {
		return RouteRelayed
	}
	return RouteDirect
}

// iceTransport is the (bundled) ICE transport, nil before negotiation.
func (p *Peer) iceTransport() *webrtc.ICETransport {
	p.mu.Lock()
	sender := p.sender
	p.mu.Unlock()
	if sender != nil {
		if dtls := sender.Transport(); dtls != nil {
			return dtls.ICETransport()
		}
	}
	if sctp := p.pc.SCTP(); sctp != nil && sctp.Transport() != nil {
		return sctp.Transport().ICETransport()
	}
	return nil
}
