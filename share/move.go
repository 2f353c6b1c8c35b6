package share

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/irmv/irmv/record"
)

// Superseded says which hosted terminal a newer registration elsewhere
// replaced.
type Superseded struct {
	Terminal string // the handle here, now removed
	Seq      uint64 // the sequence number of its record here
}

// Supersede removes the hosted terminal that rec, a record of the same
// terminal registered at node from, replaces: for a terminal with a key,
// rec must be signed by that key and carry a higher sequence number; for
// a terminal without one, token must be its token here. rec must name
// from as its host and verify. The identifiers no other terminal has are
// unpublished, as by Remove.
//
// It returns an error wrapping ErrNotFound when no hosted terminal has
// rec's key (or, without a key, its uid), ErrStale when rec is not newer
// than the record here (the Superseded then carries its Seq), ErrForbidden
// for a wrong token and ErrInvalid for a record that does not verify.
func (r *Registry) Supersede(rec *record.Record, from peer.ID, token string) (Superseded, error) {
	if r.closed.Load() {
		return Superseded{}, ErrClosed
	}
	if from == r.self {
		return Superseded{}, fmt.Errorf("%w: record: names this node", ErrInvalid)
	}
	b, err := rec.Verify(from, r.now())
	if err != nil {
		return Superseded{}, fmt.Errorf("%w: record: %w", ErrInvalid, err)
	}
	uid := b.Identifiers.UID
	if len(b.Key) == 0 && uid == "" {
		return Superseded{}, fmt.Errorf("%w: record: neither key nor uid", ErrNotFound)
	}
	unlockID := r.lockIdentity(b.Key, uid)
	defer unlockID()
	r.mu.RLock()
	var e *entry
	if len(b.Key) > 0 {
		e = r.byKey[string(b.Key)]
	} else if cand := r.byUID[uid]; cand != nil && len(cand.body.Key) == 0 {
		e = cand
	}
	r.mu.RUnlock()
	if e == nil {
		return Superseded{}, fmt.Errorf("%w: no terminal with that key or uid", ErrNotFound)
	}
	unlockH := r.lockHandle(e.Terminal)
	defer unlockH()
	r.mu.RLock()
	cur := r.byHandle[e.Terminal]
	r.mu.RUnlock()
	if cur != e {
		return Superseded{}, fmt.Errorf("%w: terminal %q changed concurrently", ErrNotFound, e.Terminal)
	}
	sup := Superseded{Terminal: e.Terminal, Seq: e.body.Seq}
	switch {
	case len(b.Key) > 0:
		if !bytes.Equal(e.body.Key, b.Key) || rec.Signer != record.SignerTerminal {
			return sup, fmt.Errorf("%w: record not signed by the terminal's key", ErrForbidden)
		}
		if b.Seq <= e.body.Seq {
			return sup, fmt.Errorf("%w: seq %d is not above %d here", ErrStale, b.Seq, e.body.Seq)
		}
	default:
		got := sha256.Sum256([]byte(token))
		if token == "" || subtle.ConstantTimeCompare(got[:], e.TokenHash) != 1 {
			return sup, fmt.Errorf("%w: wrong token for terminal %q", ErrForbidden, e.Terminal)
		}
	}
	if err := r.remove(e.Terminal); err != nil {
		return sup, err
	}
	r.mu.Lock()
	unpub := r.unindexLocked(e)
	r.publishUnlock(nil, unpub)
	r.m.superseded.Inc()
	r.log.Info("Terminal moved to another node", "terminal", e.Terminal, "node", from.String(), "seq", b.Seq)
	return sup, nil
}
