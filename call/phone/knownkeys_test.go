package phone

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// knownKeysCase is a sequence of remembers and checks on one store, with
// the identifiers each check warns about; the web page's keys.js runs the
// same file (node TestBrowserKnownKeysCases).
type knownKeysCase struct {
	Name  string `json:"name"`
	Steps []struct {
		Op   string             `json:"op"`
		IDs  record.Identifiers `json:"ids"`
		Key  []byte             `json:"key"`
		Want []string           `json:"want"`
	} `json:"steps"`
}

func TestKnownKeysCases(t *testing.T) {
	data, err := os.ReadFile("testdata/knownkeys-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []knownKeysCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			k, err := loadKnownKeys(filepath.Join(t.TempDir(), "known.json"))
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.Steps {
				var key ed25519.PublicKey
				if len(s.Key) > 0 {
					key = s.Key
				}
				switch s.Op {
				case "remember":
					k.remember(s.IDs, key)
				case "check":
					warns := k.check(s.IDs, key)
					ok := len(warns) == len(s.Want)
					for j := 0; ok && j < len(warns); j++ {
						ok = strings.Contains(warns[j], s.Want[j]+" ")
					}
					if !ok {
						t.Errorf("step %d: warnings %q, want one for each of %q", i, warns, s.Want)
					}
				default:
					t.Fatalf("step %d: op %q", i, s.Op)
				}
			}
		})
	}
}
