// Package testenv decides, the same way for every test, what a test does
// when the machine lacks something it needs: a program (Chromium,
// baresip, SIPp, sox), the addresses of scripts/netns-run's namespace, a
// unique local IPv6 address. On a developer's machine the test is skipped,
// saying what is missing and how to get it; where everything is required
// it fails instead, so that a missing package cannot pass as a green run.
// Everything is required when IRMV_TEST_REQUIRE_ALL=1 (.ci/run sets it)
// or CI is set.
package testenv

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// RequireAllEnv is the environment variable that turns skips into
// failures.
const RequireAllEnv = "IRMV_TEST_REQUIRE_ALL"

// RequireAll reports whether a missing requirement fails the test.
func RequireAll() bool {
	return os.Getenv(RequireAllEnv) == "1" || os.Getenv("CI") != ""
}

// Missing ends the test for want of what (a message saying what is
// missing and how to get it): a failure if RequireAll, else a skip.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	if RequireAll() {
		tb.Fatalf("%s (%s=1: required)", what, RequireAllEnv)
	}
	tb.Skip(what)
}

// Program returns the path of the program name, or ends the test with
// Missing if it is not installed: pkg is the Debian package that has it.
func Program(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, name+" is not installed (apt-get install "+pkg+")")
	}
	return path
}

// Chromium is the path of Chromium, for the web page's tests.
func Chromium(tb testing.TB) string {
	tb.Helper()
	return Program(tb, "chromium", "chromium")
}

// Namespace ends the test with Missing unless it runs in
// scripts/netns-run's namespace: 10.99.0.1 and fd99::1 on its ifb
// interface.
func Namespace(tb testing.TB) {
	tb.Helper()
	if !hasAddr(tb, net.ParseIP("10.99.0.1")) || !hasAddr(tb, net.ParseIP("fd99::1")) {
		Missing(tb, "needs scripts/netns-run's namespace (10.99.0.1 and fd99::1 on d0): run it through scripts/netns-run")
	}
}

// LocalIPv6 returns a unique local IPv6 address (fc00::/7) of this
// machine, such as scripts/netns-run's fd99::1, or ends the test with
// Missing. pion never gathers ::1 (ice takes it for an IPv4-compatible
// address), so IPv6 calls need one.
func LocalIPv6(tb testing.TB) net.IP {
	tb.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP[0]&0xfe == 0xfc {
			return n.IP
		}
	}
	Missing(tb, "no unique local IPv6 address (pion does not gather ::1): run it through scripts/netns-run, which puts fd99::1 on d0")
	return nil
}

func hasAddr(tb testing.TB, ip net.IP) bool {
	tb.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// Close closes c at the test's cleanup and fails the test if that fails:
// a helper's Close error is a bug like any other.
func Close(tb testing.TB, what string, c io.Closer) {
	tb.Helper()
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("closing %s: %v", what, err)
		}
	})
}

// SyncBuffer is a bytes.Buffer that a test may read while other
// goroutines (a CLI, pion, a process's output) write to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
