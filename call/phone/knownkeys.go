package phone

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/irmv/irmv/share/record"
)

// knownKeys remembers the key of each phone number and uid called, in a
// JSON file: {"phone:+4930123456": "<base64 key>", …}. A nil *knownKeys
// remembers nothing.
type knownKeys struct {
	path string
	mu   sync.Mutex
	keys map[string][]byte
}

func loadKnownKeys(path string) (*knownKeys, error) {
	if path == "" {
		return nil, nil
	}
	k := &knownKeys{path: path, keys: map[string][]byte{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("phone: known keys: %w", err)
	}
	if err := json.Unmarshal(data, &k.keys); err != nil {
		return nil, fmt.Errorf("phone: known keys %s: %w", path, err)
	}
	return k, nil
}

// knownIDs are the identifiers a key is remembered under.
func knownIDs(ids record.Identifiers) []string {
	var out []string
	if ids.Phone != "" {
		out = append(out, "phone:"+ids.Phone)
	}
	if ids.UID != "" {
		out = append(out, "uid:"+ids.UID)
	}
	return out
}

// check returns a warning for each identifier whose remembered key differs
// from key.
func (k *knownKeys) check(ids record.Identifiers, key ed25519.PublicKey) []string {
	if k == nil || key == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var warn []string
	for _, id := range knownIDs(ids) {
		if old, ok := k.keys[id]; ok && !bytes.Equal(old, key) {
			warn = append(warn, fmt.Sprintf("the key of %s has changed since the last call (was %s, now %s)",
				id, short(old), short(key)))
		}
	}
	return warn
}

// remember stores key for the identifiers and writes the file.
func (k *knownKeys) remember(ids record.Identifiers, key ed25519.PublicKey) {
	if k == nil || key == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	changed := false
	for _, id := range knownIDs(ids) {
		if !bytes.Equal(k.keys[id], key) {
			k.keys[id] = bytes.Clone(key)
			changed = true
		}
	}
	if !changed {
		return
	}
	data, err := json.MarshalIndent(k.keys, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return
	}
	tmp := k.path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return
	}
	os.Rename(tmp, k.path)
}

func short(key []byte) string {
	s := base64.StdEncoding.EncodeToString(key)
	if len(s) > 12 {
		s = s[:12] + "…"
	}
	return s
}
