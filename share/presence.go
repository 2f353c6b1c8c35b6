package share

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// sweepInterval is how often Serve runs the presence sweep.
const sweepInterval = time.Second

// update applies f to a copy of the terminal's entry, writes the copy when
// f says so, and installs it. It returns the acknowledgement.
func (r *Registry) update(terminal string, f func(c *entry, now time.Time) (write bool)) (client.Ack, error) {
	if r.closed.Load() {
		return client.Ack{}, ErrClosed
	}
	unlock := r.lockHandle(terminal)
	defer unlock()
	r.mu.RLock()
	e := r.byHandle[terminal]
	var c *entry
	if e != nil {
		c = e.clone()
	}
	r.mu.RUnlock()
	if e == nil {
		return client.Ack{}, notFound(terminal)
	}
	if f(c, r.now()) {
		if err := r.write(c); err != nil {
			return client.Ack{}, err
		}
	}
	r.mu.Lock()
	e.stored = c.stored
	e.diskExpires = c.diskExpires
	ack := e.ack("")
	r.mu.Unlock()
	return ack, nil
}

// Heartbeat records that the terminal was heard from: it refreshes Seen
// and the expiry, and brings a keepalive terminal that was shown offline
// for silence back to its previous status. The new expiry is written to
// disk only when the stored one lags by more than half the TTL.
func (r *Registry) Heartbeat(terminal string) (client.Ack, error) {
	return r.update(terminal, func(c *entry, now time.Time) bool {
		write := false
		c.Record.Seen = now.UnixMilli()
		c.Expires = now.Add(c.ttl()).UnixMilli()
		if c.Record.Status == record.StatusOffline && c.Resume != record.StatusUnknown {
			c.Record.Status, c.Resume = c.Resume, record.StatusUnknown
			write = true
		}
		if c.Expires-c.diskExpires > c.ttl().Milliseconds()/2 {
			write = true
		}
		return write
	})
}

// SetStatus sets a terminal's status (online, idle, busy or offline). An
// offline status set here stays until changed here again; heartbeats do
// not end it.
func (r *Registry) SetStatus(terminal string, s record.Status) (client.Ack, error) {
	switch s {
	case record.StatusOnline, record.StatusIdle, record.StatusBusy, record.StatusOffline:
	default:
		return client.Ack{}, fmt.Errorf("%w: status: %w: %s (want online, idle, busy or offline)", ErrInvalid, record.ErrBadStatus, s)
	}
	return r.update(terminal, func(c *entry, _ time.Time) bool {
		c.Record.Status, c.Resume = s, record.StatusUnknown
		return true
	})
}

// Remove deletes a terminal durably and unpublishes the identifiers that
// no other hosted terminal still has.
func (r *Registry) Remove(terminal string) error {
	if r.closed.Load() {
		return ErrClosed
	}
	unlock := r.lockHandle(terminal)
	defer unlock()
	r.mu.RLock()
	e := r.byHandle[terminal]
	r.mu.RUnlock()
	if e == nil {
		return notFound(terminal)
	}
	if err := r.remove(terminal); err != nil {
		return err
	}
	r.mu.Lock()
	unpub := r.unindexLocked(e)
	r.publishUnlock(nil, unpub)
	r.log.Debug("Terminal removed", "terminal", terminal)
	return nil
}

// Serve runs the presence loop until ctx is done, then returns nil: once a
// second it marks silent keepalive terminals offline, removes expired
// registrations and re-attests node-signed bodies older than
// record.MaxAge/2, all durably. It returns ErrClosed if the registry is
// closed first.
func (r *Registry) Serve(ctx context.Context) error {
	if r.closed.Load() {
		return ErrClosed
	}
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := r.sweep(r.now()); err != nil {
				if errors.Is(err, ErrClosed) {
					return err
				}
				r.log.Warn("Presence sweep failed", "error", err)
			}
		}
	}
}

// sweep runs one pass of the presence loop as of now.
func (r *Registry) sweep(now time.Time) error {
	if r.closed.Load() {
		return ErrClosed
	}
	unlock := r.lockAllHandles()
	defer unlock()

	nowMS := now.UnixMilli()
	var (
		expired []*entry
		changed = map[*entry]*entry{} // entry -> updated copy
	)
	r.mu.RLock()
	for _, e := range r.byHandle {
		if nowMS >= e.Expires {
			expired = append(expired, e)
			continue
		}
		var c *entry
		if e.Record.Status != record.StatusOffline && r.silent(e, nowMS) {
			c = e.clone()
			c.Resume, c.Record.Status = c.Record.Status, record.StatusOffline
		}
		if e.Record.Signer == record.SignerNode && now.Sub(time.UnixMilli(e.body.Time)) > record.MaxAge/2 {
			if c == nil {
				c = e.clone()
			}
			if err := r.reattest(c, now); err != nil {
				r.log.Warn("Re-attesting record failed", "terminal", e.Terminal, "error", err)
				c = nil
			}
		}
		if c != nil {
			changed[e] = c
		}
	}
	r.mu.RUnlock()
	if len(expired) == 0 && len(changed) == 0 {
		return nil
	}

	updates := make(map[string][]byte, len(changed))
	for _, c := range changed {
		data, err := jsonStored(c)
		if err != nil {
			return err
		}
		updates[c.Terminal] = data
	}
	err := r.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketTerminals)
		for _, e := range expired {
			if err := b.Delete([]byte(e.Terminal)); err != nil {
				return err
			}
		}
		for h, data := range updates {
			if err := b.Put([]byte(h), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return r.dbErr("sweep", "", err)
	}

	r.mu.Lock()
	var unpub []ident.ID
	for _, e := range expired {
		unpub = append(unpub, r.unindexLocked(e)...)
		r.log.Info("Registration expired", "terminal", e.Terminal)
	}
	offline := 0
	for e, c := range changed {
		if c.Record.Status != e.Record.Status {
			offline++
		}
		c.diskExpires = c.Expires
		e.stored = c.stored
		e.body = c.body
		e.diskExpires = c.diskExpires
	}
	r.publishUnlock(nil, unpub)
	r.m.expired.Add(float64(len(expired)))
	if offline > 0 {
		r.log.Debug("Silent terminals shown offline", "count", offline)
	}
	return nil
}

// reattest re-signs a node-attested body of c with a fresh time and the
// next sequence number.
func (r *Registry) reattest(c *entry, now time.Time) error {
	b := *c.body
	b.Seq = nextSeq(now, b.Seq)
	b.Time = now.UnixMilli()
	b.Node = r.self.String()
	rec, err := record.SignNode(&b, r.key)
	if err != nil {
		return err
	}
	rec.Status, rec.Seen = c.Record.Status, c.Record.Seen
	c.Record, c.body = rec, &b
	return nil
}
