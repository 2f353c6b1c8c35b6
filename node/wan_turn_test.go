package node_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/irmv/irmv/call/turn/grant"
	"github.com/irmv/irmv/call/turn/portcheck"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// portForward is a router's UDP port forward: datagrams to its address
// go on to the same port at another address, sent from the sender's own
// IP (as a router's DNAT keeps it), and the answers go back.
type portForward struct {
	conn *net.UDPConn
	to   *net.UDPAddr
	mu   sync.Mutex
	up   map[string]*net.UDPConn // by sender
	wg   sync.WaitGroup
}

func forwardUDP(t *testing.T, from, to net.IP, port int) *portForward {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: from, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	f := &portForward{conn: conn, to: &net.UDPAddr{IP: to, Port: port}, up: map[string]*net.UDPConn{}}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, src, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if up := f.upstream(src); up != nil {
				up.Write(buf[:n])
			}
		}
	}()
	t.Cleanup(f.Close)
	return f
}

// upstream is the socket that forwards src's datagrams, answers going
// back to src.
func (f *portForward) upstream(src *net.UDPAddr) *net.UDPConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	if up, ok := f.up[src.String()]; ok || f.up == nil {
		return up
	}
	up, err := net.DialUDP("udp4", &net.UDPAddr{IP: src.IP}, f.to)
	if err != nil {
		return nil
	}
	f.up[src.String()] = up
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, err := up.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue // an ICMP error: the next datagram may get through
			}
			f.conn.WriteToUDP(buf[:n], src)
		}
	}()
	return up
}

// Close removes the forward.
func (f *portForward) Close() {
	f.mu.Lock()
	f.conn.Close()
	for _, up := range f.up {
		up.Close()
	}
	f.up = nil
	f.mu.Unlock()
	f.wg.Wait()
}

// logRecords is a log handler that passes on the records with one of
// msgs, with their attributes.
type logRecords struct {
	msgs map[string]bool
	out  chan logRecord
}

type logRecord struct {
	msg   string
	attrs map[string]string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	if !l.msgs[r.Message] {
		return nil
	}
	rec := logRecord{msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	select {
	case l.out <- rec:
	default:
	}
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

// waitLog waits for a record with msg (others are dropped).
func waitLog(t *testing.T, l *logRecords, msg string) logRecord {
	t.Helper()
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case r := <-l.out:
			if r.msg == msg {
				return r
			}
		case <-timeout:
			t.Fatalf("no log %q", msg)
		}
	}
}

// freeRange is count consecutive UDP ports free at each of ips.
func freeRange(t *testing.T, count int, ips ...net.IP) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(40000)
		ok := true
		for p := base; p < base+count && ok; p++ {
			for _, ip := range ips {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: p})
				if err != nil {
					ok = false
					break
				}
				c.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

const (
	notLent  = "TURN relay not lent at the public address (--turn-relay-ip overrides)"
	answers  = "TURN port answers at the public address"
	turnGone = "TURN relay withdrawn from the public address (its ports no longer answer there)"
)

// turnHome is a node whose relay (at 127.0.0.3) sits behind a router
// that forwards to it from 127.0.0.1, which stands in for the node's
// public address, and real checker nodes it is connected to.
type turnHome struct {
	n        *node.Node
	checkers []*node.Node
	log      *logRecords
	base     int // the relayed ports: base..base+turnPorts-1
}

const turnPorts = 3

var (
	turnWAN = net.IPv4(127, 0, 0, 1)
	turnOwn = net.IPv4(127, 0, 0, 3)
)

// startTURNHome starts checkers listening at listen and the node,
// which dials them: each checker's connection comes from its own
// address, and sees the node at 127.0.0.1. The node's log records with
// msgs go to log.
func startTURNHome(t *testing.T, listen []string, msgs ...string) *turnHome {
	t.Helper()
	h := &turnHome{log: &logRecords{msgs: map[string]bool{}, out: make(chan logRecord, 64)}}
	for _, m := range msgs {
		h.log.msgs[m] = true
	}
	for _, l := range listen {
		o := nodetest.Options(t)
		o.Listen = []string{l}
		h.checkers = append(h.checkers, nodetest.Start(t, o))
	}
	h.base = freeRange(t, turnPorts, turnWAN, turnOwn)
	o := nodetest.Options(t)
	o.TURN = turnOwn.String() + ":0"
	o.TURNPorts = fmt.Sprintf("%d-%d", h.base, h.base+turnPorts-1)
	o.WANCheck = time.Second
	o.Logger = slog.New(h.log)
	h.n = nodetest.Start(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range h.checkers {
		if err := h.n.Host().Connect(ctx, peer.AddrInfo{ID: c.ID(), Addrs: c.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
		nodetest.WaitFor(t, "the checker's protocols", func() bool {
			ps, err := h.n.Host().Peerstore().SupportsProtocols(c.ID(), portcheck.Protocol)
			return err == nil && len(ps) > 0
		})
	}
	return h
}

// lent tells whether checker i sees the node lend its relay.
func (h *turnHome) lent(i int) bool {
	ps, err := h.checkers[i].Host().Peerstore().SupportsProtocols(h.n.ID(), grant.Protocol)
	return err == nil && len(ps) > 0
}

// forwardTURN forwards the relay's listening port.
func (h *turnHome) forwardTURN(t *testing.T) {
	forwardUDP(t, turnWAN, turnOwn, h.n.TURN().Addr().(*net.UDPAddr).Port)
}

// forwardRelayed forwards the relayed ports.
func (h *turnHome) forwardRelayed(t *testing.T) []*portForward {
	var fwd []*portForward
	for p := h.base; p < h.base+turnPorts; p++ {
		fwd = append(fwd, forwardUDP(t, turnWAN, turnOwn, p))
	}
	return fwd
}

// TestTURNRelayedPortsChecked: a node behind a router that forwards its
// TURN port (127.0.0.1:X to the relay at 127.0.0.3:X, 127.0.0.1 standing
// in for the public address) but not the relayed ports (--turn-ports)
// does not lend its relay there: the checkers' Binding requests are
// answered, their datagrams to a relayed port at the address are not
// received. With the relayed ports forwarded too it lends the relay at
// the address; when their forward is removed again, its next checks (by
// checkers in two networks, 127.0.0.0/16 and 127.1.0.0/16, both real
// nodes) find it and the relay goes back to its own address and stops
// lending, while the public address itself is kept.
func TestTURNRelayedPortsChecked(t *testing.T) {
	h := startTURNHome(t, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.1.0.1/tcp/0"}, notLent, answers, turnGone)
	h.forwardTURN(t)
	h.n.AssumeWANForTest(ma.StringCast("/ip4/127.0.0.1/tcp/4001"))
	r := waitLog(t, h.log, notLent)
	if r.attrs["reason"] != "the relayed ports (--turn-ports) not reached there" {
		t.Fatalf("not lent for %q, want the relayed ports not reached", r.attrs["reason"])
	}
	if i := h.n.Info(); i.TURNRelayIP != turnOwn.String() || h.lent(0) || h.lent(1) {
		t.Fatalf("turn_relay_ip %q, lent %v %v; want its own address, not lent", i.TURNRelayIP, h.lent(0), h.lent(1))
	}

	fwd := h.forwardRelayed(t)
	waitLog(t, h.log, answers)
	nodetest.WaitFor(t, "the relay lent at the public address", func() bool {
		return h.n.Info().TURNRelayIP == turnWAN.String() && h.lent(0) && h.lent(1)
	})

	for _, f := range fwd {
		f.Close()
	}
	r = waitLog(t, h.log, turnGone)
	if r.attrs["failed_from"] != "[v4:127.0.0.0/16 v4:127.1.0.0/16]" && r.attrs["failed_from"] != "[v4:127.1.0.0/16 v4:127.0.0.0/16]" {
		t.Errorf("withdrawn after failures from %s, want both networks", r.attrs["failed_from"])
	}
	nodetest.WaitFor(t, "the relay back on its own address, not lent", func() bool {
		return h.n.Info().TURNRelayIP == turnOwn.String() && !h.lent(0) && !h.lent(1)
	})
	if a := h.n.Info().WANAddr; a != "/ip4/127.0.0.1/tcp/4001" {
		t.Fatalf("wan_addr %q, want the public address kept", a)
	}
}

// TestTURNKeptAgainstOneNetwork: checkers in one network (127.0.0.0/16)
// that fail to reach a lent relay's ports do not take it back: after the
// first failure, two more rounds of checks (the node checks every second)
// leave it lent at the public address.
func TestTURNKeptAgainstOneNetwork(t *testing.T) {
	const (
		failed  = "TURN port check failed"
		checked = "Public address not checked" // each check of the address, before the relay's
	)
	h := startTURNHome(t, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.5.1/tcp/0"}, answers, failed, checked, turnGone)
	h.forwardTURN(t)
	fwd := h.forwardRelayed(t)
	h.n.AssumeWANForTest(ma.StringCast("/ip4/127.0.0.1/tcp/4001"))
	waitLog(t, h.log, answers)
	nodetest.WaitFor(t, "the relay lent at the public address", func() bool {
		return h.n.Info().TURNRelayIP == turnWAN.String() && h.lent(0) && h.lent(1)
	})
	for _, f := range fwd {
		f.Close()
	}
	waitLog(t, h.log, failed)
	timeout := time.After(3 * time.Minute)
	for rounds := 0; rounds < 2; {
		select {
		case r := <-h.log.out:
			switch r.msg {
			case turnGone:
				t.Fatalf("withdrawn after failures from %s, one network", r.attrs["failed_from"])
			case checked:
				rounds++
			}
		case <-timeout:
			t.Fatal("no more checks")
		}
	}
	if i := h.n.Info(); i.TURNRelayIP != turnWAN.String() || !h.lent(0) || !h.lent(1) {
		t.Fatalf("turn_relay_ip %q, lent %v %v; want still lent at the public address", i.TURNRelayIP, h.lent(0), h.lent(1))
	}
}
