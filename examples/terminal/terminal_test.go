package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/leaktest"
	"github.com/irmv/irmv/node/nodetest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }

// buildOutside builds this program as a module of its own that requires
// github.com/irmv/irmv (replaced by this checkout): the Go toolchain
// refuses internal packages across modules, so it builds only on the
// public API. The module cache must hold every dependency (GOPROXY=off).
func buildOutside(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	mod := fmt.Sprintf("module example.com/terminal\n\ngo %s\n\nrequire github.com/irmv/irmv v0.0.0\n\nreplace github.com/irmv/irmv => %s\n",
		strings.TrimPrefix(runtime.Version(), "go"), root)
	for name, data := range map[string][]byte{"main.go": src, "go.sum": sum, "go.mod": []byte(mod)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "terminal")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build outside the module: %v\n%s", err, out)
	}
	return bin
}

// terminal runs the program and delivers its events as they come.
type terminal struct {
	cmd    *exec.Cmd
	events chan client.Event
	done   chan error
}

func start(t *testing.T, ctx context.Context, bin string, args ...string) *terminal {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tm := &terminal{cmd: cmd, events: make(chan client.Event, 100), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e client.Event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				t.Errorf("not an event: %s", sc.Bytes())
				continue
			}
			tm.events <- e
		}
		_, _ = io.Copy(io.Discard, stdout)
		close(tm.events)
		tm.done <- cmd.Wait()
	}()
	return tm
}

// wait collects the terminal's events until it exits, and its exit error.
func (tm *terminal) wait() ([]string, error) {
	var types []string
	for e := range tm.events {
		types = append(types, e.Type)
	}
	return types, <-tm.done
}

// TestOutsideProgramCalls: a program outside the module registers two
// terminals at two real nodes, one calls the other by name, the call
// connects and ends on both sides.
func TestOutsideProgramCalls(t *testing.T) {
	bin := buildOutside(t)
	nodes := nodetest.Chain(t, 2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	callee := start(t, ctx, bin, "-node", nodes[0].APIURL(), "-name", "Ana Outside", "-timeout", "90s")
	select {
	case e := <-callee.events:
		if e.Type != client.EventRegistered || e.Self == nil || e.Self.Node != nodes[0].ID().String() {
			t.Fatalf("callee's first event: %+v", e)
		}
	case <-ctx.Done():
		t.Fatal("callee never registered")
	}
	caller := start(t, ctx, bin, "-node", nodes[1].APIURL(), "-name", "Bo Outside", "-call", "ana outside", "-hangup-after", "1s", "-timeout", "90s")

	callerEvents, err := caller.wait()
	if err != nil {
		t.Fatalf("caller: %v (events %v)", err, callerEvents)
	}
	calleeEvents, err := callee.wait()
	if err != nil {
		t.Fatalf("callee: %v (events %v)", err, calleeEvents)
	}
	for side, types := range map[string][]string{"caller": callerEvents, "callee": calleeEvents} {
		joined := " " + strings.Join(types, " ") + " "
		if !strings.Contains(joined, " connected ") || !strings.HasSuffix(joined, " ended ") {
			t.Errorf("%s's events %v: want connected, then ended last", side, types)
		}
	}
}
