//go:build !irmv_json_config

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestYAMLConfigKeys: a key that names no flag (a misspelling) is an error
// that names it, as in the JSON build, instead of leaving the flag at its
// default; known keys of every kind are read.
func TestYAMLConfigKeys(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, yaml, want string
	}{
		{"misspelt key", "data-dir: " + dir + "\nlisen: /ip4/127.0.0.1/tcp/0\nprofile: tiny\n", `unknown key "lisen" (line 2)`},
		{"config in the config", "config: other.yaml\nprofile: tiny\n", `unknown key "config"`},
		{"not a mapping", "- api\n", "want a mapping"},
		{"not YAML", "api: [\n", "config"},
		// Known keys pass and are applied: the bad profile comes from the
		// file, after the string, list and bool keys were read.
		{"known keys", "data-dir: " + dir + "\napi: 127.0.0.1:0\nlisten:\n  - /ip4/127.0.0.1/tcp/0\nmdns: false\nturn: off\nprofile: tiny\n", `profile "tiny"`},
		// One value where a list flag takes several is that one value.
		{"one listen address", "data-dir: " + dir + "\napi: 127.0.0.1:0\nlisten: /ip4/127.0.0.1/tcp/0\nmdns: false\nturn: off\nprofile: tiny\n", `profile "tiny"`},
		{"wrong type", "data-dir: " + dir + "\nmdns: [1]\n", "mdns"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "irmv.yaml")
			if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCLI("node", "--config", path)
			if code != exitError || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitError, c.want)
			}
			if strings.Contains(stderr, "inner error") {
				t.Errorf("stderr %q: the reason buried in altsrc's wrapping", stderr)
			}
		})
	}
	code, _, stderr := runCLI("node", "--config", filepath.Join(dir, "missing.yaml"))
	if code != exitError || !strings.Contains(stderr, "no such file") || strings.Contains(stderr, "inner error") {
		t.Errorf("missing config file: exit %d, stderr %q", code, stderr)
	}
}
