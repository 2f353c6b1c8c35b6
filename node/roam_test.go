package node_test

import (
	"bufio"
	"encoding/json"
	"github.com/irmv/irmv/internal/testenv"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// procNode is an `irmv node` process joined to others.
type procNode struct {
	cmd  *exec.Cmd
	api  string // http://…
	id   string // peer ID
	boot string // loopback TCP multiaddr with /p2p/
	log  *testenv.SyncBuffer
}

// startProcNode starts `irmv node` with its data in dataDir, bootstrapping
// from boot (may be empty); the test's cleanup kills it.
func startProcNode(t *testing.T, bin, dataDir, api string, boot ...string) *procNode {
	t.Helper()
	args := []string{"node", "--data-dir", dataDir, "--listen", "/ip4/127.0.0.1/tcp/0",
		"--api", api, "--mdns=false", "--turn", "off", "--log-level", "info"}
	for _, b := range boot {
		args = append(args, "--bootstrap", b)
	}
	p := &procNode{cmd: exec.Command(bin, args...), api: "http://" + api, log: &testenv.SyncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	nodetest.WaitFor(t, "node "+api+" up", func() bool {
		resp, err := http.Get(p.api + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	var info client.NodeInfo
	getJSON(t, p.api+"/v1/node", &info)
	p.id = info.PeerID
	for _, a := range info.Addrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			p.boot = a
		}
	}
	if len(boot) > 0 {
		nodetest.WaitFor(t, "node "+api+" joined", func() bool {
			getJSON(t, p.api+"/v1/node", &info)
			return info.RoutingTable > 0
		})
	}
	return p
}

func (p *procNode) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// procPhone is an `irmv phone --json` process.
type procPhone struct {
	cmd    *exec.Cmd
	events chan map[string]any
	stderr *testenv.SyncBuffer
	exited chan struct{}
	first  map[string]any // the first "registered" event
}

func startProcPhone(t *testing.T, bin string, args ...string) *procPhone {
	t.Helper()
	args = append([]string{"phone", "--json", "--answer", "auto", "--log-level", "info"}, args...)
	p := &procPhone{cmd: exec.Command(bin, args...), events: make(chan map[string]any, 1000), stderr: &testenv.SyncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	// A process group of its own: when the test's group is orphaned (its
	// runner's shell gone) and a process of it exits while the phone is
	// stopped (SIGSTOP), the kernel sends the group SIGHUP, of which the
	// phone would die. It still dies with the test (Ctrl-C, a timeout).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.events <- e
			}
		}
		p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.signal(syscall.SIGKILL) })
	p.first = p.waitEvent(t, "registered")
	return p
}

func (p *procPhone) signal(sig os.Signal) {
	select {
	case <-p.exited:
	default:
		p.cmd.Process.Signal(sig)
		<-p.exited
	}
}

// waitEvent waits for the next event of type typ, skipping others.
func (p *procPhone) waitEvent(t *testing.T, typ string) map[string]any {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case e := <-p.events:
			if e["type"] == typ {
				return e
			}
		case <-p.exited:
			t.Fatalf("phone exited waiting for %q: %v\n%s", typ, p.cmd.ProcessState, p.stderr.String())
		case <-deadline:
			t.Fatalf("no %q event from the phone\n%s", typ, p.stderr.String())
		}
	}
}

// searchAt runs a search through a node's API.
func searchAt(t *testing.T, api, q string) []client.Result {
	t.Helper()
	resp, err := http.Get(api + "/v1/search?timeout=1s&q=" + url.QueryEscape(q))
	if err != nil {
		t.Fatalf("search at %s: %v", api, err)
	}
	defer resp.Body.Close()
	var out []client.Result
	dec := json.NewDecoder(resp.Body)
	for {
		var r client.Result
		if dec.Decode(&r) != nil {
			return out
		}
		out = append(out, r)
	}
}

// onlyAt reports whether searches at every node, started together, find
// the terminal once, at node want.
func onlyAt(t *testing.T, nodes []*procNode, q string, want *procNode) bool {
	ok := make(chan bool, len(nodes))
	for _, n := range nodes {
		go func() {
			res := searchAt(t, n.api, q)
			ok <- len(res) == 1 && res[0].Node == want.id
		}()
	}
	all := true
	for range nodes {
		all = <-ok && all
	}
	return all
}

// consistentAfter waits until searches started at every node find the
// terminal only at node want, and returns how long after start the first
// such round of searches began.
func consistentAfter(t *testing.T, start time.Time, nodes []*procNode, q string, want *procNode) time.Duration {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		began := time.Now()
		if onlyAt(t, nodes, q, want) {
			return began.Sub(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("searches never found the terminal only at %s", want.api)
		}
	}
}

// TestRoamingPhone moves an `irmv phone` between `irmv node` processes:
// following its --node-file, after kill -9 and a restart elsewhere, and as
// a second phone with the same key. Each time searches at every node
// (the third one included) find only the newest registration, the old
// node withdraws its own, and a call placed right after the move rings at
// the new node.
func TestRoamingPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := nodetest.Binary(t)
	dir := t.TempDir()
	top := t // phones outlive subtests
	a := startProcNode(t, bin, filepath.Join(dir, "a"), freeLoopbackPort(t))
	b := startProcNode(t, bin, filepath.Join(dir, "b"), freeLoopbackPort(t), a.boot)
	c := startProcNode(t, bin, filepath.Join(dir, "c"), freeLoopbackPort(t), b.boot)
	nodes := []*procNode{a, b, c}
	key := filepath.Join(dir, "walker.key")
	nodeFile := filepath.Join(dir, "node")
	if err := os.WriteFile(nodeFile, []byte(a.api+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const q = "uid:walker-1"

	ph := startProcPhone(t, bin, "--uid", "walker-1", "--name", "Walker", "--key", key, "--node-file", nodeFile)
	nodetest.WaitFor(t, "the phone found at a from every node", func() bool { return onlyAt(t, nodes, q, a) })

	t.Run("node file", func(t *testing.T) {
		start := time.Now()
		if err := os.WriteFile(nodeFile, []byte(b.api+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ph.waitEvent(t, "moved")
		t.Logf("searches everywhere consistent %v after the node file changed", consistentAfter(t, start, nodes, q, b))
		var list struct{ Terminals []json.RawMessage }
		getJSON(t, a.api+"/v1/terminals", &list)
		if len(list.Terminals) != 0 {
			t.Errorf("node a still hosts %d terminals", len(list.Terminals))
		}
		call := exec.Command(bin, "call", "--node", c.api, "--json", "--hangup-after", "1s", "--timeout", "5s", q)
		out, err := call.CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"connected"`) {
			t.Fatalf("call after the move: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), b.id) {
			t.Errorf("the call did not go to node b:\n%s", out)
		}
	})

	t.Run("call during a move", func(t *testing.T) {
		// A call from c goes on while the phone moves from b back to a:
		// the caller sees the route change, not the end.
		nodetest.WaitFor(t, "the phone done with the last call", func() bool { return statusAt(t, c.api, q) == "online" })
		call := exec.Command(bin, "call", "--node", c.api, "--json", "--hangup-after", "6s", "--timeout", "5s", q)
		stdout, err := call.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := call.Start(); err != nil {
			t.Fatal(err)
		}
		events := make(chan map[string]any, 100)
		go func() {
			defer close(events)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var e map[string]any
				if json.Unmarshal(sc.Bytes(), &e) == nil {
					events <- e
				}
			}
		}()
		next := func(typ string) map[string]any {
			t.Helper()
			for e := range events {
				if e["type"] == "ended" && typ != "ended" {
					t.Fatalf("the call ended waiting for %q: %v", typ, e)
				}
				if e["type"] == typ {
					return e
				}
			}
			t.Fatalf("irmv call exited before %q", typ)
			return nil
		}
		next("connected")
		if err := os.WriteFile(nodeFile, []byte(a.api+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		ph.waitEvent(t, "moved")
		if e := next("route"); e["reason"] != "moved" {
			t.Errorf("route event %v, want reason moved", e)
		}
		if e := next("ended"); e["reason"] != "hangup" {
			t.Errorf("call ended: %v, want the caller's hangup", e)
		}
		for range events {
		}
		if err := call.Wait(); err != nil {
			t.Errorf("irmv call: %v", err)
		}
		nodetest.WaitFor(t, "only a's registration found from every node", func() bool { return onlyAt(t, nodes, q, a) })
	})

	t.Run("kill -9 and start elsewhere", func(t *testing.T) {
		ph.signal(syscall.SIGKILL)
		// a keeps the dead phone's record (shown offline); the same key
		// started at c outranks it.
		start := time.Now()
		ph = startProcPhone(top, bin, "--uid", "walker-1", "--name", "Walker", "--key", key, "--node", c.api)
		t.Logf("searches everywhere consistent %v after the phone started", consistentAfter(t, start, nodes, q, c))
		var list struct{ Terminals []json.RawMessage }
		getJSON(t, a.api+"/v1/terminals", &list)
		if len(list.Terminals) != 0 {
			t.Errorf("node a still hosts %d terminals", len(list.Terminals))
		}
	})

	t.Run("two at once", func(t *testing.T) {
		start := time.Now()
		second := startProcPhone(top, bin, "--uid", "walker-1", "--name", "Walker", "--key", key, "--node", a.api)
		ph.waitEvent(t, "superseded")
		select {
		case <-ph.exited:
		case <-time.After(30 * time.Second):
			t.Fatal("the superseded phone did not stop")
		}
		if code := ph.cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(ph.stderr.String(), "registered at another node") {
			t.Errorf("superseded phone: exit %d\n%s", code, ph.stderr.String())
		}
		t.Logf("searches everywhere consistent %v after the second phone started", consistentAfter(t, start, nodes, q, a))
		select {
		case <-second.exited:
			t.Fatalf("the newer phone stopped too\n%s", second.stderr.String())
		default:
		}

		// A clean stop (Ctrl-C) removes the registration: no node finds it.
		second.signal(syscall.SIGINT)
		if code := second.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("Ctrl-C: exit %d\n%s", code, second.stderr.String())
		}
		for _, n := range nodes {
			if res := searchAt(t, n.api, q); len(res) != 0 {
				t.Errorf("after a clean stop, node %s still finds %+v", n.api, res)
			}
		}
	})
}

// procCall is an `irmv call --json` process and its events.
type procCall struct {
	cmd    *exec.Cmd
	events chan map[string]any
	stderr *testenv.SyncBuffer
}

func startProcCall(t *testing.T, bin, api, q string, args ...string) *procCall {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"call", "--node", api, "--json", "--timeout", "5s", "--log-level", "info", q}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &procCall{cmd: cmd, events: make(chan map[string]any, 100), stderr: &testenv.SyncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	go func() {
		defer close(p.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.events <- e
			}
		}
	}()
	return p
}

// next returns the call's next event of type typ; an earlier end fails.
func (p *procCall) next(t *testing.T, typ string) map[string]any {
	t.Helper()
	for e := range p.events {
		if e["type"] == "ended" && typ != "ended" {
			t.Fatalf("the call ended waiting for %q: %v; its log:\n%s", typ, e, p.stderr.String())
		}
		if e["type"] == typ {
			return e
		}
	}
	t.Fatalf("irmv call exited before %q; its log:\n%s", typ, p.stderr.String())
	return nil
}

// wait waits for irmv call to exit 0.
func (p *procCall) wait(t *testing.T) {
	t.Helper()
	for range p.events {
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("irmv call: %v", err)
	}
}

// callExit runs `irmv call` at api and returns its exit code, how long it
// took and its output.
func callExit(t *testing.T, bin, api, q string, args ...string) (int, time.Duration, string) {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(bin, append([]string{"call", "--node", api, "--json", "--timeout", "5s", q}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("irmv call: %v", err)
		}
		code = ee.ExitCode()
	}
	return code, time.Since(start), string(out)
}

// waitStatus waits until a search at api shows the terminal with status
// want; on timeout it fails with the last status and the phone's log.
func waitStatus(t *testing.T, api, q, want string, ph *procPhone) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := statusAt(t, api, q)
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %q, want %q; the phone's log:\n%s", st, want, ph.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// statusAt is the terminal's status in a search at api ("" when not found).
func statusAt(t *testing.T, api, q string) string {
	res := searchAt(t, api, q)
	if len(res) == 0 {
		return ""
	}
	return res[0].Status.String()
}

// TestVanishingPhoneAndNode: a phone that stops answering (SIGSTOP: its
// connection stays open) or is killed -9 makes calls fail fast with
// "unavailable" (exit 5), long before the ring timeout, and is shown
// offline within the keepalive window; a status change is seen at once
// from another node; an access point killed -9 makes its terminals not
// found elsewhere, and when it restarts with its data dir a phone still
// running is back without anyone doing anything.
func TestVanishingPhoneAndNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := nodetest.Binary(t)
	dir := t.TempDir()
	aAPI := freeLoopbackPort(t)
	a := startProcNode(t, bin, filepath.Join(dir, "a"), aAPI)
	b := startProcNode(t, bin, filepath.Join(dir, "b"), freeLoopbackPort(t), a.boot)
	const q = "uid:fades-1"
	ph := startProcPhone(t, bin, "--uid", "fades-1", "--key", filepath.Join(dir, "fades.key"), "--node", a.api)
	reg := ph.first
	nodetest.WaitFor(t, "the phone found from b", func() bool { return statusAt(t, b.api, q) == "online" })

	// Presence: a status change at a is what b's next search shows.
	term := reg["self"].(map[string]any)["terminal"].(string)
	req, _ := http.NewRequest("PUT", a.api+"/v1/terminals/"+term+"/status", strings.NewReader(`{"status":"idle"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	changed := time.Now()
	if st := statusAt(t, b.api, q); st != "idle" {
		t.Errorf("status at b right after the change: %q, want idle", st)
	}
	t.Logf("status change seen from b %v after it was made (one search)", time.Since(changed))

	// Frozen: the connection stays open, nothing answers.
	ph.cmd.Process.Signal(syscall.SIGSTOP)
	code, took, out := callExit(t, bin, b.api, q, "--ring-timeout", "60s")
	if code != 5 || !strings.Contains(out, "does not respond") {
		t.Errorf("call to a frozen phone: exit %d after %v\n%s", code, took, out)
	}
	t.Logf("call to a frozen phone: unavailable after %v", took)
	ph.cmd.Process.Signal(syscall.SIGCONT)
	ph.waitEvent(t, "registered") // it reconnects: the node dropped its connection
	waitStatus(t, b.api, q, "idle", ph)

	// Killed: the node sees the connection close.
	ph.signal(syscall.SIGKILL)
	killed := time.Now()
	code, took, out = callExit(t, bin, b.api, q, "--ring-timeout", "60s")
	if code != 5 {
		t.Errorf("call to a killed phone: exit %d after %v\n%s", code, took, out)
	}
	t.Logf("call to a killed phone: unavailable after %v", took)
	nodetest.WaitFor(t, "the killed phone shown offline", func() bool { return statusAt(t, b.api, q) == "offline" })
	t.Logf("killed phone shown offline from b %v after the kill", time.Since(killed))

	// The access point dies under a running phone, and comes back.
	ph = startProcPhone(t, bin, "--uid", "fades-1", "--key", filepath.Join(dir, "fades.key"), "--node", a.api)
	nodetest.WaitFor(t, "the new phone online", func() bool { return statusAt(t, b.api, q) == "online" })
	a.kill()
	died := time.Now()
	nodetest.WaitFor(t, "the phone of the dead node not found", func() bool { return statusAt(t, b.api, q) == "" })
	t.Logf("phone of a killed node not found from b %v after the kill", time.Since(died))
	a = startProcNode(t, bin, filepath.Join(dir, "a"), aAPI, b.boot)
	restarted := time.Now()
	nodetest.WaitFor(t, "the phone back after its node restarted", func() bool { return statusAt(t, b.api, q) == "online" })
	t.Logf("phone found online again %v after its node restarted", time.Since(restarted))
	if code, _, out := callExit(t, bin, b.api, q, "--hangup-after", "1s"); code != 0 {
		t.Errorf("call after the node restarted: exit %d\n%s", code, out)
	}
}

// TestPhoneFailover: an `irmv phone` given two nodes registers at the
// second when its node is killed -9, its call from another node going on,
// and is found and called there from a third node; a phone whose
// --node-file lists two nodes does the same.
func TestPhoneFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	bin := nodetest.Binary(t)
	dir := t.TempDir()
	a := startProcNode(t, bin, filepath.Join(dir, "a"), freeLoopbackPort(t))
	b := startProcNode(t, bin, filepath.Join(dir, "b"), freeLoopbackPort(t), a.boot)
	c := startProcNode(t, bin, filepath.Join(dir, "c"), freeLoopbackPort(t), b.boot)
	d := startProcNode(t, bin, filepath.Join(dir, "d"), freeLoopbackPort(t), b.boot)
	nodeFile := filepath.Join(dir, "nodes")
	if err := os.WriteFile(nodeFile, []byte(c.api+"\n"+d.api+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--node", a.api, "--node", b.api, "--failover-after", "1s"}
	viaFile := []string{"--node-file", nodeFile, "--failover-after", "1s"}
	phones := map[string]*procPhone{
		"uid:failover-1": startProcPhone(t, bin, append([]string{"--uid", "failover-1", "--key", filepath.Join(dir, "1.key")}, flags...)...),
		"uid:failover-2": startProcPhone(t, bin, append([]string{"--uid", "failover-2", "--key", filepath.Join(dir, "2.key")}, viaFile...)...),
	}
	t.Cleanup(func() {
		if t.Failed() {
			for q, ph := range phones {
				t.Logf("the phone %s's log:\n%s", q, ph.stderr.String())
			}
		}
	})
	nodetest.WaitFor(t, "the phones found at their first nodes", func() bool {
		return onlyAt(t, []*procNode{b, c, d}, "uid:failover-1", a) && onlyAt(t, []*procNode{a, b, d}, "uid:failover-2", c)
	})

	// A call to the first phone from d goes on through the failover (and
	// after the caller's node gave up resuming its stream to a).
	call := startProcCall(t, bin, d.api, "uid:failover-1", "--hangup-after", "14s")
	call.next(t, "connected")

	a.kill()
	c.kill()
	killed := time.Now()
	for q, ph := range phones {
		ph.waitEvent(t, "moved")
		t.Logf("%s registered at its next node %v after the kill", q, time.Since(killed))
	}
	if e := call.next(t, "route"); e["reason"] != "moved" {
		t.Errorf("route event %v, want reason moved", e)
	}
	t.Logf("the caller's route event %v after the kill", time.Since(killed))
	// Busy at its next node too, even when the kill came as the call
	// connected and the first node never showed it busy.
	nodetest.WaitFor(t, "uid:failover-1 busy at its next node during the call", func() bool {
		return statusAt(t, d.api, "uid:failover-1") == "busy"
	})
	if e := call.next(t, "ended"); e["reason"] != "hangup" {
		t.Errorf("call ended: %v, want the caller's hangup", e)
	}
	call.wait(t)
	nodetest.WaitFor(t, "each phone found at its next node", func() bool {
		return onlyAt(t, []*procNode{b, d}, "uid:failover-1", b) && onlyAt(t, []*procNode{b, d}, "uid:failover-2", d)
	})
	for q, caller := range map[string]*procNode{"uid:failover-1": d, "uid:failover-2": b} {
		// The first phone shows busy until it has seen the hangup.
		nodetest.WaitFor(t, q+" done with the last call", func() bool { return statusAt(t, caller.api, q) == "online" })
		if code, _, out := callExit(t, bin, caller.api, q, "--hangup-after", "1s"); code != 0 {
			t.Errorf("call to %s after the failover: exit %d\n%s", q, code, out)
		}
	}
}
