package phone

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/irmv/irmv/record"
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

// remember stores key for the identifiers and writes the file. Other phones
// may share the file: what they wrote since it was read is kept, and the
// file is replaced in one rename so that no reader sees half of it.
func (k *knownKeys) remember(ids record.Identifiers, key ed25519.PublicKey) {
	if k == nil || key == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	mine := map[string][]byte{}
	for _, id := range knownIDs(ids) {
		if !bytes.Equal(k.keys[id], key) {
			mine[id] = bytes.Clone(key)
		}
	}
	if len(mine) == 0 {
		return
	}
	unlock, err := lockFile(k.path + ".lock")
	if err != nil {
		return // best effort, as the write below
	}
	defer unlock()
	if data, err := os.ReadFile(k.path); err == nil {
		var disk map[string][]byte
		if json.Unmarshal(data, &disk) == nil {
			maps.Copy(k.keys, disk)
		}
	}
	maps.Copy(k.keys, mine)
	data, err := json.MarshalIndent(k.keys, "", "  ")
	if err != nil {
		return
	}
	_ = writeFileAtomic(k.path, append(data, '\n'), 0o600) // best effort, as before
}

// Lock files older than this are left over by a crashed phone.
const staleLock = 10 * time.Second

// lockFile takes an exclusive lock on path by creating it, for a
// read-modify-write of a file other processes may share; unlock removes it.
func lockFile(path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, serr := os.Stat(path); serr == nil && time.Since(fi.ModTime()) > staleLock {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: locked", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// writeFileAtomic replaces path with data through a temporary file of its
// own in the same directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

func short(key []byte) string {
	s := base64.StdEncoding.EncodeToString(key)
	if len(s) > 12 {
		s = s[:12] + "…"
	}
	return s
}
