package phone

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/irmv/irmv/record"
)

// TestKnownKeysShared: phones sharing one known-keys file keep each
// other's keys, even when they write at the same time, and leave no
// temporary files behind.
func TestKnownKeysShared(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "known.json")
	const phones = 8
	ks := make([]*knownKeys, phones)
	for i := range ks {
		k, err := loadKnownKeys(path)
		if err != nil {
			t.Fatal(err)
		}
		ks[i] = k
	}
	var wg sync.WaitGroup
	for i, k := range ks {
		wg.Go(func() {
			pub, _, _ := ed25519.GenerateKey(nil)
			k.remember(record.Identifiers{UID: "callee-" + strconv.Itoa(i)}, pub)
		})
	}
	wg.Wait()
	// One more write after the rest: it must keep every earlier key.
	pub, _, _ := ed25519.GenerateKey(nil)
	ks[0].remember(record.Identifiers{Phone: "+4930123"}, pub)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string][]byte
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("known keys file: %v", err)
	}
	for i := range phones {
		if _, ok := got["uid:callee-"+strconv.Itoa(i)]; !ok {
			t.Errorf("the key of callee-%d was lost", i)
		}
	}
	if _, ok := got["phone:+4930123"]; !ok {
		t.Error("the last key is missing")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the directory, want only the known keys", len(entries))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
	}
}
