package sip

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A sender from ever new addresses and ports: each gets its answer from
// the node's SIP port, while the state kept for UDP sources (sipgo's
// pool, its read loop's set, the node's own table) stays bounded; a
// registered phone's flow stays across the read loop's generations (a
// request to the phone leaves the SIP port), and no socket is opened for
// an answer.
func TestUDPSourcesBounded(t *testing.T) {
	const rotate, keep, senders = 64, 128, 2000
	var ahead atomic.Int64 // the clock's advance
	e := newTestEnv(t, func(o *Options) {
		o.OpenNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		o.udpLimits = &[2]int{rotate, keep}
		o.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	})
	phone := newRawPhone(t, e, "127.0.0.9")
	if res := phone.register("alice", ""); res.StatusCode != 200 {
		t.Fatalf("open REGISTER: %d", res.StatusCode)
	}
	// The phone's REGISTER is older than a transaction: its flow stays
	// because it is registered.
	ahead.Store(int64(udpKeep + time.Second))
	src := e.bindingSource("alice")
	fds := openFDs(t)
	u := e.s.udpSrc.Load()
	to := e.s.Addr().(*net.UDPAddr)
	buf := make([]byte, 65535)
	for i := range senders {
		ip := net.IPv4(127, 5, byte(i/250), byte(i%250+1))
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		local := c.LocalAddr().String()
		fmt.Fprintf(connTo{c, to}, "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-u%d;rport\r\n"+
			"From: <sip:x@%s>;tag=%d\r\nTo: <sip:%s>\r\nCall-ID: udp-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			to, local, i, local, i, to, i)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("sender %d (%s): no answer: %v", i, local, err)
		}
		c.Close()
		if from.Port != to.Port {
			t.Fatalf("sender %d answered from %s, not the SIP port %d", i, from, to.Port)
		}
		if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200") {
			t.Fatalf("sender %d: %q", i, buf[:min(n, 40)])
		}
	}
	if g := u.gens.Load(); g < senders/rotate/2 {
		t.Errorf("%d read loop generations for %d sources, want at least %d", g, senders, senders/rotate/2)
	}
	// At most keep recent sources, what came since the last generation,
	// the phone and the listening socket's own entry, once the
	// generation the last sources started has taken over.
	bound := keep + rotate + 2
	for deadline := time.Now().Add(30 * time.Second); u.size() > bound && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // polling the table's size
	}
	if n := u.size(); n > bound {
		t.Errorf("%d UDP sources tracked after %d senders, want at most %d", n, senders, bound)
	}
	if n := u.pool.Size(); n > bound {
		t.Errorf("%d entries in sipgo's UDP pool after %d senders, want at most %d", n, senders, bound)
	}
	if c := u.pool.Get(src); c == nil || c.LocalAddr().String() != to.String() {
		t.Errorf("the phone's flow %s: pool connection %v, want the SIP port's", src, c)
	}
	if got := openFDs(t); got > fds+3 {
		t.Errorf("%d descriptors open, %d before the senders: answers opened sockets", got, fds)
	}
	// A request to the phone (as a call's INVITE or BYE) goes out of
	// the SIP port to its flow.
	host, port, _ := net.SplitHostPort(src)
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", User: "alice", Host: host, Port: atoi(port)})
	req.SetDestination(src)
	if err := e.s.client.WriteRequest(req); err != nil {
		t.Fatal(err)
	}
	phone.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, from, err := phone.conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("the node's request to the phone: %v", err)
	}
	if from.Port != to.Port || !strings.HasPrefix(string(buf[:n]), "OPTIONS ") {
		t.Errorf("the node's request to the phone came from %s, not the SIP port %d: %q", from, to.Port, buf[:min(n, 40)])
	}
	if res := phone.register("alice", ""); res.StatusCode != 200 {
		t.Fatalf("REGISTER after the senders: %d", res.StatusCode)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// connTo writes to one address through an unconnected socket.
type connTo struct {
	c  *net.UDPConn
	to *net.UDPAddr
}

func (w connTo) Write(b []byte) (int, error) { return w.c.WriteToUDP(b, w.to) }

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
