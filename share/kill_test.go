package share_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/share"
)

const (
	helperEnv  = "IRMV_SHARE_HELPER_DB"
	helperKey  = "IRMV_SHARE_HELPER_KEY"
	helperN    = 200
	killAfterN = 100
)

// TestHelperProcess is not a test: TestKill9 runs the test binary again
// with this test selected and helperEnv set. It registers helperN
// terminals concurrently and prints each handle once Register returned,
// then waits to be killed.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestKill9")
	}
	raw, err := hex.DecodeString(os.Getenv(helperKey))
	if err != nil {
		fail(err)
	}
	key, err := crypto.UnmarshalPrivateKey(raw)
	if err != nil {
		fail(err)
	}
	norm, _ := ident.NewNormalizer("DE")
	r, err := share.Open(share.Options{Path: path, NodeKey: key, Normalizer: norm})
	if err != nil {
		fail(err)
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	next := make(chan int)
	for range 64 {
		wg.Go(func() {
			for i := range next {
				ack, err := r.Register(client.Registration{Name: fmt.Sprintf("Kill Nine %d", i), UID: fmt.Sprintf("k9-%d", i)})
				if err != nil {
					fail(err)
				}
				mu.Lock()
				fmt.Fprintln(os.Stdout, ack.Terminal) // unbuffered: a write(2) per ack
				mu.Unlock()
			}
		})
	}
	for i := range helperN {
		next <- i
	}
	close(next)
	wg.Wait()
	time.Sleep(time.Minute) // wait for the kill
	os.Exit(0)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "helper:", err)
	os.Exit(3)
}

// TestKill9 kills a process registering terminals with SIGKILL and checks
// that every registration it acknowledged is in the database.
func TestKill9(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL")
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "share.db")
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path, helperKey+"="+hex.EncodeToString(raw))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()

	var acked []string
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		acked = append(acked, sc.Text())
		if len(acked) == killAfterN && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if len(acked) < killAfterN {
		t.Fatalf("helper acknowledged only %d registrations: %v", len(acked), err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die of SIGKILL: %v", err)
	}
	t.Logf("helper acknowledged %d of %d registrations before SIGKILL", len(acked), helperN)

	norm, _ := ident.NewNormalizer("DE")
	r, err := share.Open(share.Options{Path: path, NodeKey: key, Normalizer: norm})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, h := range acked {
		if _, err := r.Get(h); err != nil {
			t.Errorf("acknowledged terminal lost: %v", err)
		}
	}
	if r.Count() < len(acked) {
		t.Errorf("Count = %d < %d acknowledged", r.Count(), len(acked))
	}
}
