//go:build !irmv_node_only

package main

import (
	"context"
	"errors"
	"github.com/irmv/irmv/internal/testenv"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// TestCallAsksOnTTY: `irmv call` on a real terminal (a pty) with two
// terminals that match equally well lists them, numbered, and asks; the
// number typed rings that one and nobody else; Enter rings nobody and
// exits 7 (ambiguous).
func TestCallAsksOnTTY(t *testing.T) {
	bin := buildIrmvForTest(t)
	nodes := nodetest.Chain(t, 2, func(i int, o *node.Options) {
		if i == 1 {
			o.Region = "SE"
		}
	})
	asker, host := nodes[0], nodes[1]
	kim1 := startRejecter(t, host, client.Registration{Name: "Kim Berg", UID: "kim-1"})
	kim2 := startRejecter(t, host, client.Registration{Name: "Kim Berg", UID: "kim-2", Phone: "08-123 45 67"})
	nodetest.WaitFor(t, "both terminals announced", func() bool {
		ch, err := asker.Search().Search(context.Background(), client.Query{Text: "kim berg", Via: client.ViaDHT, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range ch {
			n++
		}
		return n == 2
	})
	rang := func() [2]int32 { return [2]int32{kim1.rang.Load(), kim2.rang.Load()} }

	// call runs irmv call on a pty, answers its question with answer and
	// returns the exit code and what the terminal showed.
	call := func(t *testing.T, answer string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, "call", "--node", asker.APIURL(), "--timeout", "3s", "Kim Berg")
		tty, err := pty.Start(cmd)
		if err != nil {
			t.Fatal(err)
		}
		defer tty.Close()
		var screen testenv.SyncBuffer
		copied := make(chan struct{})
		go func() {
			defer close(copied)
			_, _ = io.Copy(&screen, tty) // ends with EIO once irmv exits
		}()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		const prompt = "call which? [1-2, Enter: nobody]"
		deadline := time.After(60 * time.Second)
		for !strings.Contains(screen.String(), prompt) {
			select {
			case err := <-exited:
				t.Fatalf("irmv call exited (%v) without asking; the terminal showed:\n%s", err, screen.String())
			case <-deadline:
				cmd.Process.Kill()
				<-exited
				t.Fatalf("no question on the terminal within 60 s; it showed:\n%s", screen.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if _, err := io.WriteString(tty, answer); err != nil {
			t.Fatal(err)
		}
		select {
		case err = <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("irmv call did not end after the answer; the terminal showed:\n%s", screen.String())
		}
		tty.Close()
		<-copied
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		code := 0
		if ee != nil {
			code = ee.ExitCode()
		}
		return code, screen.String()
	}

	t.Run("number", func(t *testing.T) {
		before := rang()
		code, screen := call(t, "2\n")
		// Which Kim is number 2: the one with a phone number shows it.
		var second string
		for _, l := range strings.Split(screen, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "2) ") {
				second = l
			}
		}
		if second == "" || !strings.Contains(screen, "1) ") {
			t.Fatalf("no numbered list on the terminal:\n%s", screen)
		}
		want := [2]int32{before[0] + 1, before[1]}
		if strings.Contains(second, "+46812345") {
			want = [2]int32{before[0], before[1] + 1}
		}
		if code != exitRejected || rang() != want {
			t.Fatalf("exit %d, rang %v (was %v), want exit %d and only number 2 (%q) rung; the terminal showed:\n%s",
				code, rang(), before, exitRejected, second, screen)
		}
	})

	t.Run("enter", func(t *testing.T) {
		before := rang()
		code, screen := call(t, "\n")
		if code != exitAmbiguous || rang() != before {
			t.Fatalf("exit %d, rang %v (was %v), want exit %d and nobody rung; the terminal showed:\n%s",
				code, rang(), before, exitAmbiguous, screen)
		}
	})
}
