package node_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/irmv/irmv/node/nodetest"
)

// BenchmarkAPIConnFlood: one LAN client opens b.N connections to an
// `irmv node --profile ap` whose API listens on the LAN address, sends one
// request on each and holds every one the node answers and keeps open
// (idle keep-alive connections). It reports the node process's RSS and open descriptors
// afterwards and how many connections it kept. Run under
// scripts/netns-run (the LAN address); -benchtime 12000x is the flood.
func BenchmarkAPIConnFlood(b *testing.B) {
	bin := nodetest.Binary(b)
	ln, err := net.Listen("tcp", lanAddr+":0")
	if err != nil {
		b.Fatalf("cannot listen on %s (%v): run under scripts/netns-run", lanAddr, err)
	}
	api := ln.Addr().String()
	ln.Close()
	cmd := startAPNode(b, bin, api)
	rss0, fds0 := procStats(b, cmd.Process.Pid)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	refused := 0
	b.ResetTimer()
	for range b.N {
		c, err := net.DialTimeout("tcp", api, 10*time.Second)
		if err != nil {
			refused++
			continue
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", api)
		// Answered and left open (a 429 that keeps the connection counts
		// as held: the client may idle on it).
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.Close {
			refused++
			c.Close()
			continue
		}
		resp.Body.Close()
		held = append(held, c)
	}
	b.StopTimer()
	rss, fds := procStats(b, cmd.Process.Pid)
	b.ReportMetric(float64(len(held)), "held")
	b.ReportMetric(float64(refused), "refused")
	b.ReportMetric(rss0, "RSS-MB-before")
	b.ReportMetric(rss, "RSS-MB")
	b.ReportMetric(float64(fds0), "fds-before")
	b.ReportMetric(float64(fds), "fds")
}

// startAPNode starts `irmv node --profile ap` with its API on api (and
// the flags in extra), waits until it answers, and kills it when b ends.
func startAPNode(b *testing.B, bin, api string, extra ...string) *exec.Cmd {
	b.Helper()
	args := append([]string{"node", "--data-dir", b.TempDir(), "--listen", "/ip4/127.0.0.1/tcp/0",
		"--api", api, "--profile", "ap", "--mdns=false", "--turn", "off", "--log-level", "error"}, extra...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + api + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("node did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling a process start
	}
	http.DefaultClient.CloseIdleConnections()
	return cmd
}

// procStats is a process's resident memory (MB) and open descriptors.
func procStats(b *testing.B, pid int) (rssMB float64, fds int) {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			rssMB = kb / 1024
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		b.Fatal(err)
	}
	return rssMB, len(ents)
}
