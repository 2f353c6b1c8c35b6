package media

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/irmv/irmv/call/turn"
)

// benchSetup measures, per iteration, the time from Offer to the callee's
// first audio packet for a fresh pair of peers made by opts.
func benchSetup(b *testing.B, opts func() (caller, callee Options)) {
	fixture := readFixture(b)
	b.ReportAllocs()
	b.StopTimer()
	for range b.N {
		callerOpts, calleeOpts := opts()
		p := newPair(b, callerOpts, calleeOpts)
		played := make(chan error, 1)
		go func() { played <- p.caller.Play(bytes.NewReader(fixture)) }()

		b.StartTimer()
		p.negotiate(b, nil, nil)
		wait(b, p.callee.FirstPacket(), "first packet")
		b.StopTimer()

		p.close(b)
		<-played
	}
}

// BenchmarkCallSetup: host candidates on loopback.
func BenchmarkCallSetup(b *testing.B) {
	benchSetup(b, func() (Options, Options) { return Options{}, Options{} })
}

// BenchmarkCallSetupRelayed: the callee relays through a TURN server
// (RelayOnly), with pion's default relay acceptance wait (2 s on the
// controlling side, which prefers direct pairs that might still succeed)
// and without it.
func BenchmarkCallSetupRelayed(b *testing.B) {
	srv, err := turn.New(turn.Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, bc := range []struct {
		name      string
		relayWait time.Duration // < 0: pion's default
	}{
		{"default-wait", -1},
		{"no-relay-wait", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchSetup(b, func() (Options, Options) {
				callerSE := loopbackEngine()
				if bc.relayWait >= 0 {
					callerSE.SetRelayAcceptanceMinWait(bc.relayWait)
				}
				return Options{SettingEngine: callerSE},
					Options{RelayOnly: true, ICEServers: srv.ICEServers("callee", time.Minute)}
			})
		})
	}
}
