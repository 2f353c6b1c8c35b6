package sim

import (
	"context"
	"encoding/binary"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"
	"google.golang.org/protobuf/proto"
)

// dhtReadTimeout bounds the wait for a DHT answer, as kad-dht's own sender.
const dhtReadTimeout = 10 * time.Second

// streamPerRequest is a kad-dht message sender that opens a stream for
// each message and closes it after the answer. kad-dht's own sender keeps
// a stream open to every peer it ever asked, and a mocknet stream holds
// two goroutines on each side; at 1,000 nodes that was most of the
// simulator's goroutines. On mocknet a new stream on a connection costs no
// round trip (the protocol is known from identify, so multistream selects
// it lazily), so latency is unchanged. Framing is kad-dht's: a varint
// length, then the protobuf message.
type streamPerRequest struct {
	h      host.Host
	protos []protocol.ID
}

func newStreamPerRequest(h host.Host, protos []protocol.ID) pb.MessageSenderWithDisconnect {
	return &streamPerRequest{h: h, protos: protos}
}

func (m *streamPerRequest) OnDisconnect(context.Context, peer.ID) {}

func (m *streamPerRequest) SendMessage(ctx context.Context, p peer.ID, pmes *pb.Message) error {
	s, err := m.send(ctx, p, pmes)
	if err != nil {
		return err
	}
	return s.Close()
}

func (m *streamPerRequest) SendRequest(ctx context.Context, p peer.ID, pmes *pb.Message) (*pb.Message, error) {
	s, err := m.send(ctx, p, pmes)
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
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	defer r.ReleaseMsg(b)
	var resp pb.Message
	if err := proto.Unmarshal(b, &resp); err != nil {
		s.Reset()
		return nil, err
	}
	return &resp, s.Close()
}

// send opens a stream to p and writes pmes in one write, then closes the
// writing side: the handler reads one message and then EOF, and ends.
func (m *streamPerRequest) send(ctx context.Context, p peer.ID, pmes *pb.Message) (network.Stream, error) {
	s, err := m.h.NewStream(ctx, p, m.protos...)
	if err != nil {
		return nil, err
	}
	b, err := proto.Marshal(pmes)
	if err != nil {
		s.Reset()
		return nil, err
	}
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	if _, err := s.Write(append(buf, b...)); err != nil {
		s.Reset()
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, err
	}
	return s, nil
}
