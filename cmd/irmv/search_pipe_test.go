package main

import (
	"bufio"
	"context"
	"fmt"
	"github.com/irmv/irmv/internal/testenv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// buildIrmvForTest returns the irmv binary, built once for the
// package's tests.
func buildIrmvForTest(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	return nodetest.Binary(t)
}

// nodeWith starts a node with a terminal of each name, the i-th with the
// uid anna-<i+1>.
func nodeWith(t *testing.T, names ...string) *node.Node {
	t.Helper()
	n := nodetest.Start(t, nodetest.Options(t))
	cl, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range names {
		reg := client.Registration{Name: name, UID: fmt.Sprintf("anna-%d", i+1), Address: fmt.Sprintf("10.99.0.%d", 11+i)}
		if _, err := cl.Register(context.Background(), reg); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// holdAfterFirstLine passes a body through up to and including its first
// line, then waits for release before passing on the rest.
type holdAfterFirstLine struct {
	body    io.ReadCloser
	release <-chan struct{}
	passed  bool // the first line has gone through
}

func (h *holdAfterFirstLine) Read(p []byte) (int, error) {
	if h.passed {
		<-h.release
		return h.body.Read(p)
	}
	// One byte at a time until the first newline, so nothing after it
	// slips through early.
	n, err := h.body.Read(p[:1])
	if n == 1 && p[0] == '\n' {
		h.passed = true
	}
	return n, err
}

func (h *holdAfterFirstLine) Close() error { return h.body.Close() }

// TestSearchPipeStreams: `irmv search` writing into a pipe prints each
// result as a line as soon as it arrives. A real node answers through a
// proxy that holds the search stream open after the first result; the
// reader of the real process's stdout must see that result while the
// search is still running, then the second one, and the process exits 0.
func TestSearchPipeStreams(t *testing.T) {
	bin := buildIrmvForTest(t)
	n := nodeWith(t, "Anna Lindqvist", "Anna Berg")
	target, err := url.Parse(n.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	held := make(chan struct{}, 1)
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) }, // the node serves its own Host only
		FlushInterval: -1,                                                  // pass each write on at once
	}
	proxy.ModifyResponse = func(resp *http.Response) error {
		if strings.HasPrefix(resp.Request.URL.Path, "/v1/search") {
			resp.Body = &holdAfterFirstLine{body: resp.Body, release: release}
			held <- struct{}{}
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	var released bool
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})

	cmd := exec.Command(bin, "search", "--node", srv.URL, "--timeout", "20s", "anna")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	next := func(what string) string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stdout ended before %s; stderr:\n%s", what, stderr.String())
			}
			return l
		case <-time.After(60 * time.Second):
			t.Fatalf("no %s on stdout within 60 s; stderr:\n%s", what, stderr.String())
		}
		return ""
	}
	checkLine := func(l string) string {
		cols := strings.Split(l, "\t")
		if len(cols) != 8 {
			t.Fatalf("line %q has %d tab-separated columns, want 8", l, len(cols))
		}
		if !strings.HasPrefix(cols[0], "Anna ") || cols[3] != "prefix" || !strings.Contains(cols[7], "@") {
			t.Errorf("line %q: want an Anna, match prefix, TERMINAL HANDLE@NODE", l)
		}
		return cols[2]
	}
	first := checkLine(next("the first result"))
	select {
	case <-held:
	default:
		t.Fatal("the search did not go through the holding proxy")
	}
	// The node's stream is still held open: the search has not ended.
	select {
	case err := <-exited:
		t.Fatalf("irmv search exited (%v) while its search stream was held open", err)
	default:
	}
	released = true
	close(release)
	second := checkLine(next("the second result"))
	if first == second {
		t.Errorf("both lines are %s", first)
	}
	if l, ok := <-lines; ok {
		t.Errorf("extra line %q", l)
	}
	if err := <-exited; err != nil {
		t.Fatalf("irmv search: %v; stderr:\n%s", err, stderr.String())
	}
}

// TestSearchPipeRanked: with --ranked, a piped search prints the ranked
// table (with its header) once the search has ended.
func TestSearchPipeRanked(t *testing.T) {
	bin := buildIrmvForTest(t)
	n := nodeWith(t, "Anna Lindqvist", "Anna")
	out, err := exec.Command(bin, "search", "--node", n.APIURL(), "--ranked", "anna").Output()
	if err != nil {
		t.Fatalf("irmv search --ranked: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("output:\n%s\nwant a header and two rows", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 4 || f[2] != "anna-2" || f[3] != "exact" {
		t.Errorf("first row %q: want anna-2, exact (ranked first)", lines[1])
	}
}
