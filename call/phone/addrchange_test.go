package phone

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/client"
)

// ownNetnsEnv marks a test process that runs in a network namespace of
// its own (see inOwnNetns).
const ownNetnsEnv = "IRMV_TEST_OWN_NETNS"

// inOwnNetns runs the test again in a new network namespace (unshare -n)
// and reports false, unless this process is that run: the test changes
// interface addresses, which must not disturb the other tests.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(ownNetnsEnv) != "" {
		return true
	}
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), ownNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), t.Name()[:4]) || strings.Contains(l, ".go:") {
			t.Log(strings.TrimSpace(l))
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || err == nil {
		if err != nil {
			t.Fatalf("in its own network namespace: %v\n%s", err, out)
		}
		return false
	}
	t.Fatalf("unshare -n (needs root or user namespaces): %v", err)
	return false
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// netEngine gathers UDP4 host candidates in the given networks only.
func netEngine(nets ...string) *webrtc.SettingEngine {
	var ns []*net.IPNet
	for _, s := range nets {
		_, n, _ := net.ParseCIDR(s)
		ns = append(ns, n)
	}
	se := &webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool {
		for _, n := range ns {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	})
	return se
}

// TestCallSurvivesAddressChange: in a network namespace of its own, the
// callee's address changes in the middle of a 20 s call (its old address
// removed, a new one added, as a phone gets from a new access point): its
// phone notices, re-registers and rejoins, the caller moves the call to a
// new leg, and the call goes on with the measured audio gap.
func TestCallSurvivesAddressChange(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 s call")
	}
	if !inOwnNetns(t) {
		return
	}
	ipCmd(t, "link", "set", "lo", "up")
	for _, d := range []struct{ dev, addr string }{{"d1", "10.98.0.1/24"}, {"d2", "10.98.1.1/24"}} {
		ipCmd(t, "link", "add", d.dev, "type", "ifb")
		ipCmd(t, "addr", "add", d.addr, "dev", d.dev)
		ipCmd(t, "link", "set", d.dev, "up")
	}
	const callFor = 20 * time.Second
	packets := int(callFor / (20 * time.Millisecond))
	nodes := startNodes(t, 2)
	evB := newEvents()
	callee := startPhone(t, nodes[0], Options{Registration: client.Registration{UID: "addr-mover"}, Answer: AnswerAuto,
		Play: numberedOgg(t, packets), WatchAddresses: true, OnEvent: evB.add,
		SettingEngine: netEngine("10.98.1.0/24", "10.98.2.0/24")})
	evA := newEvents()
	caller := startPhone(t, nodes[1], Options{Registration: client.Registration{UID: "addr-stayer"}, OnEvent: evA.add,
		SettingEngine: netEngine("10.98.0.0/24")})
	res := find(t, apiClient(t, nodes[1]), "uid:addr-mover", callee.Ack().Terminal)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rec := filepath.Join(t.TempDir(), "call.ogg")
	c, err := caller.Call(ctx, res, CallOptions{Record: rec, HangupAfter: callFor})
	if err != nil {
		t.Fatalf("Call: %v (%s)", err, evA)
	}
	evA.wait(t, client.EventConnected, c.ID())
	waitSamples(t, evA, c.ID(), 6) // the change comes in the middle of the call
	changed := time.Now()
	ipCmd(t, "addr", "del", "10.98.1.1/24", "dev", "d2")
	ipCmd(t, "addr", "add", "10.98.2.1/24", "dev", "d2")
	route := evA.wait(t, client.EventRoute, c.ID())
	t.Logf("caller's route event %v after the address change: %s → %s (%s)", route.Time.Sub(changed), route.From, route.To, route.Reason)
	if route.Reason != ReasonMoved {
		t.Errorf("route event reason %q, want %q", route.Reason, ReasonMoved)
	}
	ended := evA.wait(t, client.EventEnded, c.ID())
	if ended.Reason != "hangup" {
		t.Fatalf("call ended: %q, want the caller's hangup (%s)", ended.Reason, evA)
	}
	got, gap := gapOf(t, ended.Record)
	t.Logf("recorded %d of %d packets; longest gap %d packets (%d ms)", got, packets, gap, gap*20)
	if gap*20 > 10000 {
		t.Errorf("audio gap of %d ms", gap*20)
	}
}
