package media

import (
	"net"
	"strconv"
	"strings"
	"sync"
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

// IPv4 candidates wait for IPv6 ones (see familyGate): ipv6Settle for
// the first IPv6 candidate to turn up (pion gathers the host candidates of
// both families within a millisecond or two), and ipv6HeadStart, counted
// from the first candidate, for the IPv6 pairs to connect once there is
// one. 50 ms, not RFC 8305's 250 ms Connection Attempt Delay: on a LAN the
// IPv6 host pairs connect in the first check round, and every call from an
// IPv4-only terminal to a dual-stack one waits out the head start.
const (
	ipv6Settle    = 10 * time.Millisecond
	ipv6HeadStart = 50 * time.Millisecond
)

// ipv6SettleMax bounds the settle time when it runs out with no
// candidate of either kind to tell: on a loaded machine pion's IPv6 host
// candidate came 35 ms after the IPv4 one, and an IPv4 one sent first
// makes the remote's controlling Peer give up waiting for IPv6. The first
// server-reflexive or relayed candidate, or the end of the gathering,
// still ends it at once.
const ipv6SettleMax = 200 * time.Millisecond

// ipv6Fallback is how long a controlling Peer with a routable IPv6
// candidate, whose peer sent one too, keeps IPv4 out of the checks (see
// familyGate.holdForIPv6), counted from the first remote candidate:
// long enough for an IPv6 pair to connect on a loaded machine (0.6 s
// measured with load 20 on 2 cores), short enough to fall back when IPv6
// is routed nowhere.
const ipv6Fallback = time.Second

// configureICE adapts the Peer's ICE settings and candidate reporting to
// its options, before New uses them.
//
// The acceptance waits: none for a relay-only Peer, which has nothing better
// to wait for, and relayAcceptanceWait (or Options.RelayAcceptanceWait)
// otherwise. They override what the
// caller's SettingEngine set.
//
// Every candidate reported goes through preferIPv6 (as do those in the
// descriptions, see Peer.offer and Peer.Answer).
//
// A relay-only Peer reports relayed candidates only, with their related
// address blanked: pion fills it with the local address the relay is
// reached from (with an IP or interface filter, the terminal's own
// address), which is what relay-only hides.
func configureICE(se *webrtc.SettingEngine, opts *Options) {
	if next := opts.OnCandidate; next != nil {
		opts.OnCandidate = func(c webrtc.ICECandidateInit) { next(preferIPv6(c)) }
	}
	if !opts.RelayOnly {
		wait := relayAcceptanceWait
		if opts.RelayAcceptanceWait > 0 {
			wait = opts.RelayAcceptanceWait
		}
		se.SetRelayAcceptanceMinWait(wait)
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
	return mapSDPCandidates(sdp, func(c webrtc.ICECandidateInit) webrtc.ICECandidateInit {
		if r, relay := relayOnlyCandidate(c); relay {
			return r
		}
		return c
	})
}

// preferIPv6 lowers the priority of an IPv4 candidate by one step of local
// preference, so that of two candidates pion ranks equal the IPv6 one wins
// (RFC 8421 section 4). pion gives every host and server-reflexive UDP
// candidate the same local preference, whatever its address family, and
// has no setting for it; the other agent computes each pair's priority
// from both ends' candidate priorities (RFC 8445 section 6.1.2.3: 2^32
// MIN(G,D) + 2 MAX(G,D) + (G>D?1:0)), so with ours lowered every IPv6
// pair ranks above every IPv4 pair of the same candidate types, on both
// sides. The type preference (host over server-reflexive over relayed) is
// untouched. Only host candidates: a server-reflexive or relayed one whose
// signalled priority differs from the PRIORITY its checks carry made
// relayed set-up through symmetric NATs take 1 s instead of 0.2 s
// (scripts/nat-test), and the family race is between host pairs. A
// candidate it cannot parse, or one of local preference 0, passes
// unchanged.
func preferIPv6(c webrtc.ICECandidateInit) webrtc.ICECandidateInit {
	f := strings.Fields(c.Candidate)
	// candidate:<foundation> <component> <transport> <priority> <address> ...
	if len(f) < 5 || strings.Contains(f[4], ":") || net.ParseIP(f[4]) == nil || candidateType(c) != "host" {
		return c
	}
	prio, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil || (prio>>8)&0xffff == 0 {
		return c
	}
	f[3] = strconv.FormatUint(prio-(1<<8), 10)
	c.Candidate = strings.Join(f, " ")
	return c
}

// preferIPv6SDP applies preferIPv6 to the candidates in an SDP.
func preferIPv6SDP(sdp string) string {
	if !strings.Contains(sdp, "a=candidate:") {
		return sdp
	}
	return mapSDPCandidates(sdp, preferIPv6)
}

// mapSDPCandidates replaces each a=candidate attribute of sdp by f's result.
func mapSDPCandidates(sdp string, f func(webrtc.ICECandidateInit) webrtc.ICECandidateInit) string {
	var b strings.Builder
	for line := range strings.Lines(sdp) {
		body := strings.TrimRight(line, "\r\n")
		if v, ok := strings.CutPrefix(body, "a="); ok && strings.HasPrefix(v, "candidate:") {
			line = "a=" + f(webrtc.ICECandidateInit{Candidate: v}).Candidate + line[len(body):]
		}
		b.WriteString(line)
	}
	return b.String()
}

// familyGate gives IPv6 a head start (Happy Eyeballs, RFC 8305, applied to
// trickled candidates): it passes IPv4 candidates on only ipv6Settle after
// the first candidate of a gathering, or ipv6HeadStart after it if an IPv6
// candidate turned up by then. Raising the IPv6 candidates' priority
// (preferIPv6) is not enough with pion: its controlling agent nominates
// the first pair that succeeds when no better one has yet (ice v4.4.8
// selection.go:75, controllingSelector.ContactCandidates), and a pair
// whose remote end was first seen as peer-reflexive keeps that lower
// priority once the signalled candidate arrives (agent.go:1250-1252,
// replaceRemoteInPairs).
// While only IPv6 candidates are known on either side there is no IPv4
// pair to succeed first. A terminal without an IPv6 candidate holds its
// IPv4 host candidates only until its first server-reflexive or relayed
// candidate, the end of its gathering, or ipv6Settle, whichever comes
// first; an IPv4-only peer of a dual-stack one waits at most
// ipv6HeadStart. Link-local IPv6 counts: telling a link-local-only
// terminal from one whose routable address is still being gathered would
// need a longer settle time for every terminal.
//
// The head start alone does not decide the pair on a loaded machine
// (TestCallDualStackIPv6 picked IPv4 in 2 of 4 runs at load 15): when
// the offer and answer take longer than it through the nodes, checking
// starts with both families known on both sides, and the controlled side's
// first checks reach the controlling one before its trickled candidates
// do, so pion ranks the remote host candidates by the PRIORITY of those
// checks, equal for both families, and keeps that rank (ice v4.4.8
// agent.go replaceRemoteInPairs). The controlling Peer therefore holds its
// IPv4 candidates and the remote's (holdForIPv6) while both ends have a
// routable IPv6 candidate, until ICE connects over IPv6, the remote turns
// out to have no routable IPv6 (an IPv4 candidate of it first), or
// ipv6Fallback: it can then nominate nothing but an IPv6 pair.
type familyGate struct {
	emit func(webrtc.ICECandidateInit)
	// addRemote hands a held remote candidate to pion.
	addRemote func(webrtc.ICECandidateInit)

	mu       sync.Mutex
	start    time.Time // first candidate of the gathering; zero before
	v6       bool      // an IPv6 candidate was passed on
	routable bool      // a routable (not link-local) IPv6 one among them
	open     bool      // IPv4 candidates pass
	held     []webrtc.ICECandidateInit
	timer    *time.Timer
	gen      int // counts resets: a timer of an earlier gathering does nothing
	closed   bool

	// holdForIPv6 state: hold is set for the gathering of a controlling
	// Peer's first offer; remote candidates wait in remoteHeld.
	hold        bool
	remoteV6    bool // a routable IPv6 remote candidate was added
	remoteOpen  bool // remote IPv4 candidates pass
	remoteHeld  []webrtc.ICECandidateInit
	remoteTimer *time.Timer

	emitMu sync.Mutex // serialises emit, taken before mu is released
}

// holdForIPv6 makes the gate keep IPv4 candidates, its own and the
// remote's, out while both ends have a routable IPv6 candidate, until
// release, an IPv4 candidate of the remote before any routable IPv6 one,
// or ipv6Fallback after the first remote candidate. For the
// controlling side only (it nominates), and for its first gathering only.
func (g *familyGate) holdForIPv6() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = true
}

// remote tells whether a remote candidate goes to pion now (pass) or is
// held, to go to addRemote on release.
func (g *familyGate) remote(c webrtc.ICECandidateInit) (pass bool) {
	g.mu.Lock()
	if !g.hold || g.remoteOpen || g.closed {
		g.mu.Unlock()
		return true
	}
	if g.remoteTimer == nil {
		gen := g.gen
		g.remoteTimer = time.AfterFunc(ipv6Fallback, func() { g.release(gen) })
	}
	switch candidateFamily(c) {
	case 6:
		g.remoteV6 = g.remoteV6 || !isLinkLocal(c)
	case 4:
		if !g.remoteV6 || !g.routable {
			// One end has no routable IPv6 (the remote would have sent
			// its own first): nothing to wait for.
			g.mu.Unlock()
			g.release(-1)
			return true
		}
		g.remoteHeld = append(g.remoteHeld, c)
		g.mu.Unlock()
		return false
	}
	g.mu.Unlock()
	return true
}

// release ends holdForIPv6 (ICE connected, or the fallback of gathering
// gen; -1 for any): IPv4 candidates pass both ways.
func (g *familyGate) release(gen int) {
	g.mu.Lock()
	if !g.hold || g.closed || (gen >= 0 && gen != g.gen) {
		g.mu.Unlock()
		return
	}
	g.hold = false
	if g.remoteTimer != nil {
		g.remoteTimer.Stop()
	}
	g.remoteOpen = true
	remote := g.remoteHeld
	g.remoteHeld = nil
	add := g.addRemote
	if !g.open {
		g.openLocked() // releases mu
	} else {
		g.mu.Unlock()
	}
	for _, c := range remote {
		add(c)
	}
}

// add passes c on or holds it. The first candidate that is not a host
// candidate ends the settle time early (pion gathers all host candidates
// first), as does the end of the gathering (done).
func (g *familyGate) add(c webrtc.ICECandidateInit) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	if g.start.IsZero() {
		g.start = time.Now()
		gen := g.gen
		g.timer = time.AfterFunc(ipv6Settle, func() { g.tick(gen) })
	}
	fam := candidateFamily(c)
	if !g.open && fam == 4 && candidateType(c) == "host" {
		g.held = append(g.held, c)
		g.mu.Unlock()
		return
	}
	if fam == 6 {
		if !g.v6 && !g.open {
			// Late after the settle time: the head start still counts
			// from the first candidate.
			gen := g.gen
			time.AfterFunc(max(0, ipv6HeadStart-time.Since(g.start)), func() { g.tick(gen) })
		}
		g.v6 = true
		g.routable = g.routable || !isLinkLocal(c)
	}
	var held []webrtc.ICECandidateInit
	if !g.open && !g.v6 && candidateType(c) != "host" {
		// The host candidates are all out, none of them IPv6: nothing to
		// wait for.
		g.open, held, g.held = true, g.held, nil
	}
	if !g.open && fam == 4 {
		g.held = append(g.held, c)
		g.mu.Unlock()
		return
	}
	g.emitMu.Lock() // before unlocking mu: candidates leave in order
	g.mu.Unlock()
	defer g.emitMu.Unlock()
	for _, h := range held {
		g.emit(h)
	}
	g.emit(c)
}

// done is the end of a gathering: without an IPv6 candidate there is
// nothing to wait for.
func (g *familyGate) done() {
	g.mu.Lock()
	if g.closed || g.open || g.v6 || g.start.IsZero() {
		g.mu.Unlock()
		return
	}
	g.openLocked()
}

// tick ends the settle time or the head start.
func (g *familyGate) tick(gen int) {
	g.mu.Lock()
	if g.closed || g.open || gen != g.gen {
		g.mu.Unlock()
		return
	}
	if rest := ipv6HeadStart - time.Since(g.start); g.v6 && rest > 0 {
		g.timer = time.AfterFunc(rest, func() { g.tick(gen) })
		g.mu.Unlock()
		return
	}
	if !g.v6 && !g.hold {
		if rest := ipv6SettleMax - time.Since(g.start); rest > 0 {
			g.timer = time.AfterFunc(rest, func() { g.tick(gen) })
			g.mu.Unlock()
			return
		}
	}
	if g.hold && (g.routable || !g.v6) {
		// No timer here: on a loaded machine the IPv6 host candidate
		// can come after the settle time. release, the first
		// non-host candidate or the end of the gathering opens.
		g.mu.Unlock()
		return
	}
	g.openLocked()
}

// openLocked lets IPv4 candidates pass and passes on those held, in
// order; g.mu is held on entry and released.
func (g *familyGate) openLocked() {
	g.open = true
	held := g.held
	g.held = nil
	g.emitMu.Lock() // before unlocking mu: candidates leave in order
	g.mu.Unlock()
	defer g.emitMu.Unlock()
	for _, c := range held {
		g.emit(c)
	}
}

// reset starts over for a new gathering (an ICE restart), passing on
// what it holds first.
func (g *familyGate) reset() {
	g.mu.Lock()
	if g.timer != nil {
		g.timer.Stop()
	}
	if g.remoteTimer != nil {
		g.remoteTimer.Stop()
	}
	held, remote := g.held, g.remoteHeld
	g.start, g.v6, g.routable, g.open, g.held, g.timer = time.Time{}, false, false, false, nil, nil
	g.hold, g.remoteV6, g.remoteOpen, g.remoteHeld, g.remoteTimer = false, false, false, nil, nil
	g.gen++
	closed := g.closed
	g.emitMu.Lock()
	g.mu.Unlock()
	defer g.emitMu.Unlock()
	if closed {
		return
	}
	for _, c := range held {
		g.emit(c)
	}
	for _, c := range remote {
		g.addRemote(c)
	}
}

// stop drops held candidates. It does not wait for one being passed on:
// that may be blocked on whatever is closing the Peer.
func (g *familyGate) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	g.held, g.remoteHeld = nil, nil
	if g.timer != nil {
		g.timer.Stop()
	}
	if g.remoteTimer != nil {
		g.remoteTimer.Stop()
	}
}

// candidateFamily is 4 or 6 for a candidate with an IP address, 0 for
// others (an mDNS name, or one it cannot parse).
// candidateType is the "typ" of a candidate line (host, srflx, prflx,
// relay), "" if it has none.
func candidateType(c webrtc.ICECandidateInit) string {
	f := strings.Fields(c.Candidate)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "typ" {
			return f[i+1]
		}
	}
	return ""
}

// isLinkLocal tells whether c's address is a link-local one.
func isLinkLocal(c webrtc.ICECandidateInit) bool {
	f := strings.Fields(c.Candidate)
	if len(f) < 5 {
		return false
	}
	ip := net.ParseIP(f[4])
	return ip != nil && ip.IsLinkLocalUnicast()
}

func candidateFamily(c webrtc.ICECandidateInit) int {
	f := strings.Fields(c.Candidate)
	if len(f) < 5 {
		return 0
	}
	ip := net.ParseIP(f[4])
	switch {
	case ip == nil:
		return 0
	case ip.To4() != nil && !strings.Contains(f[4], ":"):
		return 4
	}
	return 6
}
