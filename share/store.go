package share

import (
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

func jsonStored(e *entry) ([]byte, error) {
	data, err := json.Marshal(&e.stored)
	if err != nil {
		return nil, fmt.Errorf("share: encode terminal %q: %w", e.Terminal, err)
	}
	return data, nil
}

// load reads every stored terminal into memory. Expired and undecodable
// terminals, and terminal-signed records naming another node, are deleted;
// node-attested records naming another node (the node key changed) or
// older than record.MaxAge/2 are re-attested.
func (r *Registry) load() error {
	now := r.now()
	return r.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketTerminals)
		if err != nil {
			return fmt.Errorf("share: create bucket: %w", err)
		}
		var drop [][]byte
		rewrite := map[string][]byte{}
		err = b.ForEach(func(k, v []byte) error {
			e, why := r.decodeEntry(k, v, now)
			if why != "" {
				r.log.Info("Dropping stored terminal", "terminal", string(k), "reason", why)
				drop = append(drop, k)
				return nil
			}
			if e.Record.Signer == record.SignerNode &&
				(e.body.Node != r.self.String() || now.Sub(time.UnixMilli(e.body.Time)) > record.MaxAge/2) {
				if err := r.reattest(e, now); err != nil {
					return fmt.Errorf("share: re-attest %q: %w", k, err)
				}
				data, err := jsonStored(e)
				if err != nil {
					return err
				}
				rewrite[string(k)] = data
			}
			e.diskExpires = e.Expires
			r.indexLocked(e)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		for k, v := range rewrite {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// decodeEntry decodes a stored terminal, or says why it is dropped.
func (r *Registry) decodeEntry(k, v []byte, now time.Time) (*entry, string) {
	var s stored
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, "undecodable: " + err.Error()
	}
	if s.Record == nil || s.Terminal != string(k) {
		return nil, "malformed"
	}
	if now.UnixMilli() >= s.Expires {
		return nil, "expired"
	}
	body, err := s.Record.Decoded()
	if err != nil {
		return nil, err.Error()
	}
	if body.Terminal != s.Terminal {
		return nil, "record names another handle"
	}
	if s.Record.Signer == record.SignerTerminal && body.Node != r.self.String() {
		return nil, "terminal-signed record names another node"
	}
	e := &entry{stored: s, body: body}
	if body.Identifiers.Name != "" {
		_, folded, err := r.norm.Name(body.Identifiers.Name)
		if err != nil {
			return nil, "name: " + err.Error()
		}
		e.folded, e.tokens = folded, ident.Terms(folded)
	}
	e.ids = identifiers(body.Identifiers, e.folded, e.tokens)
	return e, ""
}
