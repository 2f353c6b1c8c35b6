//go:build !irmv_node_only

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimBadInput: `irmv sim` refuses bad variants, result files and
// shares before it starts any node.
func TestSimBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"nodes": 0}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--compare", "bucket=many"}, "bucket=many"},
		{[]string{"--compare", "today,speed=3"}, "speed"},
		{[]string{"--compare", "evict=yes"}, "evict=yes"},
		{[]string{"--with", filepath.Join(t.TempDir(), "missing.json")}, "missing.json"},
		{[]string{"--with", bad}, "without nodes"},
		{[]string{"--nodes", "10", "--private", "2"}, "private"},
		{[]string{"--nodes", "10", "--bucket-size", "-1"}, "bucket"},
		{[]string{"--nodes", "ten"}, "ten"},
		{[]string{"--nodes", "none"}, "none"}, // none only with --with
	} {
		code, _, stderr := runCLI(append([]string{"sim"}, c.args...)...)
		if code == exitOK || !strings.Contains(stderr, c.want) {
			t.Errorf("irmv sim %v: exit %d, stderr %q; want failure naming %q", c.args, code, stderr, c.want)
		}
	}
}

// TestSimProgressInALog: with stderr not a terminal (a log file, CI) the
// progress is one plain line per phase; it was a bar redrawn with carriage
// returns and escape codes.
func TestSimProgressInALog(t *testing.T) {
	code, stdout, stderr := runCLI("sim", "--nodes", "4", "--lookups", "2", "--flood-samples", "-1", "--latency", "1ms")
	if code != exitOK {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "exact lookups") {
		t.Errorf("no results:\n%s", stdout)
	}
	if strings.ContainsAny(stderr, "\r\033") {
		t.Errorf("terminal control codes in a log:\n%q", stderr)
	}
	if !strings.Contains(stderr, "4 nodes: lookups\n") {
		t.Errorf("no line for the lookups phase:\n%s", stderr)
	}
}
