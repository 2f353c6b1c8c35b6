package media

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/transport/v5/test"
	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/internal/testenv"
)

const waitLong = 10 * time.Second

// loopbackEngine gathers 127.0.0.1 UDP candidates only and stays out of
// multicast DNS, so that tests never leave loopback.
func loopbackEngine() *webrtc.SettingEngine {
	return LoopbackSettingEngine()
}

func readFixture(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/speech.ogg")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// opusPackets is the sequence of Opus packets in an Ogg/Opus stream.
func opusPackets(tb testing.TB, b []byte) [][]byte {
	tb.Helper()
	r, err := newOpusReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	var pkts [][]byte
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			return pkts
		}
		if err != nil {
			tb.Fatal(err)
		}
		pkts = append(pkts, p)
	}
}

// pair is a caller and a callee that trickle candidates to each other.
type pair struct {
	caller, callee *Peer
	done           chan struct{}
	wg             sync.WaitGroup
	closeOnce      sync.Once
}

// newPair creates two Peers whose OnCandidate feeds the other's
// AddCandidate. Call negotiate to start the call and close to end it.
func newPair(tb testing.TB, callerOpts, calleeOpts Options) *pair {
	tb.Helper()
	return newPairTap(tb, callerOpts, calleeOpts, nil)
}

// newPairTap is newPair with tap, when not nil, called with each candidate
// a side ("caller" or "callee") sends.
func newPairTap(tb testing.TB, callerOpts, calleeOpts Options, tap func(side, candidate string)) *pair {
	tb.Helper()
	p := &pair{done: make(chan struct{})}
	toCallee := make(chan webrtc.ICECandidateInit, 16)
	toCaller := make(chan webrtc.ICECandidateInit, 16)
	send := func(side string, ch chan webrtc.ICECandidateInit) func(webrtc.ICECandidateInit) {
		return func(c webrtc.ICECandidateInit) {
			if tap != nil {
				tap(side, c.Candidate)
			}
			select {
			case ch <- c:
			case <-p.done:
			}
		}
	}
	callerOpts.OnCandidate = send("caller", toCallee)
	calleeOpts.OnCandidate = send("callee", toCaller)
	for _, o := range []*Options{&callerOpts, &calleeOpts} {
		if o.SettingEngine == nil {
			o.SettingEngine = loopbackEngine()
		}
	}
	var err error
	if p.caller, err = New(callerOpts); err != nil {
		tb.Fatal(err)
	}
	if p.callee, err = New(calleeOpts); err != nil {
		_ = p.caller.Close()
		tb.Fatal(err)
	}
	forward := func(ch chan webrtc.ICECandidateInit, to *Peer) {
		defer p.wg.Done()
		for {
			select {
			case c := <-ch:
				if err := to.AddCandidate(c); err != nil && !errors.Is(err, ErrClosed) {
					tb.Errorf("AddCandidate(%s): %v", c.Candidate, err)
				}
			case <-p.done:
				return
			}
		}
	}
	p.wg.Add(2)
	go forward(toCallee, p.callee)
	go forward(toCaller, p.caller)
	return p
}

// negotiate runs offer, answer and accept, checking signatures with the
// given keys.
func (p *pair) negotiate(tb testing.TB, callerKey, calleeKey ed25519.PublicKey) {
	tb.Helper()
	offer, err := p.caller.Offer()
	if err != nil {
		tb.Fatal(err)
	}
	answer, err := p.callee.Answer(offer, callerKey)
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.caller.Accept(answer, calleeKey); err != nil {
		tb.Fatal(err)
	}
}

func (p *pair) close(tb testing.TB) {
	p.closeOnce.Do(func() {
		close(p.done)
		p.wg.Wait()
		for _, peer := range []*Peer{p.caller, p.callee} {
			if err := peer.Close(); err != nil {
				tb.Errorf("Close: %v", err)
			}
		}
	})
}

func wait(tb testing.TB, ch <-chan struct{}, what string) {
	tb.Helper()
	select {
	case <-ch:
	case <-time.After(waitLong):
		tb.Fatalf("timed out waiting for %s", what)
	}
}

func newKey(tb testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return pub, priv
}

// waitRecording waits until Record has registered its recorder.
func waitRecording(tb testing.TB, p *Peer) {
	tb.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		p.recMu.Lock()
		ok := p.rec != nil
		p.recMu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("Record did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCall(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	fixture := readFixture(t)
	want := opusPackets(t, fixture)
	if len(want) < 50 {
		t.Fatalf("fixture has %d packets", len(want))
	}

	callerPub, callerKey := newKey(t)
	calleePub, calleeKey := newKey(t)
	var received atomic.Int64
	allReceived := make(chan struct{})
	callerText := make(chan string, 1)
	calleeText := make(chan string, 1)
	p := newPair(t,
		Options{Key: callerKey, OnText: func(s string) { callerText <- s }},
		Options{
			Key:    calleeKey,
			OnText: func(s string) { calleeText <- s },
			OnTrackPacket: func(*rtp.Packet) {
				if received.Add(1) == int64(len(want)) {
					close(allReceived)
				}
			},
		})
	t.Cleanup(func() { p.close(t) })

	start := time.Now()
	p.negotiate(t, callerPub, calleePub)
	wait(t, p.caller.Connected(), "caller connected")
	wait(t, p.callee.Connected(), "callee connected")
	t.Logf("connected after %v", time.Since(start))

	var rec bytes.Buffer
	recDone := make(chan error, 1)
	go func() { recDone <- p.callee.Record(&rec) }()
	waitRecording(t, p.callee)

	playStart := time.Now()
	if err := p.caller.Play(bytes.NewReader(fixture)); err != nil {
		t.Fatalf("Play: %v", err)
	}
	t.Logf("played %d packets in %v", len(want), time.Since(playStart))
	wait(t, p.callee.FirstPacket(), "first packet")
	select {
	case <-allReceived:
	case <-time.After(waitLong):
		t.Fatalf("received %d of %d packets", received.Load(), len(want))
	}

	// Text both ways.
	wait(t, p.caller.ChatReady(), "caller chat")
	wait(t, p.callee.ChatReady(), "callee chat")
	if err := p.caller.SendText("hello callee"); err != nil {
		t.Fatal(err)
	}
	if err := p.callee.SendText("hello caller"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ch   chan string
		want string
	}{{calleeText, "hello callee"}, {callerText, "hello caller"}} {
		select {
		case got := <-c.ch:
			if got != c.want {
				t.Errorf("text %q, want %q", got, c.want)
			}
		case <-time.After(waitLong):
			t.Fatalf("no text %q", c.want)
		}
	}

	for name, peer := range map[string]*Peer{"caller": p.caller, "callee": p.callee} {
		q := peer.Stats()
		t.Logf("%s quality: %+v", name, q)
		if q.Route != signal.RouteDirect || peer.Route() != signal.RouteDirect {
			t.Errorf("%s route %q, want direct", name, q.Route)
		}
		if q.Loss != 0 {
			t.Errorf("%s loss %v on loopback", name, q.Loss)
		}
		if q.RTT <= 0 || q.RTT > 1 {
			t.Errorf("%s RTT %v s", name, q.RTT)
		}
	}
	if q := p.callee.Stats(); q.PacketsReceived != uint32(len(want)) {
		t.Errorf("callee stats: %d packets received, want %d", q.PacketsReceived, len(want))
	}
	// The callee's receiver reports reach the caller's statistics.
	deadline := time.Now().Add(waitLong)
	for {
		ri, ok := p.caller.rtpStats()["remote-inbound-rtp"].(webrtc.RemoteInboundRTPStreamStats)
		if ok && ri.Kind == "audio" && ri.FractionLost == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("caller's statistics %+v: no receiver report from the callee", p.caller.rtpStats())
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-p.caller.Done():
			t.Fatal("caller ended")
		}
	}

	// Closing ends the recording; the packets come back bit for bit.
	if err := p.callee.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-recDone:
		if err != nil {
			t.Fatalf("Record: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Record did not return after Close")
	}
	got := opusPackets(t, rec.Bytes())
	if len(got) != len(want) {
		t.Fatalf("recorded %d packets, played %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("packet %d differs: got %x, want %x", i, got[i], want[i])
		}
	}
	if err := p.callee.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := p.callee.SendText("late"); !errors.Is(err, ErrClosed) {
		t.Errorf("SendText after Close: %v", err)
	}
}

func TestFingerprintSignature(t *testing.T) {
	callerPub, callerKey := newKey(t)
	otherPub, otherKey := newKey(t)
	_ = otherKey

	caller, err := New(Options{Key: callerKey, SettingEngine: loopbackEngine()})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	offer, err := caller.Offer()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(offer.Fingerprint, "sha-256 ") || !strings.Contains(offer.SDP, "a=fingerprint:"+offer.Fingerprint) {
		t.Fatalf("fingerprint %q not from SDP", offer.Fingerprint)
	}

	// A forged fingerprint: another certificate's, as a node in the middle
	// would put in.
	forged := "sha-256 " + strings.Repeat("AB:", 31) + "AB"
	for _, tc := range []struct {
		name   string
		mutate func(*signal.Description)
		key    ed25519.PublicKey
		want   error
	}{
		{"valid", func(*signal.Description) {}, callerPub, nil},
		{"unchecked", func(d *signal.Description) { d.Sig = nil }, nil, nil},
		{"wrong key", func(*signal.Description) {}, otherPub, signal.ErrBadFingerprintSig},
		{"unsigned", func(d *signal.Description) { d.Sig = nil }, callerPub, signal.ErrBadFingerprintSig},
		{"corrupt signature", func(d *signal.Description) { d.Sig = append([]byte{d.Sig[0] ^ 1}, d.Sig[1:]...) }, callerPub, signal.ErrBadFingerprintSig},
		{"fingerprint field replaced", func(d *signal.Description) { d.Fingerprint = forged }, callerPub, signal.ErrBadFingerprintSig},
		{"SDP fingerprint replaced", func(d *signal.Description) {
			d.SDP = strings.ReplaceAll(d.SDP, "a=fingerprint:"+d.Fingerprint, "a=fingerprint:"+forged)
		}, callerPub, signal.ErrFingerprintMismatch},
		{"SDP fingerprint added", func(d *signal.Description) {
			d.SDP = strings.Replace(d.SDP, "a=fingerprint:", "a=fingerprint:"+forged+"\r\na=fingerprint:", 1)
		}, callerPub, signal.ErrFingerprintMismatch},
		{"SDP fingerprint removed", func(d *signal.Description) {
			d.SDP = strings.ReplaceAll(d.SDP, "a=fingerprint:"+d.Fingerprint+"\r\n", "")
		}, callerPub, signal.ErrFingerprintMismatch},
		{"wrong type", func(d *signal.Description) { d.Type = "answer" }, callerPub, ErrUnexpectedType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := offer
			d.Sig = append([]byte(nil), offer.Sig...)
			tc.mutate(&d)
			callee, err := New(Options{SettingEngine: loopbackEngine()})
			if err != nil {
				t.Fatal(err)
			}
			defer callee.Close()
			_, err = callee.Answer(d, tc.key)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Answer: %v, want %v", err, tc.want)
			}
		})
	}

	// Accept checks the answer the same way.
	callee, err := New(Options{Key: otherKey, SettingEngine: loopbackEngine()})
	if err != nil {
		t.Fatal(err)
	}
	defer callee.Close()
	answer, err := callee.Answer(offer, callerPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := caller.Accept(answer, callerPub); !errors.Is(err, signal.ErrBadFingerprintSig) {
		t.Fatalf("Accept with the wrong key: %v", err)
	}
	if err := caller.Accept(answer, otherPub); err != nil {
		t.Fatalf("Accept: %v", err)
	}
}

func TestRelayOnlyCall(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	srv, err := turn.New(turn.Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "srv", srv)

	p := newPair(t,
		Options{},
		Options{RelayOnly: true, ICEServers: srv.ICEServers("callee", time.Minute)})
	t.Cleanup(func() { p.close(t) })
	start := time.Now()
	p.negotiate(t, nil, nil)
	wait(t, p.caller.Connected(), "caller connected")
	wait(t, p.callee.Connected(), "callee connected")
	t.Logf("connected through the relay after %v", time.Since(start))

	playDone := make(chan error, 1)
	go func() { playDone <- p.caller.Play(bytes.NewReader(readFixture(t))) }()
	wait(t, p.callee.FirstPacket(), "first packet through the relay")
	for name, peer := range map[string]*Peer{"caller": p.caller, "callee": p.callee} {
		if r := peer.Route(); r != signal.RouteRelayed {
			t.Errorf("%s route %q, want relayed", name, r)
		}
	}
	p.close(t)
	if err := <-playDone; !errors.Is(err, ErrClosed) {
		t.Errorf("Play after Close: %v", err)
	}
}

func TestRelayOnlyNeedsServer(t *testing.T) {
	if _, err := New(Options{RelayOnly: true}); !errors.Is(err, ErrNoRelay) {
		t.Fatalf("New: %v", err)
	}
}

func TestPlayRejectsNonOgg(t *testing.T) {
	p, err := New(Options{SettingEngine: loopbackEngine()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Play(strings.NewReader("ID3 an MP3 file")); !errors.Is(err, ErrNotOpus) {
		t.Fatalf("Play: %v", err)
	}
}

func TestRestartICE(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	texts := make(chan string, 4)
	p := newPair(t, Options{}, Options{OnText: func(s string) { texts <- s }})
	t.Cleanup(func() { p.close(t) })
	p.negotiate(t, nil, nil)
	wait(t, p.caller.ChatReady(), "chat")

	offer, err := p.caller.RestartICE()
	if err != nil {
		t.Fatal(err)
	}
	answer, err := p.callee.Answer(offer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.caller.Accept(answer, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.caller.SendText("after restart"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-texts:
		if got != "after restart" {
			t.Fatalf("text %q", got)
		}
	case <-time.After(waitLong):
		t.Fatal("no text after ICE restart")
	}
	if r := p.caller.Route(); r != signal.RouteDirect {
		t.Fatalf("route %q after restart", r)
	}
}
