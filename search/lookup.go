package search

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/p2pstream"
	"github.com/irmv/irmv/internal/peerrate"
	"github.com/irmv/irmv/internal/wire"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search/flood"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// LookupProtocol is the node-to-node record query: "which of your
// terminals match this identifier, and what is their current record?"
const LookupProtocol = "/irmv/lookup/1.0.0"

// Lookup message limits.
const (
	MaxLookupRequest  = 2 << 10
	MaxLookupResponse = 64 << 10
	MaxLookupRecords  = 32
)

// LookupRequest asks a hosting node for its matching terminals.
type LookupRequest struct {
	Kind  ident.Kind `json:"kind"`
	Value string     `json:"value"`
	// Also are further readings of the same query (at most
	// ident.MaxReadings-1); a terminal matching any of them is answered.
	Also  []ident.ID `json:"also,omitempty"`
	Limit int        `json:"limit,omitempty"`
}

// LookupResponse carries the hosting node's current records, or an error.
type LookupResponse struct {
	Records []*record.Record `json:"records"`
	Error   string           `json:"error,omitempty"`
}

// Matcher answers queries from the terminals a node hosts.
type Matcher interface {
	Match(id ident.ID, limit int) []*record.Record
}

func (q *LookupRequest) readings() []ident.ID {
	return append([]ident.ID{{Kind: q.Kind, Value: q.Value}}, q.Also...)
}

func (q *LookupRequest) validate() error {
	if len(q.Also) > ident.MaxReadings-1 {
		return fmt.Errorf("%d further readings (max %d)", len(q.Also), ident.MaxReadings-1)
	}
	for _, id := range q.readings() {
		switch id.Kind {
		case ident.KindName, ident.KindPhone, ident.KindUID, ident.KindIP:
		default:
			return errors.New("unknown kind")
		}
		if id.Value == "" || len(id.Value) > ident.MaxInputLen {
			return fmt.Errorf("value of %d bytes", len(id.Value))
		}
	}
	if q.Limit < 0 || q.Limit > MaxLookupRecords {
		return fmt.Errorf("limit %d out of 0..%d", q.Limit, MaxLookupRecords)
	}
	return nil
}

// lookupServer answers LookupProtocol streams from a Matcher, with a
// per-peer rate limit.
type lookupServer struct {
	host    host.Host
	match   Matcher
	log     *slog.Logger
	metrics *metrics

	limiters *peerrate.Limiters
}

const (
	lookupRate  = rate.Limit(100)
	lookupBurst = 200
)

func (s *lookupServer) handle(st network.Stream) {
	defer st.Close()
	from := st.Conn().RemotePeer()
	r := bufio.NewReader(st)
	// A stream may carry several requests, one after another, so a node
	// that asks often need not open a stream per question.
	for {
		st.SetDeadline(time.Now().Add(lookupIdle))
		var req LookupRequest
		if err := wire.Read(r, &req, MaxLookupRequest); err != nil {
			if !errors.Is(err, io.EOF) {
				s.metrics.lookupDropped.WithLabelValues("malformed").Inc()
				st.Reset()
			}
			return
		}
		if !s.limiters.Allow(from) {
			s.metrics.lookupDropped.WithLabelValues("rate").Inc()
			st.Reset()
			return
		}
		var resp LookupResponse
		if err := req.validate(); err != nil {
			s.metrics.lookupDropped.WithLabelValues("malformed").Inc()
			resp.Error = err.Error()
		} else {
			limit := req.Limit
			if limit == 0 {
				limit = MaxLookupRecords
			}
			resp.Records = fitRecords(flood.MatchAll(s.match, req.readings(), limit), MaxLookupResponse)
			s.metrics.lookupServed.Inc()
		}
		if err := wire.Write(st, &resp, MaxLookupResponse); err != nil {
			s.log.Debug("Lookup answer failed", "peer", from, "err", err)
			return
		}
	}
}

// fitRecords returns the first of recs that fit into an answer of max
// bytes: records of long names (up to record.MaxBodySize each) may not all
// fit, and an answer over the limit would not be sent at all.
func fitRecords(recs []*record.Record, max int) []*record.Record {
	size := len(`{"records":[]}`)
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return recs[:i]
		}
		if size += len(b) + len(","); size > max {
			return recs[:i]
		}
	}
	return recs
}

// lookupIdle is how long a lookup stream may wait for its next request.
const lookupIdle = 10 * time.Second

// QueryNode asks node p for its terminals matching any of ids (a query's
// readings, at least one) and returns the records that verify and name p
// as their host. Records that fail are dropped and counted in bad.
func QueryNode(ctx context.Context, h host.Host, p peer.ID, ids []ident.ID, limit int) (recs []*record.Record, bad int, err error) {
	if len(ids) == 0 {
		return nil, 0, errors.New("no identifier to look up")
	}
	// Lookups work over relayed connections to nodes behind NATs. The
	// request leaves with the protocol header, without waiting for
	// identify on a new connection.
	st, err := p2pstream.Open(network.WithAllowLimitedConn(ctx, string(LookupProtocol)), h, p, LookupProtocol)
	if err != nil {
		return nil, 0, err
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	// The deadline alone would keep a mute node's stream open after the
	// caller gave up (limit reached, client gone).
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if err := wire.Write(st, &LookupRequest{Kind: ids[0].Kind, Value: ids[0].Value, Also: ids[1:], Limit: limit}, MaxLookupRequest); err != nil {
		st.Reset()
		return nil, 0, err
	}
	st.CloseWrite()
	var resp LookupResponse
	if err := wire.Read(bufio.NewReader(st), &resp, MaxLookupResponse); err != nil {
		st.Reset()
		if ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		return nil, 0, err
	}
	if resp.Error != "" {
		return nil, 0, fmt.Errorf("node %s: %s", p, resp.Error)
	}
	now := time.Now()
	for i, r := range resp.Records {
		if i >= MaxLookupRecords || r == nil {
			bad++
			continue
		}
		if _, err := r.Verify(p, now); err != nil {
			bad++
			continue
		}
		recs = append(recs, r)
	}
	return recs, bad, nil
}
