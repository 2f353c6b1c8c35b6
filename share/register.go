package share

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"go.etcd.io/bbolt"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// normalized is a validated registration.
type normalized struct {
	ids       record.Identifiers
	folded    string
	tokens    []string
	address   string
	private   bool
	keepalive bool
	status    record.Status
	ttl       time.Duration
	key       []byte
	seq       uint64 // client.Registration.Seq
}

// fieldErr wraps an ident error with the field it is about.
func fieldErr(field string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrInvalid, field, err)
}

func checkLen(field, v string) error {
	if len(v) > MaxField {
		return fmt.Errorf("%w: %s: %d bytes (max %d): %w", ErrInvalid, field, len(v), MaxField, ident.ErrTooLong)
	}
	return nil
}

// normalize validates reg and normalises its fields; errors name the field.
func (r *Registry) normalize(reg client.Registration) (*normalized, error) {
	for _, f := range []struct{ name, v string }{
		{"name", reg.Name}, {"phone", reg.Phone}, {"uid", reg.UID}, {"ip", reg.IP},
		{"address", reg.Address}, {"status", reg.Status}, {"from", reg.From}, {"from_token", reg.FromToken},
	} {
		if err := checkLen(f.name, f.v); err != nil {
			return nil, err
		}
	}
	n := &normalized{private: reg.Private, keepalive: reg.Keepalive, seq: reg.Seq}
	if reg.From != "" {
		if _, err := peer.Decode(reg.From); err != nil {
			return nil, fmt.Errorf("%w: from: not a peer ID: %v", ErrInvalid, err)
		}
	}
	if reg.FromToken != "" && (reg.From == "" || len(reg.Key) > 0) {
		return nil, fmt.Errorf("%w: from_token: only for a terminal without a key, with from", ErrInvalid)
	}
	if reg.Seq > maxSeq {
		return nil, fmt.Errorf("%w: seq %d: above %d", ErrInvalid, reg.Seq, uint64(maxSeq))
	}
	var err error
	if reg.Name != "" {
		if n.ids.Name, n.folded, err = r.norm.Name(reg.Name); err != nil {
			return nil, fieldErr("name", err)
		}
		n.tokens = ident.Terms(n.folded)
	}
	if reg.Phone != "" {
		if n.ids.Phone, err = r.norm.Phone(reg.Phone); err != nil {
			return nil, fieldErr("phone", err)
		}
	}
	if reg.UID != "" {
		if n.ids.UID, err = ident.UID(reg.UID); err != nil {
			return nil, fieldErr("uid", err)
		}
	}
	if reg.IP != "" {
		if n.ids.IP, err = ident.IP(reg.IP); err != nil {
			return nil, fieldErr("ip", err)
		}
	}
	if n.ids.Name == "" && n.ids.Phone == "" && n.ids.UID == "" {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, ErrNoIdentifier)
	}
	if reg.Address != "" {
		if n.address, err = ident.IP(reg.Address); err != nil {
			return nil, fieldErr("address", err)
		}
	}
	n.status = record.StatusOnline
	if reg.Status != "" {
		if n.status, err = record.ParseStatus(reg.Status); err != nil {
			return nil, fieldErr("status", err)
		}
	}
	switch ttl := time.Duration(reg.TTL) * time.Second; {
	case reg.TTL == 0:
		n.ttl = r.ttl
	case reg.TTL < 0 || ttl < MinTTL || ttl > MaxTTL:
		return nil, fmt.Errorf("%w: %w: ttl %d s: want 0 (default) or %d..%d s",
			ErrInvalid, ErrTTL, reg.TTL, int(MinTTL.Seconds()), int(MaxTTL.Seconds()))
	default:
		n.ttl = ttl
	}
	if len(reg.Key) > 0 && len(reg.Key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: key: %d bytes, want an Ed25519 public key of %d bytes",
			ErrInvalid, len(reg.Key), ed25519.PublicKeySize)
	}
	n.key = reg.Key
	if len(reg.Body) > record.MaxBodySize {
		return nil, fmt.Errorf("%w: body: %d bytes (max %d)", ErrInvalid, len(reg.Body), record.MaxBodySize)
	}
	if len(reg.Sig) > 0 && len(reg.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: sig: %d bytes, want an Ed25519 signature of %d bytes",
			ErrInvalid, len(reg.Sig), ed25519.SignatureSize)
	}
	if len(n.key) == 0 && (len(reg.Body) > 0 || len(reg.Sig) > 0) {
		return nil, fmt.Errorf("%w: body, sig: given without key", ErrInvalid)
	}
	return n, nil
}

// body builds the record body the registration stands for.
func (n *normalized) body(handle, node string, seq uint64, now time.Time) *record.Body {
	b := &record.Body{
		Terminal:    handle,
		Identifiers: n.ids,
		Private:     n.private,
		Node:        node,
		Seq:         seq,
		Time:        now.UnixMilli(),
		Key:         n.key,
	}
	if !n.private {
		b.Address = n.address
	}
	return b
}

// newHandle returns a random handle: 16 characters of lower-case base32.
func newHandle() string {
	var b [10]byte
	rand.Read(b[:])
	return handleEncoding.EncodeToString(b[:])
}

var handleEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// validHandle accepts what newHandle makes, and similar handles of up to
// 32 characters.
func validHandle(h string) bool {
	if h == "" || len(h) > 32 {
		return false
	}
	for _, c := range []byte(h) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Prepare validates and normalises a registration of a terminal with a key
// and returns the canonical body bytes the terminal must sign: this node,
// the time now, the terminal's key, the next sequence number and the
// handle (the current one when the key or uid is registered already).
func (r *Registry) Prepare(reg client.Registration) ([]byte, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	n, err := r.normalize(reg)
	if err != nil {
		return nil, err
	}
	if len(n.key) == 0 {
		return nil, fmt.Errorf("%w: key: required to prepare a body for signing; terminals without a key register directly", ErrInvalid)
	}
	r.mu.RLock()
	existing, err := r.findLocked(n.key, n.ids.UID)
	var handle string
	var cur uint64
	if existing != nil {
		handle, cur = existing.Terminal, existing.body.Seq
	}
	r.mu.RUnlock()
	now := r.now()
	seq := nextSeq(now, cur, n.seq)
	if err != nil {
		return nil, err
	}
	if handle == "" {
		handle = newHandle()
	}
	return n.body(handle, r.self.String(), seq, now).Marshal()
}

// maxSeq bounds sequence numbers well below overflow.
const maxSeq = 1 << 62

// nextSeq is the sequence number of a terminal's next record: above the
// current one here and above any the terminal reports (from the node it
// moves from), and at least the time in Unix ms, so that a terminal that
// forgot its last number (a phone restarted elsewhere) still outranks its
// older records at other nodes.
func nextSeq(now time.Time, seqs ...uint64) uint64 {
	next := uint64(max(now.UnixMilli(), 1))
	for _, s := range seqs {
		next = max(next, s+1)
	}
	return next
}

// checkSigned decodes and verifies a terminal-signed body against the
// registration. It checks neither the handle nor Seq.
func (r *Registry) checkSigned(n *normalized, reg client.Registration, now time.Time) (*record.Record, *record.Body, error) {
	rec := &record.Record{Body: reg.Body, Sig: reg.Sig, Signer: record.SignerTerminal}
	b, err := rec.Decoded()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: body: %w", ErrInvalid, err)
	}
	if b.Node != r.self.String() {
		return nil, nil, fmt.Errorf("%w: body: %w: names %q, this node is %s", ErrInvalid, record.ErrWrongNode, b.Node, r.self)
	}
	if !bytes.Equal(b.Key, n.key) {
		return nil, nil, fmt.Errorf("%w: body: key %s differs from the registration's key", ErrInvalid, base64.StdEncoding.EncodeToString(b.Key))
	}
	if b.Identifiers != n.ids {
		return nil, nil, fmt.Errorf("%w: body: identifiers %+v differ from the registration's %+v; call Prepare again", ErrInvalid, b.Identifiers, n.ids)
	}
	if b.Private != n.private {
		return nil, nil, fmt.Errorf("%w: body: private %t differs from the registration's %t", ErrInvalid, b.Private, n.private)
	}
	if n.private && b.Address != "" {
		return nil, nil, fmt.Errorf("%w: body: address set for a private terminal", ErrInvalid)
	}
	if !n.private {
		if n.address == "" {
			if b.Address != "" {
				if a, err := ident.IP(b.Address); err != nil || a != b.Address {
					return nil, nil, fmt.Errorf("%w: body: address %q is not a canonical IP address", ErrInvalid, b.Address)
				}
			}
			n.address = b.Address
		} else if b.Address != n.address {
			return nil, nil, fmt.Errorf("%w: body: address %q differs from the registration's %q", ErrInvalid, b.Address, n.address)
		}
	}
	t := time.UnixMilli(b.Time)
	if age := now.Sub(t); age > SignWindow {
		return nil, nil, fmt.Errorf("%w: body: %w: prepared %s ago (max %s); call Prepare again", ErrInvalid, record.ErrStale, age.Round(time.Second), SignWindow)
	}
	if b.Seq == 0 || b.Seq > maxSeq {
		return nil, nil, fmt.Errorf("%w: body: seq %d out of 1..%d", ErrInvalid, b.Seq, uint64(maxSeq))
	}
	if !validHandle(b.Terminal) {
		return nil, nil, fmt.Errorf("%w: body: terminal %q is not a handle this node issues", ErrInvalid, b.Terminal)
	}
	if _, err := rec.Verify(r.self, now); err != nil {
		return nil, nil, fmt.Errorf("%w: sig: %w", ErrInvalid, err)
	}
	return rec, b, nil
}

// Register validates a registration, stores the terminal durably and
// returns its acknowledgement; see the package documentation. Validation
// errors wrap ErrInvalid and name the field.
func (r *Registry) Register(reg client.Registration) (client.Ack, error) {
	return r.RegisterChecked(reg, nil)
}

// RegisterChecked is Register for a client that must show it may update a
// terminal already registered: when reg would update one that reg's own
// key does not hold (a key-less registration of a held uid, or a keyed one
// of a key-less terminal's uid), mayUpdate is called with that terminal's
// handle, and its error, if any, is returned unchanged. A terminal's own
// key, proven by the signature, needs no check. nil allows every update.
func (r *Registry) RegisterChecked(reg client.Registration, mayUpdate func(terminal string) error) (client.Ack, error) {
	return r.RegisterLimited(reg, mayUpdate, nil)
}

// RegisterLimited is RegisterChecked for a client whose new terminals are
// limited: when reg would register a new terminal, mayCreate is called
// first, and its error, if any, is returned unchanged. nil allows every
// new terminal.
func (r *Registry) RegisterLimited(reg client.Registration, mayUpdate func(terminal string) error, mayCreate func() error) (client.Ack, error) {
	start := time.Now()
	ack, err := r.register(reg, mayUpdate, mayCreate)
	r.m.observeRegister(start, err)
	// A full node is counted (irmv_registrations_total), not logged for
	// each refusal: a client past the bound would flood the log.
	if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrForbidden) && !errors.Is(err, ErrFull) {
		r.log.Warn("Registration failed", "error", err)
	}
	return ack, err
}

func (r *Registry) register(reg client.Registration, mayUpdate func(string) error, mayCreate func() error) (client.Ack, error) {
	if r.closed.Load() {
		return client.Ack{}, ErrClosed
	}
	n, err := r.normalize(reg)
	if err != nil {
		return client.Ack{}, err
	}
	if len(n.key) > 0 && (len(reg.Body) == 0 || len(reg.Sig) == 0) {
		return client.Ack{}, fmt.Errorf("%w: key: %w", ErrInvalid, ErrSignatureRequired)
	}
	now := r.now()
	var (
		signed *record.Record
		sbody  *record.Body
	)
	if len(n.key) > 0 {
		if signed, sbody, err = r.checkSigned(n, reg, now); err != nil {
			return client.Ack{}, err
		}
	}

	unlockID := r.lockIdentity(n.key, n.ids.UID)
	defer unlockID()
	for attempt := 0; ; attempt++ {
		r.mu.RLock()
		existing, err := r.findLocked(n.key, n.ids.UID)
		r.mu.RUnlock()
		if err != nil {
			return client.Ack{}, err
		}
		// Only the key, proven by the signature, makes an update
		// the terminal's own.
		if existing != nil && mayUpdate != nil && (len(n.key) == 0 || !bytes.Equal(existing.body.Key, n.key)) {
			if err := mayUpdate(existing.Terminal); err != nil {
				return client.Ack{}, err
			}
		}
		var handle string
		switch {
		case sbody != nil:
			handle = sbody.Terminal
			if existing != nil && handle != existing.Terminal {
				return client.Ack{}, fmt.Errorf("%w: body: terminal %q, but this key or uid is registered as %q; call Prepare again",
					ErrInvalid, handle, existing.Terminal)
			}
			if existing != nil && sbody.Seq <= existing.body.Seq {
				return client.Ack{}, fmt.Errorf("%w: body: seq %d is not above the current %d (replayed or out of date); call Prepare again",
					ErrInvalid, sbody.Seq, existing.body.Seq)
			}
		case existing != nil:
			handle = existing.Terminal
		default:
			handle = newHandle()
		}

		unlockH := r.lockHandle(handle)
		r.mu.RLock()
		cur := r.byHandle[handle]
		again, _ := r.findLocked(n.key, n.ids.UID)
		r.mu.RUnlock()
		if again != existing || (cur != nil && cur != existing) {
			unlockH()
			if sbody != nil && cur != nil && again == existing {
				return client.Ack{}, fmt.Errorf("%w: body: terminal %q is another terminal's handle; call Prepare again", ErrForbidden, handle)
			}
			if attempt < 3 {
				continue // raced with a removal or a handle collision
			}
			return client.Ack{}, fmt.Errorf("%w: terminal %q changed concurrently; try again", ErrForbidden, handle)
		}
		ack, err := r.store(n, existing, handle, signed, sbody, now, mayCreate)
		unlockH()
		return ack, err
	}
}

// store builds, writes and applies a registration. The caller holds the
// handle's stripe.
func (r *Registry) store(n *normalized, existing *entry, handle string, signed *record.Record, sbody *record.Body, now time.Time, mayCreate func() error) (client.Ack, error) {
	if existing == nil {
		// Concurrent registrations may each pass this: the bound holds
		// up to their number.
		r.mu.RLock()
		count := len(r.byHandle)
		r.mu.RUnlock()
		if count >= r.max {
			return client.Ack{}, fmt.Errorf("%w: %d terminals registered, the most this node hosts", ErrFull, count)
		}
		if mayCreate != nil {
			if err := mayCreate(); err != nil {
				return client.Ack{}, err
			}
		}
	}
	rec, body := signed, sbody
	if rec == nil {
		var cur uint64
		if existing != nil {
			cur = existing.body.Seq
		}
		body = n.body(handle, r.self.String(), nextSeq(now, cur, n.seq), now)
		var err error
		if rec, err = record.SignNode(body, r.key); err != nil {
			return client.Ack{}, fmt.Errorf("share: attest record: %w", err)
		}
	}
	rec.Status = n.status
	rec.Seen = now.UnixMilli()

	var token [32]byte
	rand.Read(token[:])
	tok := base64.RawURLEncoding.EncodeToString(token[:])
	hash := sha256.Sum256([]byte(tok))

	e := &entry{
		stored: stored{
			Terminal:  handle,
			TokenHash: hash[:],
			Record:    rec,
			Address:   n.address,
			Expires:   now.Add(n.ttl).UnixMilli(),
			TTL:       int64(n.ttl / time.Second),
			Keepalive: n.keepalive,
		},
		body:   body,
		folded: n.folded,
		tokens: n.tokens,
		ids:    identifiers(n.ids, n.folded, n.tokens),
	}
	if err := r.write(e); err != nil {
		return client.Ack{}, err
	}
	r.mu.Lock()
	// existing may have been removed meanwhile (then it is no longer
	// indexed); replace whatever the handle holds now.
	pub, unpub := r.replaceLocked(r.byHandle[handle], e)
	ack := e.ack(tok)
	ack.Created = existing == nil
	r.publishUnlock(pub, unpub)
	r.log.Debug("Terminal registered", "terminal", handle, "signer", string(rec.Signer), "seq", body.Seq)
	return ack, nil
}

// write stores e durably, sharing the commit with concurrent writers.
func (r *Registry) write(e *entry) error {
	data, err := jsonStored(e)
	if err != nil {
		return err
	}
	err = r.commit(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTerminals).Put([]byte(e.Terminal), data)
	})
	if err != nil {
		return r.dbErr("store terminal", e.Terminal, err)
	}
	e.diskExpires = e.Expires
	return nil
}

// commit runs fn in a durable write transaction. A lone writer commits at
// once; concurrent writers go through bbolt's group commit (Batch), so
// they share one fsync. fn may run more than once.
func (r *Registry) commit(fn func(*bbolt.Tx) error) error {
	defer r.writers.Add(-1)
	if r.writers.Add(1) == 1 {
		return r.db.Update(fn)
	}
	return r.db.Batch(fn)
}

// remove deletes a terminal durably.
func (r *Registry) remove(handle string) error {
	err := r.commit(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketTerminals).Delete([]byte(handle))
	})
	if err != nil {
		return r.dbErr("remove terminal", handle, err)
	}
	return nil
}

func (r *Registry) dbErr(op, handle string, err error) error {
	if r.closed.Load() || errors.Is(err, bbolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return fmt.Errorf("share: %s %q: %w", op, handle, err)
}
