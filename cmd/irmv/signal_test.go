package main

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNodeStopsOnSignal: the built binary, as the README says to run it,
// stops cleanly on SIGINT (Ctrl-C) and SIGTERM and exits 0. (Under `go run`
// the go command itself exits 1 on Ctrl-C whatever the node does, which is
// why the README builds the binary.)
func TestNodeStopsOnSignal(t *testing.T) {
	bin := buildIrmvForTest(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "node", "--data-dir", t.TempDir(), "--api", "127.0.0.1:0",
				"--listen", "/ip4/127.0.0.1/tcp/0", "--turn", "127.0.0.1:0", "--mdns=false")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					cmd.Wait()
				}
			})
			lines := make(chan string, 100)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			var log strings.Builder
			timeout := time.After(60 * time.Second)
			// The node is up once it has printed its addresses.
			for up := false; !up; {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("node exited before it was up:\n%s", log.String())
					}
					log.WriteString(l + "\n")
					up = strings.HasPrefix(l, "  addr ")
				case <-timeout:
					t.Fatalf("node not up:\n%s", log.String())
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for done := false; !done; {
				select {
				case l, ok := <-lines:
					log.WriteString(l + "\n")
					done = !ok
				case <-timeout:
					t.Fatalf("node did not stop on %v:\n%s", sig, log.String())
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit after %v: %v, want 0:\n%s", sig, err, log.String())
			}
			if !strings.Contains(log.String(), "Node stopped") {
				t.Errorf("no \"Node stopped\" after %v:\n%s", sig, log.String())
			}
		})
	}
}
