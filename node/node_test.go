package node_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
	"go.uber.org/goleak"
)

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

func TestChainFindsEachOther(t *testing.T) {
	nodes := nodetest.Chain(t, 3, nil)
	// Each node learns the others through the DHT, not just its bootstrap.
	for _, n := range nodes {
		nodetest.WaitFor(t, "routing table of "+n.ID().String(), func() bool {
			return n.DHT().RoutingTable().Size() == len(nodes)-1
		})
	}
	var info client.NodeInfo
	if code := getJSON(t, nodes[0].APIURL()+"/v1/node", &info); code != 200 {
		t.Fatalf("/v1/node: %d", code)
	}
	if info.PeerID != nodes[0].ID().String() || info.RoutingTable != 2 {
		t.Fatalf("info = %+v", info)
	}
	for _, a := range info.Addrs {
		if !strings.HasSuffix(a, "/p2p/"+info.PeerID) {
			t.Errorf("addr %q does not end in /p2p/<peer-id>", a)
		}
	}
	nodetest.WaitFor(t, "node 0 connected to node 2", func() bool {
		getJSON(t, nodes[0].APIURL()+"/v1/node", &info)
		return slices.Contains(info.Peers, nodes[2].ID().String())
	})
}

// TestBucketSizeByProfile: a server keeps 40 peers per bucket and stores
// its records on the 40 closest nodes, an access point 20.
func TestBucketSizeByProfile(t *testing.T) {
	nodes := nodetest.Chain(t, 2, func(i int, o *node.Options) {
		if i == 1 {
			o.Profile = "ap"
		}
	})
	if got := nodes[0].DHT().BucketSize(); got != 40 {
		t.Errorf("server: k = %d, want 40", got)
	}
	if got := nodes[1].DHT().BucketSize(); got != 20 {
		t.Errorf("ap: k = %d, want 20", got)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	n := nodetest.Start(t, nodetest.Options(t))
	if code := getJSON(t, n.APIURL()+"/healthz", nil); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	resp, err := http.Get(n.APIURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"libp2p_", "go_goroutines"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var e map[string]string
	if code := getJSON(t, n.APIURL()+"/v1/nope", &e); code != 404 || e["error"] == "" {
		t.Errorf("unknown endpoint: %d %v", code, e)
	}
}

func TestRestartKeepsIdentity(t *testing.T) {
	o := nodetest.Options(t)
	n1, err := node.New(o)
	if err != nil {
		t.Fatal(err)
	}
	id := n1.ID()
	n1.Close()
	n2 := nodetest.Start(t, o)
	if n2.ID() != id {
		t.Fatalf("peer ID changed across restart: %s -> %s", id, n2.ID())
	}
	fi, err := os.Stat(filepath.Join(o.DataDir, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("identity.key mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestCorruptIdentityIsAnError(t *testing.T) {
	o := nodetest.Options(t)
	if err := os.WriteFile(filepath.Join(o.DataDir, "identity.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := node.New(o)
	if !errors.Is(err, node.ErrBadIdentity) {
		t.Fatalf("New with corrupt key: %v, want ErrBadIdentity", err)
	}
	data, _ := os.ReadFile(filepath.Join(o.DataDir, "identity.key"))
	if string(data) != "garbage" {
		t.Fatal("corrupt key was overwritten")
	}
}

func TestBadOptions(t *testing.T) {
	for name, mut := range map[string]func(*node.Options){
		"no data dir":   func(o *node.Options) { o.DataDir = "" },
		"bad bootstrap": func(o *node.Options) { o.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} },
		"bad profile":   func(o *node.Options) { o.Profile = "huge" },
		// A negative interval used to panic the publisher's ticker.
		"negative republish": func(o *node.Options) { o.RepublishInterval = -time.Minute },
		"negative validity":  func(o *node.Options) { o.ProvideValidity = -time.Minute },
		"negative ttl":       func(o *node.Options) { o.TerminalTTL = -time.Minute },
		"negative wan check": func(o *node.Options) { o.WANCheck = -time.Minute },
		// Checks that find no peer to ask end at once: the loop would spin.
		"wan check under a second": func(o *node.Options) { o.WANCheck = time.Millisecond },
		"turn ports reversed":      func(o *node.Options) { o.TURNPorts = "50000-40000" },
		// Checked while TURN or SIP (off in nodetest's options) is off.
		"turn ports with turn off": func(o *node.Options) { o.TURN, o.TURNPorts = "off", "50000-40000" },
		"turn ports not a range":   func(o *node.Options) { o.TURNPorts = "49152" },
		"turn ports trailing":      func(o *node.Options) { o.TURNPorts = "49152-49407x" },
		"turn ports too high":      func(o *node.Options) { o.TURNPorts = "60000-70000" },
		"sip digest unknown":       func(o *node.Options) { o.SIPDigest = []string{"SHA-1"} },
	} {
		t.Run(name, func(t *testing.T) {
			o := nodetest.Options(t)
			mut(&o)
			if _, err := node.New(o); !errors.Is(err, node.ErrBadOptions) {
				t.Fatalf("err = %v, want ErrBadOptions", err)
			}
		})
	}
}

func TestCloseLeaksNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		// Process-wide workers started once by libraries, not per node.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"),
	)
	o := nodetest.Options(t)
	a, err := node.New(o)
	if err != nil {
		t.Fatal(err)
	}
	o2 := nodetest.Options(t)
	o2.Bootstrap = []string{nodetest.LoopbackAddr(t, a)}
	b, err := node.New(o2)
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "routing table", func() bool { return b.DHT().RoutingTable().Size() == 1 })
	if err := b.Close(); err != nil {
		t.Errorf("close b: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("close a: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
