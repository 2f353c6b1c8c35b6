package flood

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

const testGUID = "00112233445566778899aabbccddeeff"

// keyRecord returns a node-signed record and its node, without a host.
func keyRecord(tb testing.TB, handle string) (*record.Record, peer.ID) {
	tb.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := record.SignNode(&record.Body{
		Terminal:    handle,
		Identifiers: record.Identifiers{Name: "Jose Müller"},
		Address:     "192.0.2.7",
		Node:        id.String(),
		Seq:         3,
		Time:        time.Now().UnixMilli(),
	}, key)
	if err != nil {
		tb.Fatal(err)
	}
	r.Status = record.StatusBusy
	return r, id
}

// seedMessages are real encoded messages: a query and a hit.
func seedMessages(tb testing.TB) [][]byte {
	tb.Helper()
	var g GUID
	copy(g[:], "0123456789abcdef")
	q, err := (&Message{Type: TypeQuery, GUID: g, TTL: 3, Hops: 2, Kind: ident.KindName, Value: "jose mul"}).Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	r, origin := keyRecord(tb, "t1")
	r2, _ := keyRecord(tb, "t2")
	h, err := (&Message{Type: TypeHit, GUID: g, Hops: 4, Origin: origin, Records: []*record.Record{r}}).Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	// A hit whose second record names another node (invalid).
	bad, err := (&Message{Type: TypeHit, GUID: g, Hops: 4, Origin: origin, Records: []*record.Record{r, r2}}).Marshal()
	if err == nil {
		tb.Fatal("hit with a foreign record encoded")
	}
	_ = bad
	return [][]byte{q, h}
}

func TestRoundTrip(t *testing.T) {
	for _, data := range seedMessages(t) {
		m, err := Decode(bytes.NewReader(data), 0)
		if err != nil {
			t.Fatal(err)
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Errorf("re-encoding differs:\n%s\n%s", data, again)
		}
	}
}

func TestDecode(t *testing.T) {
	r, origin := keyRecord(t, "t1")
	rec, err := (&Message{Type: TypeHit, GUID: GUID{1}, Hops: 1, Origin: origin, Records: []*record.Record{r}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	recJSON := string(rec[bytes.Index(rec, []byte(`"records":[`))+len(`"records":[`) : len(rec)-2])
	hit := func(fields string) string {
		return `{"type":"hit","guid":"` + testGUID + `","origin":"` + origin.String() + `",` + fields + `}`
	}
	query := func(fields string) string {
		return `{"type":"query","guid":"` + testGUID + `",` + fields + `}`
	}
	tooMany := strings.TrimSuffix(strings.Repeat(recJSON+",", MaxHitRecords+1), ",")
	for _, tc := range []struct {
		name string
		body string
		max  int
		want error // nil: decodes
	}{
		{"query", query(`"ttl":7,"hops":0,"kind":"name","value":"jose"`), 0, nil},
		{"query upper-case kind", query(`"ttl":1,"hops":6,"kind":"PHONE","value":"+4930123"`), 0, nil},
		{"query unknown field", query(`"ttl":1,"hops":0,"kind":"uid","value":"x","future":1`), 0, nil},
		{"ttl+hops 8", query(`"ttl":4,"hops":4,"kind":"name","value":"jose"`), 0, ErrTTL},
		{"ttl 0", query(`"ttl":0,"hops":1,"kind":"name","value":"jose"`), 0, ErrTTL},
		{"ttl missing", query(`"hops":1,"kind":"name","value":"jose"`), 0, ErrTTL},
		{"hops negative", query(`"ttl":2,"hops":-1,"kind":"name","value":"jose"`), 0, ErrTTL},
		{"ttl huge", query(`"ttl":9223372036854775807,"hops":-9223372036854775807,"kind":"name","value":"x"`), 0, ErrTTL},
		{"ttl not a number", query(`"ttl":"1","hops":0,"kind":"name","value":"jose"`), 0, ErrMalformed},
		{"kind unknown", query(`"ttl":1,"hops":0,"kind":"unknown","value":"jose"`), 0, ErrMalformed},
		{"kind bogus", query(`"ttl":1,"hops":0,"kind":"email","value":"jose"`), 0, ErrMalformed},
		{"kind missing", query(`"ttl":1,"hops":0,"value":"jose"`), 0, ErrMalformed},
		{"value empty", query(`"ttl":1,"hops":0,"kind":"name","value":""`), 0, ErrMalformed},
		{"value long", query(`"ttl":1,"hops":0,"kind":"name","value":"` + strings.Repeat("a", MaxValueLen+1) + `"`), 0, ErrMalformed},
		{"value max", query(`"ttl":1,"hops":0,"kind":"name","value":"` + strings.Repeat("a", MaxValueLen) + `"`), 0, nil},
		{"value bad utf8", query(`"ttl":1,"hops":0,"kind":"name","value":"\xff"`), 0, ErrMalformed},
		{"query with records", query(`"ttl":1,"hops":0,"kind":"name","value":"x","records":[]`), 0, ErrMalformed},
		{"query oversize", query(`"ttl":1,"hops":0,"kind":"name","value":"x","pad":"` + strings.Repeat("p", MaxQuerySize) + `"`), 0, ErrOversize},
		{"guid short", `{"type":"query","guid":"0011","ttl":1,"hops":0,"kind":"name","value":"x"}`, 0, ErrMalformed},
		{"guid not hex", `{"type":"query","guid":"zz112233445566778899aabbccddeeff","ttl":1,"hops":0,"kind":"name","value":"x"}`, 0, ErrMalformed},
		{"guid missing", `{"type":"query","ttl":1,"hops":0,"kind":"name","value":"x"}`, 0, nil}, // zero GUID is a GUID
		{"type unknown", `{"type":"ping","guid":"` + testGUID + `"}`, 0, ErrMalformed},
		{"not an object", `[1,2]`, 0, ErrMalformed},
		{"trailing data", query(`"ttl":1,"hops":0,"kind":"name","value":"x"`) + `{}`, 0, ErrMalformed},
		{"over max", query(`"ttl":1,"hops":0,"kind":"name","value":"x"`), 10, ErrOversize},
		{"hit", hit(`"hops":3,"records":[` + recJSON + `]`), 0, nil},
		{"hit 32 records", hit(`"hops":3,"records":[` + strings.TrimSuffix(strings.Repeat(recJSON+",", MaxHitRecords), ",") + `]`), 0, nil},
		{"hit 33 records", hit(`"hops":3,"records":[` + tooMany + `]`), 0, ErrOversize},
		{"hit no records", hit(`"hops":3,"records":[]`), 0, ErrMalformed},
		{"hit null record", hit(`"hops":3,"records":[null]`), 0, ErrMalformed},
		{"hit hops 0", hit(`"hops":0,"records":[` + recJSON + `]`), 0, ErrTTL},
		{"hit hops 8", hit(`"hops":8,"records":[` + recJSON + `]`), 0, ErrTTL},
		{"hit with ttl", hit(`"ttl":1,"hops":1,"records":[` + recJSON + `]`), 0, ErrTTL},
		{"hit with value", hit(`"hops":1,"value":"x","records":[` + recJSON + `]`), 0, ErrMalformed},
		{"hit bad origin", `{"type":"hit","guid":"` + testGUID + `","origin":"nope","hops":1,"records":[` + recJSON + `]}`, 0, ErrMalformed},
		{"hit no origin", `{"type":"hit","guid":"` + testGUID + `","hops":1,"records":[` + recJSON + `]}`, 0, ErrMalformed},
		{"hit bad status", hit(`"hops":1,"records":[` + strings.Replace(recJSON, `"busy"`, `"dancing"`, 1) + `]`), 0, ErrMalformed},
		{"hit bad signer", hit(`"hops":1,"records":[` + strings.Replace(recJSON, `"node"`, `"mallory"`, 1) + `]`), 0, ErrMalformed},
		{"hit record body garbage", hit(`"hops":1,"records":[{"body":"AAAA","sig":"AAAA","signer":"node","status":"online"}]`), 0, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(bytes.NewReader(frame(tc.body)), tc.max)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if _, err := m.Marshal(); err != nil {
					t.Errorf("decoded message does not encode: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeFraming(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"zero length", []byte{0}, ErrMalformed},
		{"truncated", append(binary.AppendUvarint(nil, 50), `{"type"`...), ErrMalformed},
		{"varint overflow", bytes.Repeat([]byte{0xff}, 11), ErrMalformed},
		{"over max", binary.AppendUvarint(nil, MaxMessageSize+1), ErrOversize},
		{"huge", binary.AppendUvarint(nil, 1<<62), ErrOversize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(bytes.NewReader(tc.data), 0); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Decode reads nothing after the body.
	seeds := seedMessages(t)
	r := bytes.NewReader(append(append([]byte{}, seeds[0]...), "rest"...))
	if _, err := Decode(r, 0); err != nil {
		t.Fatal(err)
	}
	if r.Len() != len("rest") {
		t.Errorf("Decode left %d bytes, want 4", r.Len())
	}
}

func TestGUIDCache(t *testing.T) {
	c := newGUIDCache(3, time.Minute)
	now := time.Now()
	for i := range 3 {
		if !c.add(GUID{byte(i)}, route{}, now) {
			t.Fatalf("guid %d not new", i)
		}
	}
	if c.add(GUID{1}, route{}, now) {
		t.Error("duplicate reported new")
	}
	c.add(GUID{3}, route{}, now) // evicts the oldest, 0
	if _, ok := c.get(GUID{0}, now); ok {
		t.Error("oldest entry survived")
	}
	if c.len() != 3 {
		t.Errorf("len %d, want 3", c.len())
	}
	later := now.Add(2 * time.Minute)
	if _, ok := c.get(GUID{3}, later); ok {
		t.Error("expired entry found")
	}
	if !c.add(GUID{1}, route{}, later) {
		t.Error("expired guid not new again")
	}
	if c.len() != 1 {
		t.Errorf("len %d after expiry, want 1", c.len())
	}
}

// FuzzDecode: any input decodes to a valid message or fails with a
// classified error; a message that decodes consumed exactly its frame,
// every strict prefix of that frame fails, and it re-encodes stably.
// Bounded allocation for any announced length is internal/wire's
// FuzzRead property.
func FuzzDecode(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	f.Add(frame(`{"type":"query","guid":"` + testGUID + `","ttl":4,"hops":4,"kind":"name","value":"x"}`))
	f.Add(frame(`{"type":"hit","guid":"` + testGUID + `","hops":1,"records":[null]}`))
	f.Add([]byte{0})
	f.Add(bytes.Repeat([]byte{0xff}, 11))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		m, err := Decode(r, 0)
		if err != nil {
			if m != nil {
				t.Fatal("message with error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrOversize) && !errors.Is(err, ErrTTL) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		frame := data[:len(data)-r.Len()]
		if size, n := binary.Uvarint(data); n <= 0 || uint64(len(frame)) != uint64(n)+size {
			t.Fatalf("decoded %+v consuming %d bytes, not one frame", m, len(frame))
		}
		for i := range frame {
			if p, err := Decode(bytes.NewReader(frame[:i]), 0); err == nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("prefix of %d bytes: %+v, %v", i, p, err)
			}
		}
		// Whatever decodes re-encodes, and decodes to the same encoding.
		enc, err := m.Marshal()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := Decode(bytes.NewReader(enc), 0)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		enc2, err := m2.Marshal()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %v\n%s\n%s", err, enc, enc2)
		}
	})
}
