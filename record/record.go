// Package record defines a hosted terminal's directory record: what it is,
// how it is signed and how any node checks it.
//
// A record has a signed body and an unsigned envelope. The body holds the
// terminal's normalised identifiers, its current address, the peer ID of the
// node that hosts it, a sequence number and the signing time. It is signed
// either by the terminal's own Ed25519 key (Signer "terminal") or, for a
// terminal without a key, by the hosting node's libp2p key (Signer "node").
// The body is kept as the exact bytes that were signed, so verification never
// depends on re-encoding. Because the hosting node is inside the signed
// bytes, a record cannot be replayed to claim hosting elsewhere.
//
// Status (online, idle, busy, offline) changes often and is not signed by
// the terminal: it travels in the envelope and is vouched for by the hosting
// node, whose answers arrive over streams authenticated by its peer ID.
package record

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// MaxBodySize bounds a record body on the wire and on disk.
const MaxBodySize = 4 << 10

// MaxAge is how long a signature stays valid after the body's Time.
// Terminals re-sign well before; nodes re-attest at every change.
const MaxAge = 24 * time.Hour

// clockSkew is how far in the future a body's Time may lie.
const clockSkew = 5 * time.Minute

// signContext separates record signatures from any other use of a key.
const signContext = "irmv-record-v1:"

// Identifiers are a terminal's normalised identifiers.
type Identifiers struct {
	// Name is the name as written, for display. Matching uses its folded
	// form, which every node derives with package ident.
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"` // E.164
	UID   string `json:"uid,omitempty"`
	IP    string `json:"ip,omitempty"` // canonical text form
}

// IsZero reports whether no identifier is set.
func (ids Identifiers) IsZero() bool { return ids == Identifiers{} }

// Body is the signed part of a record.
type Body struct {
	Terminal    string      `json:"terminal"` // handle, unique on its node
	Identifiers Identifiers `json:"identifiers"`
	Address     string      `json:"address,omitempty"` // current IP; empty for private terminals
	Private     bool        `json:"private,omitempty"`
	Node        string      `json:"node"` // hosting node's peer ID
	Seq         uint64      `json:"seq"`
	Time        int64       `json:"time"`          // signing time, Unix ms
	Key         []byte      `json:"key,omitempty"` // terminal's Ed25519 public key
}

// Signer says whose key signed a body.
type Signer string

// Signers.
const (
	SignerTerminal Signer = "terminal"
	SignerNode     Signer = "node"
)

// Record is a signed body plus the hosting node's live view of the terminal.
type Record struct {
	Body   []byte `json:"body"` // exact signed bytes (JSON of Body)
	Sig    []byte `json:"sig"`
	Signer Signer `json:"signer"`
	Status Status `json:"status"`
	// Seen is when the hosting node last heard from the terminal, Unix ms.
	Seen int64 `json:"seen,omitempty"`

	body *Body // decoded Body, set by Decode
}

// Marshal encodes a body canonically for signing.
func (b *Body) Marshal() ([]byte, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBodySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	return data, nil
}

// SigningBytes returns what a signer signs for body bytes.
func SigningBytes(body []byte) []byte {
	return append([]byte(signContext), body...)
}

// SignTerminal builds a record signed by the terminal's key; Body.Key must
// be the matching public key.
func SignTerminal(b *Body, key ed25519.PrivateKey) (*Record, error) {
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok || !bytes.Equal(pub, b.Key) {
		return nil, ErrKeyMismatch
	}
	data, err := b.Marshal()
	if err != nil {
		return nil, err
	}
	return &Record{Body: data, Sig: ed25519.Sign(key, SigningBytes(data)), Signer: SignerTerminal, body: b}, nil
}

// SignNode builds a record attested by the hosting node's key; Body.Node
// must be that node's peer ID.
func SignNode(b *Body, key crypto.PrivKey) (*Record, error) {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if id.String() != b.Node {
		return nil, fmt.Errorf("%w: body names %s, key is %s", ErrWrongNode, b.Node, id)
	}
	data, err := b.Marshal()
	if err != nil {
		return nil, err
	}
	sig, err := key.Sign(SigningBytes(data))
	if err != nil {
		return nil, err
	}
	return &Record{Body: data, Sig: sig, Signer: SignerNode, body: b}, nil
}

// Decoded returns the decoded body, decoding it if needed.
func (r *Record) Decoded() (*Body, error) {
	if r.body != nil {
		return r.body, nil
	}
	if len(r.Body) > MaxBodySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(r.Body))
	}
	var b Body
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	r.body = &b
	return &b, nil
}

// Verify checks the record's signature, that it names node as its host
// (when node is non-empty) and that it is neither stale nor from the future.
// It returns the decoded body.
func (r *Record) Verify(node peer.ID, now time.Time) (*Body, error) {
	b, err := r.Decoded()
	if err != nil {
		return nil, err
	}
	if b.Terminal == "" || b.Node == "" {
		return nil, fmt.Errorf("%w: missing terminal or node", ErrMalformed)
	}
	if node != "" && b.Node != node.String() {
		return nil, fmt.Errorf("%w: record names %s, answered by %s", ErrWrongNode, b.Node, node)
	}
	t := time.UnixMilli(b.Time)
	if now.Sub(t) > MaxAge {
		return nil, fmt.Errorf("%w: signed %s", ErrStale, t.UTC().Format(time.RFC3339))
	}
	if t.Sub(now) > clockSkew {
		return nil, fmt.Errorf("%w: signed in the future (%s)", ErrStale, t.UTC().Format(time.RFC3339))
	}
	msg := SigningBytes(r.Body)
	switch r.Signer {
	case SignerTerminal:
		if len(b.Key) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: terminal key of %d bytes", ErrMalformed, len(b.Key))
		}
		if !ed25519.Verify(b.Key, msg, r.Sig) {
			return nil, ErrBadSignature
		}
	case SignerNode:
		id, err := peer.Decode(b.Node)
		if err != nil {
			return nil, fmt.Errorf("%w: node %q: %v", ErrMalformed, b.Node, err)
		}
		pub, err := id.ExtractPublicKey()
		if err != nil {
			return nil, fmt.Errorf("%w: node key: %v", ErrMalformed, err)
		}
		ok, err := pub.Verify(msg, r.Sig)
		if err != nil || !ok {
			return nil, ErrBadSignature
		}
	default:
		return nil, fmt.Errorf("%w: signer %q", ErrMalformed, r.Signer)
	}
	return b, nil
}
