package search_test

import (
	"bufio"
	"context"
	"testing"
	"time"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/internal/wire"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "h", h)
	return h
}

// rogue serves the lookup protocol with whatever records it is given.
func rogue(t *testing.T, h host.Host, recs []*record.Record) {
	h.SetStreamHandler(search.LookupProtocol, func(s network.Stream) {
		defer s.Close()
		var req search.LookupRequest
		if err := wire.Read(bufio.NewReader(s), &req, search.MaxLookupRequest); err != nil {
			s.Reset()
			return
		}
		wire.Write(s, &search.LookupResponse{Records: recs}, search.MaxLookupResponse)
	})
}

func nodeRecord(t *testing.T, h host.Host, node peer.ID, uid string, age time.Duration) *record.Record {
	t.Helper()
	b := &record.Body{Terminal: "t-" + uid, Identifiers: record.Identifiers{UID: uid}, Node: node.String(), Seq: 1, Time: time.Now().Add(-age).UnixMilli()}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := h.Peerstore().PrivKey(h.ID()).Sign(record.SigningBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	return &record.Record{Body: data, Sig: sig, Signer: record.SignerNode, Status: record.StatusOnline}
}

func TestForgedRecordsRejected(t *testing.T) {
	asker, bad, other := newHost(t), newHost(t), newHost(t)
	good := nodeRecord(t, bad, bad.ID(), "good", 0)
	tampered := nodeRecord(t, bad, bad.ID(), "tampered", 0)
	tampered.Body = []byte(string(tampered.Body[:len(tampered.Body)-1]) + " }")
	badSig := nodeRecord(t, bad, bad.ID(), "badsig", 0)
	badSig.Sig[0] ^= 0xff
	// Signed by another node and naming it: a replay of someone else's record.
	replayed := nodeRecord(t, other, other.ID(), "replayed", 0)
	// Naming another node but signed by this one.
	wrongNode := nodeRecord(t, bad, other.ID(), "wrongnode", 0)
	stale := nodeRecord(t, bad, bad.ID(), "stale", 2*record.MaxAge)
	rogue(t, bad, []*record.Record{good, tampered, badSig, replayed, wrongNode, stale, nil})

	if err := asker.Connect(context.Background(), peer.AddrInfo{ID: bad.ID(), Addrs: bad.Addrs()}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	recs, nbad, err := search.QueryNode(ctx, asker, bad.ID(), []ident.ID{{Kind: ident.KindUID, Value: "x"}}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || nbad != 6 {
		t.Fatalf("kept %d records, rejected %d; want 1 kept, 6 rejected", len(recs), nbad)
	}
	if b, _ := recs[0].Decoded(); b.Identifiers.UID != "good" {
		t.Fatalf("kept %+v", b)
	}
}
