package sip

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/irmv/irmv/internal/testenv"
)

// needSIPp fails the test when SIPp is missing in CI and skips it
// elsewhere.
func needSIPp(t *testing.T) {
	t.Helper()
	testenv.Program(t, "sipp", "sip-tester")
}

// sipp runs one call of a scenario from testdata/sipp against the server
// and returns its exit status (0: every step as the scenario expects).
func (e *testEnv) sipp(scenario, user, pass string, extra ...string) int {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port := strconv.Itoa(e.s.Addr().(*net.UDPAddr).Port)
	sf, err := filepath.Abs(filepath.Join("testdata", "sipp", scenario))
	if err != nil {
		e.t.Fatal(err)
	}
	args := append([]string{"127.0.0.1:" + port, "-sf", sf,
		"-m", "1", "-i", "127.0.0.1", "-s", user, "-au", user, "-ap", pass,
		"-timeout", "30s", "-timeout_error", "-recv_timeout", "10000", "-nostdin"}, extra...)
	cmd := exec.CommandContext(ctx, "sipp", args...)
	cmd.Dir = e.t.TempDir()
	out, err := cmd.CombinedOutput()
	code := cmd.ProcessState.ExitCode()
	if err != nil && code == 0 {
		code = -1
	}
	if code != 0 {
		e.t.Logf("sipp %s: exit %d\n%s", scenario, code, lastLines(string(out), 30))
	}
	return code
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestSIPpRegister(t *testing.T) {
	needSIPp(t)
	e := newTestEnv(t)
	e.addUser("alice", "s3cret", "", "")
	count := func(result string) float64 { return testutil.ToFloat64(e.s.m.registers.WithLabelValues(result)) }

	if code := e.sipp("register.xml", "alice", "s3cret"); code != 0 {
		t.Fatalf("register.xml: exit %d", code)
	}
	if count("ok") != 1 || count("removed") != 1 {
		t.Fatalf("ok %v, removed %v, want 1 and 1", count("ok"), count("removed"))
	}
	if e.reg.Count() != 0 || len(e.s.Bindings()) != 0 {
		t.Fatal("binding left after Contact: * with Expires: 0")
	}

	for _, tc := range []struct{ user, pass string }{{"alice", "wrong"}, {"mallory", "s3cret"}} {
		if code := e.sipp("register_refused.xml", tc.user, tc.pass); code != 0 {
			t.Fatalf("register_refused.xml as %s/%s: exit %d", tc.user, tc.pass, code)
		}
	}
	if code := e.sipp("register_brief.xml", "alice", "s3cret"); code != 0 {
		t.Fatalf("register_brief.xml: exit %d", code)
	}
	if e.reg.Count() != 0 || len(e.s.Bindings()) != 0 {
		t.Fatal("refused REGISTERs stored something")
	}
	if count("forbidden") != 2 || count("too_brief") != 1 {
		t.Fatalf("forbidden %v, too_brief %v, want 2 and 1", count("forbidden"), count("too_brief"))
	}
}

func TestSIPpMalformed(t *testing.T) {
	needSIPp(t)
	e := newTestEnv(t)
	e.addUser("alice", "s3cret", "", "")
	if code := e.sipp("malformed.xml", "alice", "s3cret"); code != 0 {
		t.Fatalf("malformed.xml: exit %d", code)
	}
	if got := testutil.ToFloat64(e.s.m.dropped.WithLabelValues("malformed")); got < 2 {
		t.Fatalf("malformed count %v, want ≥ 2", got)
	}
	if e.reg.Count() != 0 || len(e.s.Bindings()) != 0 {
		t.Fatal("malformed input stored something")
	}
	// Still serving.
	if code := e.sipp("register.xml", "alice", "s3cret"); code != 0 {
		t.Fatalf("register.xml after malformed input: exit %d", code)
	}
}

// A BYE, a re-INVITE and a CANCEL that belong to no dialog or
// transaction get 481 and are counted.
func TestSIPpOutsideDialog(t *testing.T) {
	needSIPp(t)
	e := newTestEnv(t)
	if code := e.sipp("outside_dialog.xml", "alice", "x"); code != 0 {
		t.Fatalf("outside_dialog.xml: exit %d", code)
	}
	for _, m := range []string{"BYE", "INVITE", "CANCEL"} {
		if got := testutil.ToFloat64(e.s.m.noDialog.WithLabelValues(m)); got != 1 {
			t.Errorf("%s outside a dialog counted %v times, want 1", m, got)
		}
	}
}
