package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/internal/testenv"
	"github.com/irmv/irmv/node/nodetest"
)

func freeLoopbackPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return ln.Addr().String()
}

// irmvNode is an `irmv node` process.
type irmvNode struct {
	cmd *exec.Cmd
	api string
	log *testenv.SyncBuffer
}

func startIrmvNode(t *testing.T, bin, dataDir, api string) *irmvNode {
	t.Helper()
	cmd := exec.Command(bin, "node", "--data-dir", dataDir, "--listen", "/ip4/127.0.0.1/tcp/0",
		"--api", api, "--mdns=false", "--turn", "off", "--log-level", "warn")
	log := &testenv.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &irmvNode{cmd: cmd, api: "http://" + api, log: log}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.api + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("irmv node did not come up: %v\n%s", err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *irmvNode) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

// TestKill9Node SIGKILLs a running `irmv node` at random moments while
// terminals register through its API, five times, and checks after each
// restart that every registration it acknowledged (201) is still there.
// Then a second node joins and finds, through the DHT, a terminal
// registered before the kills: the restarted node republishes.
func TestKill9Node(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	bin := nodetest.Binary(t)
	dataDir := t.TempDir()
	api := freeLoopbackPort(t)
	acked := map[string]string{} // handle → uid
	var mu sync.Mutex
	cl := &http.Client{Timeout: 10 * time.Second}
	for round := range 5 {
		p := startIrmvNode(t, bin, dataDir, api)
		if round > 0 {
			checkListed(t, p.api, acked)
		}
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					uid := fmt.Sprintf("k9-%d-%d-%d", round, w, i)
					body := fmt.Sprintf(`{"name":"Kill Nine %d %d %d","uid":%q,"address":"10.99.0.%d"}`, round, w, i, uid, i%250+1)
					resp, err := cl.Post(p.api+"/v1/terminals", "application/json", strings.NewReader(body))
					if err != nil {
						return // killed
					}
					var ack client.Ack
					err = json.NewDecoder(resp.Body).Decode(&ack)
					resp.Body.Close()
					if resp.StatusCode == http.StatusCreated && err == nil {
						mu.Lock()
						acked[ack.Terminal] = uid
						mu.Unlock()
					}
				}
			})
		}
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond)
		p.kill()
		stop()
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: killed with %d registrations acknowledged so far", round, len(acked))
		mu.Unlock()
	}
	p := startIrmvNode(t, bin, dataDir, api)
	checkListed(t, p.api, acked)
	if len(acked) == 0 {
		t.Fatal("no registration was acknowledged before the kills")
	}

	// A fresh node joins the restarted one. Nothing was announced before
	// (the node was alone), so finding a terminal proves republishing.
	var info client.NodeInfo
	if code := getJSON(t, p.api+"/v1/node", &info); code != 200 {
		t.Fatalf("/v1/node: %d", code)
	}
	var boot string
	for _, a := range info.Addrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			boot = a
		}
	}
	o := nodetest.Options(t)
	o.Bootstrap = []string{boot}
	second := nodetest.Start(t, o)
	var uid string
	for _, u := range acked {
		if strings.HasPrefix(u, "k9-0-") {
			uid = u
			break
		}
	}
	if uid == "" {
		for _, u := range acked {
			uid = u
			break
		}
	}
	nodetest.WaitFor(t, "terminal "+uid+" found through the DHT", func() bool {
		ch, err := second.Search().Search(context.Background(), client.Query{Text: "uid:" + uid, Via: client.ViaDHT, Limit: 1, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for r := range ch {
			if r.Identifiers.UID == uid && r.Node == info.PeerID {
				n++
			}
		}
		return n > 0
	})
	provides := metricLinesURL(t, p.api, `irmv_dht_provides_total{outcome="ok"}`)
	t.Logf("after restart: %v", provides)
	if len(provides) == 0 || strings.HasSuffix(provides[0], " 0") {
		t.Errorf("restarted node announced nothing: %v", provides)
	}
}

// checkListed fails unless every acknowledged handle is listed.
func checkListed(t *testing.T, api string, acked map[string]string) {
	t.Helper()
	var list struct {
		Terminals []client.Terminal `json:"terminals"`
	}
	if code := getJSON(t, api+"/v1/terminals", &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	have := map[string]string{}
	for _, tm := range list.Terminals {
		have[tm.Terminal] = tm.Identifiers.UID
	}
	lost := 0
	for h, uid := range acked {
		if have[h] != uid {
			lost++
			if lost < 5 {
				t.Errorf("acknowledged terminal %s (%s) lost", h, uid)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged registrations lost", lost, len(acked))
	}
	t.Logf("all %d acknowledged registrations listed (%d in total)", len(acked), len(have))
}

func metricLinesURL(t *testing.T, api, prefix string) []string {
	t.Helper()
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	var out []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
