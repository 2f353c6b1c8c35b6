package flood

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/wire"
	"github.com/irmv/irmv/record"
)

// Size and hop limits of the protocol.
const (
	// MaxTTL caps ttl+hops of a query, and so the radius of a flood.
	MaxTTL = 7
	// MaxQuerySize bounds the JSON body of a query message.
	MaxQuerySize = 2 << 10
	// MaxHitSize bounds the JSON body of a hit message, and of any message.
	MaxHitSize = 64 << 10
	// MaxMessageSize is the largest body of any message type.
	MaxMessageSize = MaxHitSize
	// MaxHitRecords bounds the records in one hit message.
	MaxHitRecords = 32
	// MaxValueLen bounds a query's identifier value, in bytes.
	MaxValueLen = 256
	// MaxAlso bounds a query's further readings.
	MaxAlso = ident.MaxReadings - 1
	// maxSigLen bounds a record signature (Ed25519 is 64 bytes, RSA-4096 512).
	maxSigLen = 1 << 10
)

// Type is a message type.
type Type string

// Message types.
const (
	TypeQuery Type = "query"
	TypeHit   Type = "hit"
)

// GUID identifies one query (one deepening round of a search) across the
// network. On the wire it is 32 lower-case hex digits.
type GUID [16]byte

// NewGUID returns a random GUID.
func NewGUID() GUID {
	var g GUID
	_, _ = rand.Read(g[:]) // crypto/rand.Read never fails
	return g
}

func (g GUID) String() string { return hex.EncodeToString(g[:]) }

// MarshalText implements encoding.TextMarshaler.
func (g GUID) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts exactly 32
// hex digits.
func (g *GUID) UnmarshalText(b []byte) error {
	if len(b) != 2*len(g) {
		return fmt.Errorf("%w: guid of %d hex digits, want %d", ErrMalformed, len(b), 2*len(g))
	}
	if _, err := hex.Decode(g[:], b); err != nil {
		return fmt.Errorf("%w: guid: %v", ErrMalformed, err)
	}
	return nil
}

// Message is one flood protocol message: a query or a hit. Fields that do
// not belong to the message's type must be zero.
type Message struct {
	Type Type `json:"type"`
	GUID GUID `json:"guid"`

	// TTL (queries only) is how many more hops the query may travel,
	// counting the hop to the receiver: 1 means "do not forward".
	TTL int `json:"ttl,omitempty"`
	// Hops is, in a query, how often it has been forwarded (0 from the
	// originator); in a hit, the answering node's distance from the
	// originator in overlay hops (1 for a direct neighbour).
	Hops int `json:"hops"`

	// Kind and Value (queries only) are the normalised identifier sought.
	Kind  ident.Kind `json:"kind,omitempty"`
	Value string     `json:"value,omitempty"`
	// Also (queries only) are further readings of the same query (a text
	// that is a name and a unique ID), at most MaxAlso; a record matching
	// any reading answers it.
	Also []ident.ID `json:"also,omitempty"`

	// Origin (hits only) is the node that answered; every record in the hit
	// names it as the hosting node in its signed body.
	Origin peer.ID `json:"origin,omitempty"`
	// Records (hits only) are the matching terminals' records.
	Records []*record.Record `json:"records,omitempty"`
}

// Validate checks a message against the protocol rules, as Decode does
// after parsing. It does not check record signatures.
func (m *Message) Validate() error {
	switch m.Type {
	case TypeQuery:
		return m.validateQuery()
	case TypeHit:
		return m.validateHit()
	default:
		return fmt.Errorf("%w: type %q", ErrMalformed, m.Type)
	}
}

func (m *Message) validateQuery() error {
	if m.TTL < 1 || m.Hops < 0 || m.TTL > MaxTTL || m.Hops > MaxTTL || m.TTL+m.Hops > MaxTTL {
		return fmt.Errorf("%w: query ttl %d hops %d", ErrTTL, m.TTL, m.Hops)
	}
	if len(m.Also) > MaxAlso {
		return fmt.Errorf("%w: %d further readings (max %d)", ErrMalformed, len(m.Also), MaxAlso)
	}
	for _, id := range append([]ident.ID{{Kind: m.Kind, Value: m.Value}}, m.Also...) {
		switch id.Kind {
		case ident.KindName, ident.KindPhone, ident.KindUID, ident.KindIP:
		default:
			return fmt.Errorf("%w: kind %d", ErrMalformed, id.Kind)
		}
		if id.Value == "" || len(id.Value) > MaxValueLen || !utf8.ValidString(id.Value) {
			return fmt.Errorf("%w: value of %d bytes", ErrMalformed, len(id.Value))
		}
	}
	if m.Origin != "" || m.Records != nil {
		return fmt.Errorf("%w: query with hit fields", ErrMalformed)
	}
	return nil
}

func (m *Message) validateHit() error {
	if m.TTL != 0 || m.Hops < 1 || m.Hops > MaxTTL {
		return fmt.Errorf("%w: hit ttl %d hops %d", ErrTTL, m.TTL, m.Hops)
	}
	if m.Kind != ident.KindUnknown || m.Value != "" || m.Also != nil {
		return fmt.Errorf("%w: hit with query fields", ErrMalformed)
	}
	if err := m.Origin.Validate(); err != nil {
		return fmt.Errorf("%w: origin: %v", ErrMalformed, err)
	}
	if len(m.Records) == 0 {
		return fmt.Errorf("%w: hit without records", ErrMalformed)
	}
	if len(m.Records) > MaxHitRecords {
		return fmt.Errorf("%w: %d records, at most %d", ErrOversize, len(m.Records), MaxHitRecords)
	}
	origin := m.Origin.String()
	for i, r := range m.Records {
		if err := checkRecord(r, origin); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return nil
}

// checkRecord checks a record's shape and that its body names origin. The
// signature is the resolver's to verify.
func checkRecord(r *record.Record, origin string) error {
	if r == nil {
		return fmt.Errorf("%w: null record", ErrMalformed)
	}
	if len(r.Sig) == 0 || len(r.Sig) > maxSigLen {
		return fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(r.Sig))
	}
	if r.Signer != record.SignerNode && r.Signer != record.SignerTerminal {
		return fmt.Errorf("%w: signer %q", ErrMalformed, r.Signer)
	}
	b, err := r.Decoded()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if b.Terminal == "" {
		return fmt.Errorf("%w: record without terminal", ErrMalformed)
	}
	if b.Node != origin {
		return fmt.Errorf("%w: record names node %q, hit comes from %s", ErrMalformed, b.Node, origin)
	}
	return nil
}

func (m *Message) limit() int {
	if m.Type == TypeQuery {
		return MaxQuerySize
	}
	return MaxHitSize
}

// Marshal validates m and returns its wire form: one internal/wire frame
// (a uvarint length prefix and the JSON body).
func (m *Message) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	data, err := wire.Marshal(m, m.limit())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Type, err)
	}
	return data, nil
}

// Encode writes m's wire form to w.
func Encode(w io.Writer, m *Message) error {
	data, err := m.Marshal()
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// Decode reads one message from r: one internal/wire frame of at most max
// bytes (max <= 0 or over MaxMessageSize means MaxMessageSize) and within
// the limit of the message's type, and validates every field. It reads
// nothing after the frame unless r is buffered. A stream that ends before
// the frame is malformed too: every flood stream carries one message.
func Decode(r io.Reader, max int) (*Message, error) {
	if max <= 0 || max > MaxMessageSize {
		max = MaxMessageSize
	}
	body, err := wire.ReadBody(r, max)
	if err == io.EOF {
		return nil, fmt.Errorf("%w: no message", ErrMalformed)
	}
	if err != nil {
		return nil, err
	}
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(body) > m.limit() {
		return nil, fmt.Errorf("%w: %s of %d bytes, at most %d", ErrOversize, m.Type, len(body), m.limit())
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}
