package media

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// ErrRelayOnly is returned by [Peer.Reroute] when a direct route is asked
// of a Peer made with Options.RelayOnly.
var ErrRelayOnly = errors.New("media: peer is relay-only")

// Reroute moves a running call to another route with an ICE restart (RFC
// 8445 section 9): RouteRelayed keeps only relayed candidates (TURN) on
// this side's candidates and the other side's, RouteDirect only host and
// reflexive ones, RouteUnknown ("") lifts the filter. The offer goes to
// the other side, whose answer goes to [Peer.Accept] as usual.
//
// Why filtering and not ICETransportPolicy: pion (v4.2) takes a new policy
// from SetConfiguration only into its list of servers, not into the
// candidate types its ICE agent gathers, so a restart would gather the same
// kinds again and pick the same pair. Filtering what is signalled has the
// same effect: no pair of the unwanted kind can form.
func (p *Peer) Reroute(route string) (Description, error) {
	switch route {
	case RouteUnknown, RouteRelayed:
	case RouteDirect:
		if p.opts.RelayOnly {
			return Description{}, ErrRelayOnly
		}
	default:
		return Description{}, fmt.Errorf("media: unknown route %q", route)
	}
	if p.isClosed() {
		return Description{}, ErrClosed
	}
	p.mu.Lock()
	p.prefer = route
	p.mu.Unlock()
	d, err := p.offer(&webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return Description{}, err
	}
	d.SDP = filterSDP(d.SDP, route)
	return d, nil
}

// Preferred is the route set by the last [Peer.Reroute] ("" for none).
func (p *Peer) Preferred() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.prefer
}

// allowed tells whether a candidate of type typ ("host", "srflx", "prflx",
// "relay"; "" when unknown) may be used on route prefer.
func allowed(prefer, typ string) bool {
	switch prefer {
	case RouteRelayed:
		return typ == "relay"
	case RouteDirect:
		return typ != "relay"
	}
	return true
}

// candidateType is the type of a candidate attribute ("typ <type>", RFC
// 8839 section 5.1), "" if it has none.
func candidateType(c string) string {
	f := strings.Fields(c)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "typ" {
			return f[i+1]
		}
	}
	return ""
}

// filterSDP drops the a=candidate lines that route prefer does not allow.
func filterSDP(sdp, prefer string) string {
	if prefer == RouteUnknown || !strings.Contains(sdp, "a=candidate:") {
		return sdp
	}
	var b strings.Builder
	for line := range strings.Lines(sdp) {
		if c, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=candidate:"); ok && !allowed(prefer, candidateType(c)) {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// Meter turns a Peer's statistics, which count from the start of the call,
// into per-interval samples: the loss of a sample is that of the packets
// since the previous one, so that a call that has moved off a lossy route
// shows it at once. Not safe for concurrent use.
type Meter struct {
	p          *Peer
	recv, lost int64
	started    bool
}

// NewMeter starts measuring p.
func (p *Peer) NewMeter() *Meter { return &Meter{p: p} }

// Sample is the quality since the previous Sample (since NewMeter for the
// first): Loss is the worse of the fraction of the other side's packets
// lost in the interval (inbound-rtp) and the fraction of ours it last
// reported lost (remote-inbound-rtp, RTCP receiver reports); Jitter the
// worse of both directions; RTT that of the selected candidate pair (ICE
// consent checks), else of the RTCP reports.
func (m *Meter) Sample() Quality {
	var q Quality
	var recv, lost int64
	var reportRTT float64
	for _, s := range m.p.pc.GetStats() {
		switch s := s.(type) {
		case webrtc.InboundRTPStreamStats:
			if s.Kind != "audio" {
				continue
			}
			q.PacketsReceived += s.PacketsReceived
			recv += int64(s.PacketsReceived)
			lost += int64(s.PacketsLost)
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
	if m.started {
		dr, dl := recv-m.recv, max(lost-m.lost, 0) // duplicates can make lost go down
		if dr+dl > 0 {
			q.Loss = max(q.Loss, float64(dl)/float64(dr+dl))
		}
	}
	m.recv, m.lost, m.started = recv, max(lost, m.lost), true
	if ice := m.p.iceTransport(); ice != nil {
		if ps, ok := ice.GetSelectedCandidatePairStats(); ok {
			q.RTT = ps.CurrentRoundTripTime
		}
	}
	if q.RTT == 0 {
		q.RTT = reportRTT
	}
	q.Route = m.p.Route()
	return q
}
