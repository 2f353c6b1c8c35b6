package call

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	calls    *prometheus.CounterVec // result
	messages prometheus.Counter
	dropped  *prometheus.CounterVec // reason
	sockets  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_calls_total", Help: "Calls relayed through this node, by how they ended.",
		}, []string{"result"}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irmv_call_messages_total", Help: "Signalling messages received from terminals.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_call_messages_dropped_total", Help: "Signalling messages dropped, by reason.",
		}, []string{"reason"}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "irmv_terminal_websockets", Help: "Terminal WebSockets open at this node, a replaced one until its handler has ended its calls and closed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.messages, m.dropped, m.sockets)
	}
	return m
}
