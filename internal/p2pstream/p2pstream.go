// Package p2pstream opens libp2p streams to peers that are expected to speak
// a protocol without waiting for identify, and sends kad-dht messages on
// them, a stream per message.
//
// go-libp2p's host (basichost Connect and NewStream) waits, on a new
// connection, until identify has finished before it selects the protocol:
// a request on a connection the asker does not have yet costs identify's
// round trip, then its own. Connect does not wait, and Open selects the
// protocol lazily (go-multistream's NewMSSelect, as basichost does when the
// peerstore already knows the protocol): the multistream header and the
// request leave in one flight, and identify runs beside them. A peer that does not speak the protocol
// answers "na": the first read fails with multistream's ErrNotSupported.
//
// irmv nodes and the simulator both use it, for kad-dht's queries (Host,
// NewDHTSender) and for the lookup request to a terminal's hosting node.
// Identify still completes on every connection; kad-dht adds a peer to its
// routing table when it does.
package p2pstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	msmux "github.com/multiformats/go-multistream"
	"google.golang.org/protobuf/proto"
)

// negotiationTimeout bounds Close's wait for the peer's protocol answer,
// as basichost's DefaultNegotiationTimeout.
const negotiationTimeout = 10 * time.Second

// Connect connects h to pi unless connected, as host.Connect does but
// without waiting for identify on a new connection. A limited (relayed)
// connection counts only if ctx allows it (network.WithAllowLimitedConn).
func Connect(ctx context.Context, h host.Host, pi peer.AddrInfo) error {
	h.Peerstore().AddAddrs(pi.ID, pi.Addrs, peerstore.TempAddrTTL)
	if direct, _ := network.GetForceDirectDial(ctx); !direct {
		limitedOK, _ := network.GetAllowLimitedConn(ctx)
		switch h.Network().Connectedness(pi.ID) {
		case network.Connected:
			return nil
		case network.Limited:
			if limitedOK {
				return nil
			}
		}
	}
	if _, err := h.Network().DialPeer(ctx, pi.ID); err != nil {
		return fmt.Errorf("failed to dial: %w", err)
	}
	return nil
}

// Host returns h with Connect replaced by this package's, for kad-dht: its
// queries connect to each peer before sending the request (with
// NewDHTSender, without waiting for identify either).
func Host(h host.Host) host.Host { return connectHost{h} }

type connectHost struct{ host.Host }

func (h connectHost) Connect(ctx context.Context, pi peer.AddrInfo) error {
	return Connect(ctx, h.Host, pi)
}

// Open connects to p unless connected (Connect) and opens a stream for
// proto on the connection, without waiting for identify. The protocol is
// selected lazily with the first write or read.
func Open(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID) (network.Stream, error) {
	if err := Connect(ctx, h, peer.AddrInfo{ID: p}); err != nil {
		return nil, err
	}
	s, err := h.Network().NewStream(network.WithNoDial(ctx, "already dialed"), p)
	if err != nil {
		if errors.Is(err, network.ErrNoConn) {
			return nil, errors.New("connection failed")
		}
		return nil, fmt.Errorf("failed to open stream: %w", err)
	}
	if err := s.SetProtocol(proto); err != nil {
		s.Reset()
		return nil, err
	}
	return &lazyStream{Stream: s, rw: msmux.NewMSSelect(s, proto)}, nil
}

// lazyStream reads and writes through the lazy protocol selection.
type lazyStream struct {
	network.Stream
	rw msmux.LazyConn
}

// ErrNotSupported is returned, wrapped, by the reads of a stream from Open
// when the peer does not speak its protocol.
var ErrNotSupported = errors.New("peer does not speak the protocol")

func (s *lazyStream) Read(b []byte) (int, error) {
	n, err := s.rw.Read(b)
	if err != nil && notSupported(err) {
		err = fmt.Errorf("%w %s: %w", ErrNotSupported, s.Protocol(), err)
	}
	return n, err
}

// notSupported tells whether err is the peer's refusal of the protocol:
// its "na", or the reset with which go-libp2p's host ends a stream whose
// protocol it did not select (the reset may overtake the "na").
func notSupported(err error) bool {
	var na msmux.ErrNotSupported[protocol.ID]
	return errors.As(err, &na) ||
		errors.Is(err, &network.StreamError{ErrorCode: network.StreamProtocolNegotiationFailed, Remote: true})
}

func (s *lazyStream) Write(b []byte) (int, error) { return s.rw.Write(b) }

// Close waits for the peer's protocol answer (so that it can still send
// it), but not forever.
func (s *lazyStream) Close() error {
	_ = s.Stream.SetReadDeadline(time.Now().Add(negotiationTimeout))
	return s.rw.Close()
}

// CloseWrite sends the protocol header first if nothing was written.
func (s *lazyStream) CloseWrite() error {
	_ = s.rw.Flush() // an error shows on the next read
	return s.Stream.CloseWrite()
}

// dhtReadTimeout bounds the wait for a DHT answer, as kad-dht's own sender.
const dhtReadTimeout = 10 * time.Second

// dhtSender is a kad-dht message sender (dht.WithCustomMessageSender)
// that opens a stream with Open for each message and closes it after the
// answer. kad-dht's own sender keeps a stream open to every peer it ever
// asked (goroutines and buffers for each) and opens it with the host's
// NewStream, which waits for identify on a new connection. A new stream on
// an existing connection costs no round trip. Framing is kad-dht's: a
// varint length, then the protobuf message.
type dhtSender struct {
	h     host.Host
	proto protocol.ID
}

// NewDHTSender returns a kad-dht message sender speaking protos[0] (kad-dht
// passes its one protocol); its signature is dht.WithCustomMessageSender's.
func NewDHTSender(h host.Host, protos []protocol.ID) pb.MessageSenderWithDisconnect {
	return &dhtSender{h: h, proto: protos[0]}
}

func (m *dhtSender) OnDisconnect(context.Context, peer.ID) {}

// SendMessage sends pmes and returns once the peer accepted the protocol.
func (m *dhtSender) SendMessage(ctx context.Context, p peer.ID, pmes *pb.Message) error {
	s, _, err := m.send(ctx, p, pmes)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, dhtReadTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if _, err := s.Read(nil); err != nil && !errors.Is(err, io.EOF) {
		s.Reset()
		return fmtErr(ctx, err)
	}
	return s.Close()
}

func (m *dhtSender) SendRequest(ctx context.Context, p peer.ID, pmes *pb.Message) (*pb.Message, error) {
	s, start, err := m.send(ctx, p, pmes)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dhtReadTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	r := msgio.NewVarintReaderSize(s, network.MessageSizeMax)
	b, err := r.ReadMsg()
	if err != nil {
		s.Reset()
		return nil, fmtErr(ctx, err)
	}
	defer r.ReleaseMsg(b)
	var resp pb.Message
	if err := proto.Unmarshal(b, &resp); err != nil {
		s.Reset()
		return nil, err
	}
	// As kad-dht's own sender: the flood sizes its wait per hop from it.
	m.h.Peerstore().RecordLatency(p, time.Since(start))
	// The answer is in hand: a failing close must not turn it into a
	// failed request.
	_ = s.Close()
	return &resp, nil
}

// fmtErr prefers the context's error: a reset stream's error says less.
func fmtErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// send opens a stream to p and writes pmes in one write (with the
// protocol header), then closes the writing side: the handler reads one
// message and then EOF, and ends. sent is when the write began, after
// any dial.
func (m *dhtSender) send(ctx context.Context, p peer.ID, pmes *pb.Message) (s network.Stream, sent time.Time, err error) {
	b, err := proto.Marshal(pmes)
	if err != nil {
		return nil, sent, err
	}
	s, err = Open(ctx, m.h, p, m.proto)
	if err != nil {
		return nil, sent, err
	}
	sent = time.Now()
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	if _, err := s.Write(append(buf, b...)); err != nil {
		s.Reset()
		return nil, sent, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, sent, err
	}
	return s, sent, nil
}
