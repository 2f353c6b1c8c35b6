//go:build !irmv_no_sip

package node_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/irmv/irmv/node/nodetest"
)

// BenchmarkSIPFlood: an attacker on the LAN floods `irmv node --profile
// ap`'s SIP port. Each iteration opens one TCP connection (one-address:
// all from 127.0.0.2), holding every one the node keeps, and sends one
// INVITE without credentials over UDP from an address of its own
// (127.2.0.0/16: each a new source, never rate-limited, each challenged
// with a 407). It reports
// the node process's RSS and open descriptors before and after, and the
// TCP connections held. -benchtime 12000x is the flood.
//
// many-addresses opens the TCP connections from ever new addresses of
// 127.3.0.0/16 instead, 16 from each, until the node holds its maximum;
// partial-messages also sends 12 KiB of a message that never ends on
// each (under sip.MaxMessage), and reports the node's peak RSS once it
// has looked at every connection.
//
// udp-ports sends only the UDP INVITEs, each from a new port (64 from
// each address of 127.4.0.0/16, within the per-address rate), and
// reports also the UDP sources the SIP side keeps state for and the
// entries of sipgo's UDP pool (the node's /metrics; -1 where it has
// no such figure) and its Go heap in use.
func BenchmarkSIPFlood(b *testing.B) {
	b.Run("one-address", func(b *testing.B) { benchSIPFlood(b, false, 0) })
	b.Run("many-addresses", func(b *testing.B) { benchSIPFlood(b, true, 0) })
	b.Run("partial-messages", func(b *testing.B) { benchSIPFlood(b, true, 12<<10) })
	b.Run("udp-ports", benchSIPFloodUDP)
}

func benchSIPFloodUDP(b *testing.B) {
	bin := nodetest.Binary(b)
	api, sipAddr := freeLoopbackPort(b), freeLoopbackPort(b)
	cmd := startAPNode(b, bin, api, "--sip", sipAddr)
	rss0, fds0 := procStats(b, cmd.Process.Pid)
	heap0 := metricOf(b, api, "go_memstats_heap_inuse_bytes")
	_, port, _ := net.SplitHostPort(sipAddr)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	to.Port, _ = strconv.Atoi(port)
	b.ResetTimer()
	for i := range b.N {
		k := i / 64
		src := net.IPv4(127, 4, byte(k/250), byte(k%250+1))
		u, err := net.DialUDP("udp", &net.UDPAddr{IP: src}, to)
		if err != nil {
			b.Fatal(err)
		}
		local := u.LocalAddr().String()
		fmt.Fprintf(u, "INVITE sip:bob@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-p%d;rport\r\n"+
			"From: <sip:alice@%s>;tag=%d\r\nTo: <sip:bob@%s>\r\nCall-ID: ports-%d\r\nCSeq: 1 INVITE\r\n"+
			"Contact: <sip:alice@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", to, local, i, local, i, to, i, local)
		u.Close()
	}
	b.StopTimer()
	rss, fds := procStats(b, cmd.Process.Pid)
	b.ReportMetric(rss0, "RSS-MB-before")
	b.ReportMetric(rss, "RSS-MB")
	b.ReportMetric(float64(fds0), "fds-before")
	b.ReportMetric(float64(fds), "fds")
	b.ReportMetric(heap0/1e6, "heap-MB-before")
	b.ReportMetric(metricOf(b, api, "go_memstats_heap_inuse_bytes")/1e6, "heap-MB")
	b.ReportMetric(metricOf(b, api, "irmv_sip_udp_sources"), "udp-sources")
	b.ReportMetric(metricOf(b, api, "irmv_sip_udp_pool_entries"), "udp-pool")
}

// metricOf reads one figure of the node's /metrics (loopback: no token);
// -1 when it has none.
func metricOf(b *testing.B, api, name string) float64 {
	b.Helper()
	resp, err := http.Get("http://" + api + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	return -1
}

func benchSIPFlood(b *testing.B, manyTCP bool, pad int) {
	bin := nodetest.Binary(b)
	api, sipAddr := freeLoopbackPort(b), freeLoopbackPort(b)
	cmd := startAPNode(b, bin, api, "--sip", sipAddr)
	rss0, fds0 := procStats(b, cmd.Process.Pid)
	_, port, _ := net.SplitHostPort(sipAddr)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	to.Port, _ = strconv.Atoi(port)

	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	b.ResetTimer()
	for i := range b.N {
		from := net.IPv4(127, 0, 0, 2)
		if manyTCP {
			k := i / 16
			from = net.IPv4(127, 3, byte(k/250), byte(k%250+1))
		}
		c, err := net.DialTCP("tcp", &net.TCPAddr{IP: from}, &net.TCPAddr{IP: to.IP, Port: to.Port})
		if err == nil {
			held = append(held, c)
			if pad > 0 {
				fmt.Fprintf(c, "REGISTER sip:%s SIP/2.0\r\nX-Pad: %s", to, strings.Repeat("a", pad))
			}
		}
		if i%1000 == 999 { // let go of those the node closed (descriptors)
			held = stillOpen(held, time.Millisecond)
		}
		src := net.IPv4(127, 2, byte(i/250), byte(i%250+1))
		u, err := net.DialUDP("udp", &net.UDPAddr{IP: src}, to)
		if err != nil {
			b.Fatal(err)
		}
		local := u.LocalAddr().String()
		fmt.Fprintf(u, "INVITE sip:bob@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-f%d;rport\r\n"+
			"From: <sip:alice@%s>;tag=%d\r\nTo: <sip:bob@%s>\r\nCall-ID: flood-%d\r\nCSeq: 1 INVITE\r\n"+
			"Contact: <sip:alice@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", to, local, i, local, i, to, i, local)
		u.Close()
	}
	b.StopTimer()
	rss, fds := procStats(b, cmd.Process.Pid)
	held = stillOpen(held, 10*time.Millisecond)
	if pad > 0 {
		b.ReportMetric(peakRSS(b, cmd.Process.Pid), "RSS-MB-peak")
	}
	b.ReportMetric(float64(len(held)), "held")
	b.ReportMetric(rss0, "RSS-MB-before")
	b.ReportMetric(rss, "RSS-MB")
	b.ReportMetric(float64(fds0), "fds-before")
	b.ReportMetric(float64(fds), "fds")
}

// stillOpen keeps the connections the node has not closed (a read within
// wait times out) and closes the others.
func stillOpen(conns []net.Conn, wait time.Duration) []net.Conn {
	open := conns[:0]
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(wait))
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); errors.As(err, &ne) && ne.Timeout() {
			open = append(open, c)
		} else {
			c.Close()
		}
	}
	return open
}
