//go:build !irmv_no_sip

package node_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node"
)

// sippAt runs one call of a scenario from sip/testdata/sipp against n's
// SIP side and fails the test unless every step went as it expects.
func sippAt(t *testing.T, n *node.Node, scenario string, args ...string) {
	t.Helper()
	testenv.Program(t, "sipp", "sip-tester")
	sf, _ := filepath.Abs(filepath.Join("../sip/testdata/sipp", scenario))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sipp", append([]string{"127.0.0.1:" + strconv.Itoa(n.SIP().Addr().(*net.UDPAddr).Port),
		"-sf", sf, "-m", "1", "-i", "127.0.0.1", "-nostdin", "-timeout", "30s", "-timeout_error", "-recv_timeout", "10000"}, args...)...)
	cmd.Dir = t.TempDir()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sipp %s %v: %v\n%s", scenario, args, err, out)
	}
}

// INVITEs from SIP phones are authenticated: without credentials a 407;
// a wrong password, an unknown user or a user not registered here get
// 403 and no call; the registered user with its password calls.
func TestSIPpInviteAuth(t *testing.T) {
	n := sipNode(t)
	for _, u := range []string{"alice", "carol"} {
		if _, err := n.SIP().AddUser(client.SIPUser{User: u, Password: "pw-" + u}); err != nil {
			t.Fatal(err)
		}
	}
	// bob rings until the caller gives up.
	_, bobEv := startGoPhone(t, n, client.Registration{Name: "Bob Ringing", UID: "bob-ringing"},
		phone.Options{Answer: phone.AnswerAsk, Ask: func(ctx context.Context, _ phone.Incoming) bool {
			<-ctx.Done()
			return false
		}})
	find(t, n, "bob-ringing", "bob-ringing")
	sippAt(t, n, "register_stay.xml", "-s", "alice", "-au", "alice", "-ap", "pw-alice")

	callee := []string{"-s", "bob-ringing"}
	sippAt(t, n, "invite_challenged.xml", append(callee, "-key", "caller", "alice")...)
	sippAt(t, n, "invite_refused.xml", append(callee, "-key", "caller", "alice", "-au", "alice", "-ap", "wrong")...)
	sippAt(t, n, "invite_refused.xml", append(callee, "-key", "caller", "mallory", "-au", "mallory", "-ap", "pw-alice")...)
	sippAt(t, n, "invite_refused.xml", append(callee, "-key", "caller", "carol", "-au", "carol", "-ap", "pw-carol")...)
	if got := metric(t, n, `irmv_sip_invites_total{result="forbidden"}`); got != 3 {
		t.Errorf("forbidden INVITEs counted %v, want 3", got)
	}
	// Only now a call reaches bob: the refused ones placed nothing.
	sippAt(t, n, "invite_cancel.xml", append(callee, "-key", "caller", "alice", "-au", "alice", "-ap", "pw-alice")...)
	ev := bobEv.wait(t, "incoming", ofType(client.EventIncoming))
	if ev.Peer == nil || ev.Peer.Identifiers.UID != "alice" {
		t.Fatalf("bob's first call is from %+v, want alice", ev.Peer)
	}
	bobEv.wait(t, "ended", ofType(client.EventEnded))
	bobEv.mu.Lock()
	defer bobEv.mu.Unlock()
	calls := 0
	for _, ev := range bobEv.list {
		if ev.Type == client.EventIncoming {
			calls++
		}
	}
	if calls != 1 {
		t.Errorf("bob got %d calls, want 1", calls)
	}
	if got := metric(t, n, `irmv_sip_invites_total{result="authorized"}`); got != 1 {
		t.Errorf("authorized INVITEs counted %v, want 1", got)
	}
}

// A SIP phone that sends 100 Trying but answers only after the node's
// answer timeout (5 s) is still rung: its call ends with its answer (busy
// here), not as unavailable, and its line stays for the next call.
func TestSIPpSlowAnswer(t *testing.T) {
	n := sipNode(t)
	if _, err := n.SIP().AddUser(client.SIPUser{User: "slowpoke", Password: "pw-slow"}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.LocalAddr().(*net.UDPAddr).Port)
	ln.Close()
	sippAt(t, n, "register_stay.xml", "-s", "slowpoke", "-au", "slowpoke", "-ap", "pw-slow", "-p", port)
	sf, _ := filepath.Abs("../sip/testdata/sipp/slow_answer.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	uas := exec.CommandContext(ctx, "sipp", "-sf", sf, "-p", port, "-i", "127.0.0.1", "-m", "2", "-nostdin", "-timeout", "60s", "-timeout_error")
	uas.Dir = t.TempDir()
	var out testenv.SyncBuffer
	uas.Stdout, uas.Stderr = &out, &out
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	defer uas.Wait()
	defer cancel()

	caller, _ := startGoPhone(t, n, client.Registration{Name: "Patient", UID: "patient"}, phone.Options{})
	res := find(t, n, "slowpoke", "slowpoke")
	for i := range 2 {
		start := time.Now()
		_, err := caller.Call(ctx, res, phone.CallOptions{})
		if !errors.Is(err, phone.ErrBusy) {
			t.Fatalf("call %d to the slow SIP phone: %v after %v, want busy\nsipp:\n%s", i+1, err, time.Since(start), out.String())
		}
		t.Logf("call %d: busy after %v", i+1, time.Since(start))
	}
	if err := uas.Wait(); err != nil {
		t.Errorf("sipp slow_answer.xml: %v\n%s", err, out.String())
	}
}
