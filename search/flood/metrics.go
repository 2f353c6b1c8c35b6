package flood

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// DropReason says why a received message was dropped. It is the value of
// the reason label of irmv_flood_dropped_total.
type DropReason string

// Drop reasons.
const (
	DropDuplicate   DropReason = "duplicate"    // query GUID already handled
	DropRate        DropReason = "rate"         // per-peer query rate or per-query hit budget exceeded
	DropMalformed   DropReason = "malformed"    // does not decode or breaks a field rule
	DropTTL         DropReason = "ttl"          // ttl/hops out of bounds
	DropUnknownGUID DropReason = "unknown_guid" // hit for a GUID with no route
	DropOversize    DropReason = "oversize"     // over the size limit
	DropLate        DropReason = "late"         // hit for one of our own queries after it ended
	DropQueryFull   DropReason = "query_full"   // hit for one of our own queries holding maxQueuedHits undelivered
	DropUnasked     DropReason = "unasked"      // hit for one of our own queries from a peer it was not sent to
)

var dropReasons = [...]DropReason{DropDuplicate, DropRate, DropMalformed, DropTTL, DropUnknownGUID, DropOversize, DropLate, DropQueryFull, DropUnasked}

// Stats is a snapshot of a Flooder's counters since New.
type Stats struct {
	// QueriesHandled counts distinct queries from other nodes that passed
	// every check and were matched (and forwarded if their TTL allowed).
	QueriesHandled uint64
	// Duplicates counts queries dropped because their GUID was seen before
	// (the same as Dropped[DropDuplicate]).
	Duplicates uint64
	// Dropped counts dropped received messages by reason.
	Dropped map[DropReason]uint64
	// MessagesIn counts received messages that decoded (queries and hits).
	MessagesIn uint64
	// MessagesOut counts messages sent successfully: QueriesOut + HitsOut.
	MessagesOut uint64
	QueriesOut  uint64 // queries originated or forwarded
	HitsOut     uint64 // hits answered or routed back
	// HitsDelivered counts hit messages delivered to our own queries.
	HitsDelivered uint64
	// SendErrors counts messages that could not be sent (stream failed,
	// peer gone, timeout, Close).
	SendErrors uint64
}

type counters struct {
	queriesHandled atomic.Uint64
	messagesIn     atomic.Uint64
	queriesOut     atomic.Uint64
	hitsOut        atomic.Uint64
	hitsDelivered  atomic.Uint64
	sendErrors     atomic.Uint64
	dropped        [len(dropReasons)]atomic.Uint64
}

// metrics are the prometheus collectors; nil fields mean no metrics.
type metrics struct {
	reg      prometheus.Registerer
	messages *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{reg: reg}
	if reg == nil {
		return m, nil
	}
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "irmv_flood_messages_total",
		Help: "Flood protocol messages received (dir=in, decoded) and sent (dir=out), by type.",
	}, []string{"dir", "type"})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "irmv_flood_dropped_total",
		Help: "Received flood protocol messages dropped, by reason.",
	}, []string{"reason"})
	if err := reg.Register(m.messages); err != nil {
		return nil, err
	}
	if err := reg.Register(m.dropped); err != nil {
		reg.Unregister(m.messages)
		return nil, err
	}
	// Pre-create the series so dashboards see zeros.
	for _, d := range []string{"in", "out"} {
		for _, t := range []Type{TypeQuery, TypeHit} {
			m.messages.WithLabelValues(d, string(t))
		}
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(string(r))
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg != nil {
		m.reg.Unregister(m.messages)
		m.reg.Unregister(m.dropped)
	}
}

func (f *Flooder) countDrop(r DropReason) {
	for i, d := range dropReasons {
		if d == r {
			f.stats.dropped[i].Add(1)
		}
	}
	if f.metrics.dropped != nil {
		f.metrics.dropped.WithLabelValues(string(r)).Inc()
	}
}

func (f *Flooder) countIn(t Type) {
	f.stats.messagesIn.Add(1)
	if f.metrics.messages != nil {
		f.metrics.messages.WithLabelValues("in", string(t)).Inc()
	}
}

func (f *Flooder) countOut(t Type) {
	if t == TypeQuery {
		f.stats.queriesOut.Add(1)
	} else {
		f.stats.hitsOut.Add(1)
	}
	if f.metrics.messages != nil {
		f.metrics.messages.WithLabelValues("out", string(t)).Inc()
	}
}

// dropReasonOf maps a Decode error to a drop reason.
func dropReasonOf(err error) DropReason {
	switch {
	case errors.Is(err, ErrOversize):
		return DropOversize
	case errors.Is(err, ErrTTL):
		return DropTTL
	default:
		return DropMalformed
	}
}

// Stats returns a snapshot of the counters.
func (f *Flooder) Stats() Stats {
	s := Stats{
		QueriesHandled: f.stats.queriesHandled.Load(),
		MessagesIn:     f.stats.messagesIn.Load(),
		QueriesOut:     f.stats.queriesOut.Load(),
		HitsOut:        f.stats.hitsOut.Load(),
		HitsDelivered:  f.stats.hitsDelivered.Load(),
		SendErrors:     f.stats.sendErrors.Load(),
		Dropped:        make(map[DropReason]uint64, len(dropReasons)),
	}
	s.MessagesOut = s.QueriesOut + s.HitsOut
	for i, r := range dropReasons {
		s.Dropped[r] = f.stats.dropped[i].Load()
	}
	s.Duplicates = s.Dropped[DropDuplicate]
	return s
}
