// When a calling page moves its call to another route, as call/phone's
// monitor decides it (quality.go): after bad_samples samples in a row over
// a threshold, the next route in route_order that the call may take and
// has not left within the hold-down. Tested with the Go monitor's cases,
// call/phone/testdata/monitor-cases.json (node TestBrowserMonitorCases).

// exceeded says which threshold q is over, "" if none (phone
// Thresholds.exceeded, in its words). th: maxLoss (a fraction), maxJitter
// and maxRTT (seconds); 0 or less turns a check off.
export function exceeded(th, q) {
  if (th.maxLoss > 0 && q.loss > th.maxLoss) return "loss " + (q.loss * 100).toFixed(1) + "% > " + (th.maxLoss * 100).toFixed(1) + "%";
  if (th.maxJitter > 0 && q.jitter > th.maxJitter) return "jitter " + (q.jitter * 1000).toFixed(0) + " ms > " + (th.maxJitter * 1000).toFixed(0) + " ms";
  if (th.maxRTT > 0 && q.rtt > th.maxRTT) return "rtt " + (q.rtt * 1000).toFixed(0) + " ms > " + (th.maxRTT * 1000).toFixed(0) + " ms";
  return "";
}

// Monitor watches one call. cfg is the node's /v1/config (bad_samples,
// route_hold_down in seconds, route_order).
export class Monitor {
  constructor(cfg) {
    this.cfg = cfg;
    this.bad = 0;        // consecutive samples over a threshold
    this.left = {};      // route → when the call left it (ms)
    this.pending = null; // a route change under way
  }

  // observe takes a sample q ({loss, jitter, rtt, route}) at now (ms)
  // under thresholds th, with can saying which routes the call may take,
  // and returns the route to move to and why, null to stay.
  observe(th, can, q, now) {
    if (this.pending || !q.route) return null;
    const reason = exceeded(th, q);
    if (!reason) { this.bad = 0; return null; }
    if (++this.bad < this.cfg.bad_samples) return null;
    const order = this.cfg.route_order, i = order.indexOf(q.route);
    if (i < 0) return null;
    for (let k = 1; k < order.length; k++) {
      const to = order[(i + k) % order.length];
      const left = this.left[to];
      if (!can[to] || (left !== undefined && now - left < this.cfg.route_hold_down * 1000)) continue;
      this.bad = 0;
      this.left[q.route] = now;
      this.pending = { from: q.route, to, reason, at: now };
      return { route: to, reason };
    }
    return null;
  }

  // settle ends the pending change (its leg took over or was given up).
  settle() { this.pending = null; }
}
