package media

import (
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/signal"
)

// Routes reported by [Peer.Route] and in [Quality].
const (
	RouteUnknown = "" // no candidate pair selected yet
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
	// ReportRTT is the round-trip time in seconds from the RTCP reports
	// of our stream (the worst remote-inbound-rtp roundTripTime), 0
	// before one. Through a SIP bridge it spans both legs: the bridge
	// adds the phone leg's round trip (package sip).
	ReportRTT float64 `json:"report_rtt,omitempty"`
	// Route is signal.RouteDirect, signal.RouteRelayed or RouteUnknown.
	Route string `json:"route"`
	// PacketsReceived counts the audio packets received.
	PacketsReceived uint32 `json:"packets_received"`
	// NoAudio, in a Meter's samples, is how long in seconds no audio
	// packet has arrived (since the last one, or since the Meter started),
	// once that is NoAudioAfter or more; 0 while audio arrives. Loss
	// cannot rise without packets: Loss, Jitter and RTT are then the last
	// measured, not the line's state.
	NoAudio float64 `json:"no_audio,omitempty"`
	// Disconnected, in a Meter's samples: the ICE agent gets no answers
	// from the other side (ICE state disconnected or failed), so RTT is
	// stale.
	Disconnected bool `json:"disconnected,omitempty"`
}

// NoAudioAfter is how long without an audio packet a Meter's sample
// reports (Quality.NoAudio): a few 20 ms packets lost is loss, this is
// a party that sends nothing or is gone.
const NoAudioAfter = 2 * time.Second

// rtpStats is the audio streams' statistics as a WebRTC statistics report
// (inbound-rtp, and remote-inbound-rtp from the other side's receiver
// reports), read from the stats interceptor that registerInterceptors
// keeps. pion's PeerConnection.GetStats is not used: it reads fields that
// a closing PeerConnection (closed by pion itself when the other side
// aborts) and a remote track's first packet write without a lock (data
// races in pion/webrtc v4.2.26).
func (p *Peer) rtpStats() webrtc.StatsReport {
	p.mu.Lock()
	local, remote := p.localSSRC, p.remoteSSRC
	p.mu.Unlock()
	report := webrtc.StatsReport{}
	if p.stats == nil {
		return report
	}
	if s := p.statsOf(remote); s != nil {
		in := s.InboundRTPStreamStats
		report["inbound-rtp"] = webrtc.InboundRTPStreamStats{
			Type:            webrtc.StatsTypeInboundRTP,
			Kind:            "audio",
			SSRC:            webrtc.SSRC(remote),
			PacketsReceived: uint32(in.PacketsReceived),
			PacketsLost:     int32(in.PacketsLost),
			Jitter:          in.Jitter,
		}
	}
	if s := p.statsOf(local); s != nil && s.RemoteInboundRTPStreamStats.RoundTripTimeMeasurements+s.RemoteInboundRTPStreamStats.PacketsReceived > 0 {
		ri := s.RemoteInboundRTPStreamStats
		report["remote-inbound-rtp"] = webrtc.RemoteInboundRTPStreamStats{
			Type:          webrtc.StatsTypeRemoteInboundRTP,
			Kind:          "audio",
			SSRC:          webrtc.SSRC(local),
			PacketsLost:   int32(ri.PacketsLost),
			Jitter:        ri.Jitter,
			FractionLost:  ri.FractionLost,
			RoundTripTime: ri.RoundTripTime.Seconds(),
		}
	}
	return report
}

// statsOf is the interceptor's statistics of the stream ssrc, nil if it
// has none (0: not known yet).
func (p *Peer) statsOf(ssrc uint32) *stats.Stats {
	if ssrc == 0 {
		return nil
	}
	return p.stats.Get(ssrc)
}

// registerInterceptors registers what webrtc.RegisterDefaultInterceptors
// does (NACK, RTCP reports, simulcast header extensions, statistics, TWCC),
// with a statistics interceptor of its own whose Getter is stored in the
// returned pointer when the PeerConnection is built, for rtpStats, and,
// with onReport, Options.OnReport's hook (first: the report interceptor
// writes through it).
//
// The statistics come before the report interceptor: each interceptor
// writes the RTCP it makes to the writer of those before it, and the
// statistics must see our Sender Reports to match the other side's
// LSR (remote-inbound-rtp roundTripTime).
func registerInterceptors(m *webrtc.MediaEngine, ir *interceptor.Registry, onReport func(*rtcp.ReceptionReport)) (*stats.Getter, error) {
	if onReport != nil {
		ir.Add(reportHook(onReport))
	}
	f, err := stats.NewInterceptor()
	if err != nil {
		return nil, err
	}
	getter := new(stats.Getter)
	f.OnNewPeerConnection(func(_ string, g stats.Getter) { *getter = g })
	ir.Add(f)
	if err := webrtc.ConfigureNack(m, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, ir); err != nil {
		return nil, err
	}
	return getter, nil
}

// reportHook is Options.OnReport as an interceptor: it changes the report
// blocks of the RTCP the Peer sends.
type reportHook func(*rtcp.ReceptionReport)

func (h reportHook) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &reportHookInterceptor{f: h}, nil
}

type reportHookInterceptor struct {
	interceptor.NoOp
	f reportHook
}

func (h *reportHookInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, a interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			var blocks []rtcp.ReceptionReport
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				blocks = p.Reports
			case *rtcp.SenderReport:
				blocks = p.Reports
			}
			for i := range blocks {
				h.f(&blocks[i])
			}
		}
		return w.Write(pkts, a)
	})
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

// readStats walks pion's statistics and the selected pair once. The
// selected pair is not asked of a closed or ended connection: pion logs
// an error for an agent that is closed (statsMu orders this with Close).
func (p *Peer) readStats() reading {
	r := walkStats(p.rtpStats())
	p.statsMu.RLock()
	defer p.statsMu.RUnlock()
	if p.isClosed() || p.over() {
		return r
	}
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
	q := Quality{Loss: r.fraction, Jitter: r.jitter, RTT: r.pairRTT, ReportRTT: r.reportRTT, PacketsReceived: uint32(r.recv)}
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
// [signal.RouteDirect], [signal.RouteRelayed], or [RouteUnknown] before one is selected.
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
		return signal.RouteRelayed
	}
	return signal.RouteDirect
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
