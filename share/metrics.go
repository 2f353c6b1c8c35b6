package share

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg             prometheus.Registerer
	terminals       prometheus.GaugeFunc
	registrations   *prometheus.CounterVec
	expired         prometheus.Counter
	superseded      prometheus.Counter
	registerSeconds prometheus.Histogram
}

func newMetrics(r *Registry) *metrics {
	return &metrics{
		terminals: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "irmv_terminals",
			Help: "Terminals hosted by this node.",
		}, func() float64 { return float64(r.Count()) }),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_registrations_total",
			Help: "Registrations by result: ok, invalid (rejected input, including forbidden takeovers), full (the node hosts its most terminals) or error.",
		}, []string{"result"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irmv_terminals_expired_total",
			Help: "Registrations removed because they expired.",
		}),
		superseded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irmv_terminals_superseded_total",
			Help: "Registrations removed because the terminal registered at another node.",
		}),
		registerSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "irmv_register_seconds",
			Help:    "Time to validate, store durably and acknowledge a registration.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.terminals, m.registrations, m.expired, m.superseded, m.registerSeconds}
}

// register registers the collectors with reg (nil: none).
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	var done []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return errors.Join(errors.New("share: register metrics"), err)
		}
		done = append(done, c)
	}
	m.reg = reg
	return nil
}

func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
}

func (m *metrics) observeRegister(start time.Time, err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrForbidden):
		result = "invalid"
	case errors.Is(err, ErrFull):
		result = "full"
	default:
		result = "error"
	}
	m.registrations.WithLabelValues(result).Inc()
	m.registerSeconds.Observe(time.Since(start).Seconds())
}
