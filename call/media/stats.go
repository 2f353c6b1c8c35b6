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

// Stats samples the call's quality from pion's statistics.
func (p *Peer) Stats() Quality {
	var q Quality
	var reportRTT float64
	for _, s := range p.rtpStats() {
		switch s := s.(type) {
		case webrtc.InboundRTPStreamStats:
			if s.Kind != "audio" {
				continue
			}
			q.PacketsReceived += s.PacketsReceived
			if total := float64(s.PacketsReceived) + float64(s.PacketsLost); s.PacketsLost > 0 && total > 0 {
				q.Loss = max(q.Loss, float64(s.PacketsLost)/total)
			}
			q.Jitter = max(q.Jitter, s.Jitter)
		case webrtc.RemoteInboundRTPStreamStats:
			if s.Kind != "audio" {
				continue
			}
			q.Loss = max(q.Loss, s.FractionLost)
			q.Jitter = max(q.Jitter, s.Jitter)
			reportRTT = max(reportRTT, s.RoundTripTime)
		}
	}
	if ice := p.iceTransport(); ice != nil {
		if ps, ok := ice.GetSelectedCandidatePairStats(); ok {
			q.RTT = ps.CurrentRoundTripTime
		}
	}
	if q.RTT == 0 {
		q.RTT = reportRTT
	}
	q.Route = p.Route()
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
