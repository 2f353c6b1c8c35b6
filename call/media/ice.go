package media

import (
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// relayAcceptanceWait is how long the controlling side (the caller) waits
// before it nominates a pair with a relayed candidate, so that a direct pair
// that is still being checked wins. pion's default, 2 s, delays every
// relayed call by that much; direct pairs on a LAN or through a
// hole-punched NAT succeed within the first check round or the next, 200 ms
// (pion's check interval) apart.
const relayAcceptanceWait = 150 * time.Millisecond

// configureICE adapts the Peer's ICE settings and candidate reporting to
// its options, before New uses them.
//
// The acceptance waits: none for a relay-only Peer, which has nothing better
// to wait for, and relayAcceptanceWait otherwise. They override what the
// caller's SettingEngine set.
//
// A relay-only Peer reports relayed candidates only, with their related
// address blanked: pion fills it with the local address the relay is
// reached from (with an IP or interface filter, the terminal's own
// address), which is what relay-only hides.
func configureICE(se *webrtc.SettingEngine, opts *Options) {
	if !opts.RelayOnly {
		se.SetRelayAcceptanceMinWait(relayAcceptanceWait)
		return
	}
	se.SetRelayAcceptanceMinWait(0)
	if next := opts.OnCandidate; next != nil {
		opts.OnCandidate = func(c webrtc.ICECandidateInit) {
			if c, ok := relayOnlyCandidate(c); ok {
				next(c)
			}
		}
	}
}

// relayOnlyCandidate returns c with its related address blanked, and ok
// false if c is not a relayed candidate.
func relayOnlyCandidate(c webrtc.ICECandidateInit) (webrtc.ICECandidateInit, bool) {
	f := strings.Fields(c.Candidate)
	// candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> [raddr <a> rport <p>] ...
	if len(f) < 8 || f[6] != "typ" || f[7] != "relay" {
		return c, false
	}
	for i := 8; i+1 < len(f); i += 2 {
		switch f[i] {
		case "raddr":
			if strings.Contains(f[i+1], ":") {
				f[i+1] = "::"
			} else {
				f[i+1] = "0.0.0.0"
			}
		case "rport":
			f[i+1] = "0"
		}
	}
	c.Candidate = strings.Join(f, " ")
	return c, true
}

// blankRelayRelated blanks the related address of the relayed candidates
// in an SDP (pion puts those gathered so far into descriptions made after
// gathering, such as an ICE restart's): it is the local address the relay
// is reached from, which a relay-only Peer hides. For other Peers it adds
// nothing their host candidates do not say.
func blankRelayRelated(sdp string) string {
	if !strings.Contains(sdp, " typ relay ") {
		return sdp
	}
	var b strings.Builder
	for line := range strings.Lines(sdp) {
		body := strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(body, "a="); ok && strings.HasPrefix(v, "candidate:") {
			if c, relay := relayOnlyCandidate(webrtc.ICECandidateInit{Candidate: v}); relay {
				line = "a=" + c.Candidate + line[len(body):]
			}
		}
		b.WriteString(line)
	}
	return b.String()
}
