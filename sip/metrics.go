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
	// rtcp: RTCP from phones by result (srtcp, plain, rejected, early).
	rtcp *prometheus.CounterVec
	// rtcpSent: RTCP to phones by kind (sr, rr, bye).
	rtcpSent *prometheus.CounterVec
}

func newMetrics(s *Server, r prometheus.Registerer) *metrics {
	var all []prometheus.Collector
	vec := func(name, help, label string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
		all = append(all, c)
		return c
	}
	one := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		all = append(all, c)
		return c
	}
	m := &metrics{
		dropped: vec("irmv_sip_dropped_total",
			"SIP input dropped, by reason: malformed (unparsable or missing what it needs), rate (over a source's rate), guesses (credentials refused unchecked: their source or user gave too many wrong answers), connections (TCP connections closed at once: their source, or all, at the maximum), rtp_source (RTP on a plain leg from another address than the phone's), calls (INVITEs refused with 403: the phone, or all phones, placing the most calls at a time), tls (connections to the TLS port closed: failed handshake, e.g. plain SIP), sdes_plain (SRTP keys offered over UDP or TCP while SDES is for TLS only: answered without SRTP, or 488).", "reason"),
		registers: vec("irmv_sip_registers_total",
			"SIP REGISTER requests by result: ok, removed, challenged, forbidden, limited (too many wrong passwords), too_brief, malformed, refused.", "result"),
		reinvites: one("irmv_sip_reinvites_total",
			"re-INVITEs (hold, resume) answered within bridged calls."),
		invites: vec("irmv_sip_invites_total",
			"INVITEs outside a dialog by authorization: authorized (digest), trusted (open network), challenged (407), forbidden (403), limited (403: too many wrong passwords), malformed (400).", "result"),
		noDialog: vec("irmv_sip_outside_dialog_total",
			"In-dialog requests (BYE, re-INVITE, CANCEL) refused with 481: no such dialog or transaction, or not from the dialog's phone.", "method"),
		srtpCalls: one("irmv_sip_srtp_calls_total",
			"Bridged calls whose phone leg is SDES-SRTP (the rest are plain RTP)."),
		srtpPackets: vec("irmv_sip_srtp_packets_total",
			"SRTP packets on phone legs: from_phone (authenticated and decrypted), to_phone (encrypted), rejected (failed authentication or replay check: dropped).", "direction"),
		rtcp: vec("irmv_sip_rtcp_packets_total",
			"RTCP compound packets from phones, by result: srtcp (authenticated and decrypted on an SRTP leg), plain (on a plain leg), rejected (on an SRTP leg, failed authentication or replay check, or in clear: dropped), early (before a called phone's answer set its leg up: dropped).", "result"),
		rtcpSent: vec("irmv_sip_rtcp_sent_total",
			"RTCP compound packets the bridge sent to phones, by kind: sr (a Sender Report), rr (a Receiver Report: no RTP sent yet), bye (the call's end).", "kind"),
	}
	if r != nil {
		r.MustRegister(append(all, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "irmv_sip_bindings",
			Help: "SIP phones registered at this node.",
		}, func() float64 {
			s.mu.Lock()
			defer s.mu.Unlock()
			return float64(len(s.bindings))
		}), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "irmv_sip_udp_sources",
			Help: "UDP source addresses (host:port) the SIP side keeps state for: registered phones, calls' phones and sources heard within the last minute (at most 8,192 of those).",
		}, func() float64 {
			if u := s.udpSrc.Load(); u != nil {
				return float64(u.size())
			}
			return 0
		}), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "irmv_sip_udp_pool_entries",
			Help: "Entries in the SIP library's UDP connection pool (one per source kept, and the listening socket).",
		}, func() float64 {
			if u := s.udpSrc.Load(); u != nil {
				return float64(u.pool.Size())
			}
			return 0
		}))...)
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
