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

// BenchmarkCallSetupRelayed: through a TURN server on loopback, with the
// callee relay-only (the caller waits relayAcceptanceWait for a direct pair
// before it takes the relayed one) and with both relay-only (no wait).
func BenchmarkCallSetupRelayed(b *testing.B) {
	srv, err := turn.New(turn.Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	for _, bc := range []struct {
		name        string
		callerRelay bool
	}{
		{"callee-relay-only", false},
		{"both-relay-only", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchSetup(b, func() (Options, Options) {
				caller := Options{}
				if bc.callerRelay {
					caller = Options{RelayOnly: true, ICEServers: srv.ICEServers("caller", time.Minute)}
				}
				return caller, Options{RelayOnly: true, ICEServers: srv.ICEServers("callee", time.Minute)}
			})
		})
	}
}
