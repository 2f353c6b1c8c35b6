// The quality of a running call as call/media measures it (stats.go): one
// walk over a WebRTC statistics report (readStats) and the quality of the
// interval between two readings (since). Tested with the Go code's cases,
// call/media/testdata/quality-cases.json (node TestBrowserQualityCases).

// readStats reads the audio streams of an RTCStatsReport (or any Map of
// statistics objects): the cumulative counts of the audio received, the
// worst figures of both directions and the selected candidate pair's RTT.
export function readStats(report) {
  const r = { recv: 0, lost: 0, fraction: 0, jitter: 0, reportRTT: 0, pairRTT: 0,
    inbound: false, sent: -1, pair: null }; // and for the page: audio received at all, packets sent, the selected pair

  let transport = null, nominated = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      r.inbound = true;
      r.recv += s.packetsReceived || 0;
      r.lost += s.packetsLost || 0;
      r.jitter = Math.max(r.jitter, s.jitter || 0);
    } else if (s.type === "remote-inbound-rtp" && s.kind === "audio") {
      r.fraction = Math.max(r.fraction, s.fractionLost || 0);
      r.jitter = Math.max(r.jitter, s.jitter || 0);
      r.reportRTT = Math.max(r.reportRTT, s.roundTripTime || 0);
    } else if (s.type === "outbound-rtp" && s.kind === "audio") {
      r.sent = s.packetsSent || 0;
    } else if (s.type === "transport") {
      transport = s;
    } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      nominated = s;
    }
  });
  const pair = (transport && transport.selectedCandidatePairId && report.get(transport.selectedCandidatePairId)) || nominated;
  if (pair) r.pairRTT = pair.currentRoundTripTime || 0;
  r.pair = pair;
  return r;
}

// since is the quality of the interval from prev (null: from the start)
// to r: loss the worse of the fraction of our packets the other side last
// reported lost and the fraction of its packets lost in the interval;
// jitter the worse of both directions; rtt the selected pair's, else the
// receiver reports'.
export function since(r, prev) {
  const p = prev || { recv: 0, lost: 0 };
  const q = { loss: r.fraction, jitter: r.jitter, rtt: r.pairRTT || r.reportRTT, packets_received: r.recv };
  const dr = r.recv - p.recv, dl = Math.max(r.lost - p.lost, 0); // duplicates can make lost go down
  if (dr + dl > 0) q.loss = Math.max(q.loss, dl / (dr + dl));
  return q;
}

// sipLegRTT is a bridged call's round trip between the bridging node
// and the SIP phone, in seconds (call/phone sipLegRTT): what the RTCP
// reports' round trip, which the bridge makes span both legs, has beyond
// the selected pair's; null while either is not known.
export function sipLegRTT(r) {
  if (!(r.reportRTT > 0 && r.pairRTT > 0)) return null;
  return Math.max(r.reportRTT - r.pairRTT, 0);
}

// Meter turns the readings of one connection into per-interval samples
// (media.Meter).
export class Meter {
  constructor() { this.prev = null; }
  // sample is the quality since the previous sample (since the start of
  // the connection for the first).
  sample(report) { return this.next(readStats(report)); }
  // next is the quality from the previous reading to r.
  next(r) {
    const q = since(r, this.prev);
    this.prev = { recv: r.recv, lost: Math.max(r.lost, this.prev ? this.prev.lost : 0) };
    return q;
  }
}
