package search

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	lookups       *prometheus.CounterVec   // path, outcome
	latency       *prometheus.HistogramVec // path
	lookupServed  prometheus.Counter
	lookupDropped *prometheus.CounterVec // reason
	rejected      *prometheus.CounterVec // reason: records that failed verification
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_lookups_total", Help: "Searches by path and outcome (found, not_found).",
		}, []string{"path", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "irmv_lookup_seconds", Help: "Time to a search path's first result.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"path"}),
		lookupServed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irmv_lookup_requests_served_total", Help: "Lookup protocol requests answered.",
		}),
		lookupDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_lookup_requests_dropped_total", Help: "Lookup protocol requests dropped, by reason.",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_records_rejected_total", Help: "Records from other nodes that failed verification.",
		}, []string{"path"}),
	}
	if reg != nil {
		reg.MustRegister(m.lookups, m.latency, m.lookupServed, m.lookupDropped, m.rejected)
	}
	return m
}
