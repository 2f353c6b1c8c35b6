package sip

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	dropped   *prometheus.CounterVec
	registers *prometheus.CounterVec
	reinvites prometheus.Counter
	invites   *prometheus.CounterVec
	noDialog  *prometheus.CounterVec
	srtpCalls prometheus.Counter
	// srtpPackets: from_phone (decrypted), to_phone (encrypted),
	// rejected (failed authentication or replay check).
	srtpPackets *prometheus.CounterVec
}

func newMetrics(s *Server, r prometheus.Registerer) *metrics {
	m := &metrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_sip_dropped_total",
			Help: "SIP input dropped, by reason: malformed (unparsable or missing what it needs) or rate (over a source's rate).",
		}, []string{"reason"}),
		registers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_sip_registers_total",
			Help: "SIP REGISTER requests by result: ok, removed, challenged, forbidden, too_brief, malformed, refused.",
		}, []string{"result"}),
		reinvites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irmv_sip_reinvites_total",
			Help: "re-INVITEs (hold, resume) answered within bridged calls.",
		}),
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_sip_invites_total",
			Help: "INVITEs outside a dialog by authorization: authorized (digest), trusted (open network), challenged (407), forbidden (403), malformed (400).",
		}, []string{"result"}),
		noDialog: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_sip_outside_dialog_total",
			Help: "In-dialog requests (BYE, re-INVITE, CANCEL) refused with 481: no such dialog or transaction, or not from the dialog's phone.",
		}, []string{"method"}),
		srtpCalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "irmv_sip_srtp_calls_total",
			Help: "Bridged calls whose phone leg is SDES-SRTP (the rest are plain RTP).",
		}),
		srtpPackets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "irmv_sip_srtp_packets_total",
			Help: "SRTP packets on phone legs: from_phone (authenticated and decrypted), to_phone (encrypted), rejected (failed authentication or replay check: dropped).",
		}, []string{"direction"}),
	}
	if r != nil {
		r.MustRegister(m.dropped, m.registers, m.reinvites, m.invites, m.noDialog, m.srtpCalls, m.srtpPackets, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "irmv_sip_bindings",
			Help: "SIP phones registered at this node.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.bindings))
		}))
	}
	return m
}

// countingHandler takes sipgo's logs: what it could not parse is counted
// as dropped input and logged at debug level only (the input is the
// sender's, not a fault of the node); everything else is debug too.
type countingHandler struct {
	next  slog.Handler
	m     *metrics
	attrs []slog.Attr
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	msg := strings.ToLower(r.Message)
	if strings.Contains(msg, "failed to parse") || strings.Contains(msg, "malformed") ||
		strings.Contains(msg, "unsupported message") || strings.Contains(msg, "failed to handle request") {
		h.m.dropped.WithLabelValues("malformed").Inc()
	}
	if !h.next.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	out := slog.NewRecord(r.Time, slog.LevelDebug, "SIP library: "+r.Message, r.PC)
	out.AddAttrs(h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "data" { // raw input: may be huge
			out.AddAttrs(a)
		}
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{next: h.next, m: h.m, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *countingHandler) WithGroup(string) slog.Handler { return h }

// sweepLoop removes expired bindings every second until ctx ends.
func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep(s.o.Now())
		}
	}
}
