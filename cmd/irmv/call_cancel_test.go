package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/call/media"
	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node/nodetest"
)

// TestCallCancelledWhileRinging: Ctrl-C (the context ending) while the
// callee rings gives up the call, tells the callee, and exits 130, not
// "no answer".
func TestCallCancelledWhileRinging(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	cl, err := client.New(n.APIURL(), "")
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{}, 1)
	gaveUp := make(chan struct{}, 1)
	callee, err := phone.Start(context.Background(), phone.Options{
		Client:        cl,
		Registration:  client.Registration{Name: "Ringing Callee", UID: "ringing-callee"},
		Answer:        phone.AnswerAsk,
		SettingEngine: media.LoopbackSettingEngine(),
		Ask: func(ctx context.Context, _ phone.Incoming) bool {
			asked <- struct{}{}
			<-ctx.Done() // never picks up
			gaveUp <- struct{}{}
			return false
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "callee", callee)

	var out, errw testenv.SyncBuffer
	app := newApp()
	app.Writer, app.ErrWriter = &out, &errw
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- app.RunContext(ctx, []string{"irmv", "call", "--node", n.APIURL(), "--json", "--ring-timeout", "2m", "uid:ringing-callee"})
	}()
	select {
	case <-asked:
	case err := <-done:
		t.Fatalf("call ended before ringing: %v\nstdout: %s\nstderr: %s", err, out.String(), errw.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the callee was never asked\nstdout: %s\nstderr: %s", out.String(), errw.String())
	}
	// Then the caller's "ringing", which the callee's node sends on.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), `"ringing"`); {
		if time.Now().After(deadline) {
			t.Fatalf("no ringing event:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("irmv call did not return after cancel")
	}
	ec, ok := runErr.(interface{ ExitCode() int })
	if !ok || ec.ExitCode() != exitCancelled {
		t.Fatalf("exit: %v (want code %d)\nstdout: %s", runErr, exitCancelled, out.String())
	}
	select {
	case <-gaveUp:
	case <-time.After(30 * time.Second):
		t.Error("the callee still rings after the caller gave up")
	}
}
