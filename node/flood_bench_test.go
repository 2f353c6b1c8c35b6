package node_test

import (
	"bufio"
	"fmt"
	"io"
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

// BenchmarkAPIHeaderFlood: one LAN client opens b.N connections (64 are
// held at most) to an `irmv node --profile ap` and sends on each a
// request whose headers grow to 1 MiB and never end, and waits until the
// node closed each. It reports the node's peak RSS (VmHWM). Run under
// scripts/netns-run; -benchtime 64x is one client's connections.
func BenchmarkAPIHeaderFlood(b *testing.B) {
	bin := nodetest.Binary(b)
	ln, err := net.Listen("tcp", lanAddr+":0")
	if err != nil {
		b.Fatalf("cannot listen on %s (%v): run under scripts/netns-run", lanAddr, err)
	}
	api := ln.Addr().String()
	ln.Close()
	cmd := startAPNode(b, bin, api)
	rss0, _ := procStats(b, cmd.Process.Pid)
	pad := []byte(strings.Repeat("a", 64<<10))
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	b.ResetTimer()
	for range b.N {
		c, err := net.DialTimeout("tcp", api, 10*time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Pad: ", api)
		conns = append(conns, c)
	}
	// 1 MiB on each, a slice at a time; the node may refuse and close.
	sent := 0
	for range 16 {
		for _, c := range conns {
			n, _ := c.Write(pad)
			sent += n
		}
	}
	// The node has read it all once it answered or closed each one
	// (431, or its 10 s header timeout).
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		io.Copy(io.Discard, c)
	}
	b.StopTimer()
	b.ReportMetric(float64(sent)/float64(max(len(conns), 1))/(1<<20), "MiB-sent/conn")
	b.ReportMetric(rss0, "RSS-MB-before")
	b.ReportMetric(peakRSS(b, cmd.Process.Pid), "RSS-MB-peak")
}

// peakRSS is a process's peak resident memory (VmHWM, MB).
func peakRSS(b *testing.B, pid int) float64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
