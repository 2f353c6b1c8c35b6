package phone

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/nodetest"
)

// legWith is p's call with terminal, nil if none.
func legWith(p *Phone, terminal string) *Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.calls {
		if c.remote.Terminal == terminal {
			return c
		}
	}
	return nil
}

func TestConference(t *testing.T) {
	nodes := startNodes(t, 3)
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	want := oggPackets(t, data)
	evB, evC := newEvents(), newEvents()
	b := startPhone(t, nodes[1], Options{Registration: client.Registration{Name: "Conf Bob"}, Answer: AnswerAuto, RecordDir: t.TempDir(), OnEvent: evB.add})
	c := startPhone(t, nodes[2], Options{Registration: client.Registration{Name: "Conf Carol"}, Answer: AnswerAuto, RecordDir: t.TempDir(), OnEvent: evC.add})
	evA := newEvents()
	a := startPhone(t, nodes[0], Options{Registration: client.Registration{Name: "Conf Alice"}, OnEvent: evA.add})
	ca := apiClient(t, nodes[0])
	to := []client.Result{find(t, ca, "conf bob", b.Ack().Terminal), find(t, ca, "conf carol", c.Ack().Terminal)}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	cf, err := a.Conference(ctx, to, CallOptions{Play: fixture})
	if err != nil {
		t.Fatalf("Conference: %v (events %s)", err, evA)
	}
	if cf.Legs() != 2 {
		t.Fatalf("%d legs, want 2", cf.Legs())
	}
	aT, bT, cT := a.Ack().Terminal, b.Ack().Terminal, c.Ack().Terminal
	// B and C connect to each other too.
	var bc *Call
	nodetest.WaitFor(t, "B and C connected", func() bool {
		bc = legWith(b, cT)
		return bc != nil && bc.isLive() && legWith(c, bT) != nil && legWith(c, bT).isLive()
	})
	if bc.Conference() == nil || bc.Conference().ID() != cf.ID() {
		t.Fatalf("B–C leg not in conference %s", cf.ID())
	}
	// Both callees get all of A's audio.
	for name, p := range map[string]*Phone{"B": b, "C": c} {
		leg := legWith(p, aT)
		// All of them, but for the odd packet lost on a loaded machine
		// (say, the first SRTP packet racing the end of the DTLS handshake).
		deadline := time.Now().Add(waitLong)
		settle := time.Now().Add(5 * time.Second) // 99 packets of 20 ms: 2 s of audio
		for n := leg.Peer().Stats().PacketsReceived; n < uint32(len(want)); n = leg.Peer().Stats().PacketsReceived {
			if n >= uint32(len(want)*95/100) && time.Now().After(settle) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d of A's %d packets (route %s)", name, leg.Peer().Stats().PacketsReceived, len(want), leg.Peer().Route())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// C leaves; A and B go on.
	cc := legWith(c, aT).Conference()
	if err := cc.Hangup(); err != nil {
		t.Fatal(err)
	}
	nodetest.WaitFor(t, "C's legs gone at A and B", func() bool {
		return legWith(a, cT) == nil && legWith(b, cT) == nil
	})
	ab, ba := legWith(a, bT), legWith(b, aT)
	if ab == nil || ba == nil {
		t.Fatal("A–B leg ended when C left")
	}
	select {
	case <-cf.Done():
		t.Fatal("A's conference ended when C left")
	default:
	}
	if err := cf.Hangup(); err != nil {
		t.Fatal(err)
	}
	// The recordings of A at B and C hold exactly what A played.
	for name, ev := range map[string]*events{"B": evB, "C": evC} {
		var rec string
		nodetest.WaitFor(t, name+"'s recording of A", func() bool {
			ev.mu.Lock()
			defer ev.mu.Unlock()
			for _, e := range ev.list {
				if e.Type == client.EventEnded && e.Peer != nil && e.Peer.Terminal == aT {
					rec = e.Record
					return true
				}
			}
			return false
		})
		got, err := os.ReadFile(rec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// What arrived is A's packets, bit for bit and in order; at most
		// the odd one may be missing.
		pk := oggPackets(t, got)
		if len(pk) < len(want)*95/100 {
			t.Fatalf("%s recorded %d packets of A, A played %d", name, len(pk), len(want))
		}
		j := 0
		for i := range pk {
			for j < len(want) && !bytes.Equal(pk[i], want[j]) {
				j++
			}
			if j == len(want) {
				t.Fatalf("%s: recorded packet %d is not one A played (in order)", name, i)
			}
			j++
		}
	}
	waitIdle(t, b)
}
