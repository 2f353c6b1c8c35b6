package phone

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/client"
)

// MaxParties is the largest conference the mesh is meant for: each party
// sends its audio once per other party, so upstream bandwidth and CPU grow
// with the number of parties. Add refuses more.
const MaxParties = 6

// legRetries bounds the attempts to reach a party of the roster, which
// may still be busy at its node or not yet know the conference.
const legRetries = 8

// ErrFull is returned by [Conference.Add] when the conference has
// MaxParties parties.
var ErrFull = errors.New("conference full")

// rosterMsg is the control message on a leg's data channel that tells the
// other party whom else the sender is connected to in the conference.
type rosterMsg struct {
	Type       string         `json:"type"` // "roster"
	Conference string         `json:"conference"`
	Parties    []signal.Party `json:"parties"`
}

// Conference is a call with several parties: a mesh in which every pair of
// parties has its own Call. Its methods are safe for concurrent use.
type Conference struct {
	p    *Phone
	id   string
	opts CallOptions // for the legs this side dials
	done chan struct{}

	mu      sync.Mutex
	legs    map[string]*Call // by partyKey of the remote party
	dialing map[string]bool
	started bool // a leg has existed
	ended   bool
	// host is the leg that invited this phone into the conference (nil
	// on the caller's side): when it ends, the caller has left, and so
	// does this phone, with all its legs.
	host *Call
}

// partyKey names a terminal network-wide.
func partyKey(pt signal.Party) string { return pt.Node + "/" + pt.Terminal }

// newConference registers a conference with the Phone; nil if it is closing.
func (p *Phone) newConference(id string, o CallOptions) *Conference {
	o.HangupAfter = 0 // a leg does not end the conference
	cf := &Conference{p: p, id: id, opts: o, done: make(chan struct{}), legs: map[string]*Call{}, dialing: map[string]bool{}}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.confs[id]; old != nil {
		return old
	}
	p.confs[id] = cf
	return cf
}

// Conference calls several parties at once (see the package doc). It
// returns when every invitation has been answered, with the conference if
// at least one party is connected, else with the first error.
func (p *Phone) Conference(ctx context.Context, to []client.Result, o CallOptions) (*Conference, error) {
	if len(to) == 0 {
		return nil, fmt.Errorf("%w: nobody to call", ErrFailed)
	}
	if len(to)+1 > MaxParties {
		return nil, fmt.Errorf("%w: %d parties, at most %d", ErrFull, len(to)+1, MaxParties)
	}
	cf := p.newConference(newCallID(), o)
	// Counted as dialing, so that a first refusal does not end the
	// conference before the other legs exist.
	cf.mu.Lock()
	for _, r := range to {
		cf.dialing[r.Node+"/"+r.Terminal] = true
	}
	cf.mu.Unlock()
	errs := make([]error, len(to))
	var wg sync.WaitGroup
	for i, r := range to {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = cf.p.call(ctx, r, cf.opts, cf)
			cf.mu.Lock()
			delete(cf.dialing, r.Node+"/"+r.Terminal)
			cf.mu.Unlock()
		}()
	}
	wg.Wait()
	if cf.Legs() == 0 {
		cf.end()
		return nil, errors.Join(errs...)
	}
	return cf, nil
}

// ID is the conference's 128-bit ID in hex, shared by all its parties.
func (cf *Conference) ID() string { return cf.id }

// Done is closed when the conference has ended: its last leg ended, or
// Hangup.
func (cf *Conference) Done() <-chan struct{} { return cf.done }

// Legs is the number of calls of the conference (set up or running).
func (cf *Conference) Legs() int {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	return len(cf.legs)
}

// Calls are the conference's calls, one per other party.
func (cf *Conference) Calls() []*Call {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	cs := make([]*Call, 0, len(cf.legs))
	for _, c := range cf.legs {
		cs = append(cs, c)
	}
	return cs
}

// Add invites another party into the running conference (a search result,
// as for [Phone.Call]); once it is connected, every other party learns of
// it and connects to it too. Errors are those of Phone.Call, or ErrFull.
func (cf *Conference) Add(ctx context.Context, to client.Result) (*Call, error) {
	cf.mu.Lock()
	full := len(cf.legs)+len(cf.dialing)+1 >= MaxParties
	cf.mu.Unlock()
	if full {
		return nil, ErrFull
	}
	return cf.p.call(ctx, to, cf.opts, cf)
}

// Hangup leaves the conference: it hangs up every leg and waits for them
// to end. The other parties go on without this one.
func (cf *Conference) Hangup() error {
	cf.end()
	for _, c := range cf.Calls() {
		c.Hangup()
	}
	return nil
}

// end marks the conference over for this Phone: later legs of it are
// refused.
func (cf *Conference) end() {
	cf.mu.Lock()
	if cf.ended {
		cf.mu.Unlock()
		return
	}
	cf.ended = true
	cf.mu.Unlock()
	p := cf.p
	p.mu.Lock()
	if p.confs[cf.id] == cf {
		delete(p.confs, cf.id)
	}
	p.left[cf.id] = time.Now()
	for id, at := range p.left { // forget old ones
		if time.Since(at) > time.Hour {
			delete(p.left, id)
		}
	}
	p.mu.Unlock()
	close(cf.done)
}

// addLeg records a call of the conference; false if the conference is over.
func (cf *Conference) addLeg(c *Call) bool {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.ended {
		return false
	}
	cf.legs[partyKey(c.remote)] = c
	cf.started = true
	return true
}

// setHost records the leg that invited this phone, unless one was.
func (cf *Conference) setHost(c *Call) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.host == nil {
		cf.host = c
	}
}

// removeLeg forgets an ended call; the conference ends with its last leg,
// or with the leg to the party that invited this phone: when the caller
// leaves, every leg of the conference ends.
func (cf *Conference) removeLeg(c *Call) {
	cf.mu.Lock()
	k := partyKey(c.remote)
	if cf.legs[k] == c {
		delete(cf.legs, k)
	}
	hostLeft := cf.host == c
	last := len(cf.legs) == 0 && len(cf.dialing) == 0 && cf.started
	var rest []*Call
	if hostLeft {
		for _, l := range cf.legs {
			rest = append(rest, l)
		}
	}
	cf.mu.Unlock()
	if last || hostLeft {
		cf.end()
	}
	for _, l := range rest {
		cf.p.log.Info("The conference's caller left", "call", l.id, "conference", cf.id)
		l.requestHangup("conference over")
	}
}

// broadcast tells every leg whose data channel is open whom else this side
// is connected to.
func (cf *Conference) broadcast() {
	legs := cf.Calls()
	for _, to := range legs {
		peer := to.Peer()
		if peer == nil || !to.isLive() {
			continue
		}
		msg := rosterMsg{Type: "roster", Conference: cf.id}
		for _, c := range legs {
			if c != to && c.isLive() {
				msg.Parties = append(msg.Parties, c.remote)
			}
		}
		b, err := json.Marshal(msg)
		if err != nil {
			continue
		}
		if err := peer.SendControl(b); err != nil {
			cf.p.log.Debug("Sending the roster failed", "call", to.id, "err", err)
		}
	}
}

// merge takes a roster from another party: it dials the parties it has no
// leg with and whose key sorts after its own; the others dial it.
func (cf *Conference) merge(parties []signal.Party) {
	self := partyKey(*cf.p.self())
	for _, pt := range parties {
		k := partyKey(pt)
		if k == self || pt.Node == "" || pt.Terminal == "" || self > k {
			continue
		}
		cf.mu.Lock()
		skip := cf.ended || cf.legs[k] != nil || cf.dialing[k] || len(cf.legs)+len(cf.dialing)+1 >= MaxParties
		if !skip {
			cf.dialing[k] = true
		}
		cf.mu.Unlock()
		if skip {
			continue
		}
		cf.p.wg.Add(1)
		go func() {
			defer cf.p.wg.Done()
			cf.dial(pt)
		}()
	}
}

// dial calls a party of the roster, retrying while it is busy or
// unavailable (its node still has it busy, or it does not know the
// conference yet).
func (cf *Conference) dial(pt signal.Party) {
	k := partyKey(pt)
	defer func() {
		cf.mu.Lock()
		delete(cf.dialing, k)
		empty := len(cf.legs) == 0 && cf.started
		cf.mu.Unlock()
		if empty {
			cf.end()
		}
	}()
	to := client.Result{Node: pt.Node, Terminal: pt.Terminal, Identifiers: pt.Identifiers, Key: pt.Key, Private: pt.Private}
	backoff := 250 * time.Millisecond
	for range legRetries {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-cf.done:
			case <-ctx.Done():
			}
			cancel()
		}()
		_, err := cf.p.call(ctx, to, cf.opts, cf)
		cancel()
		if err == nil || !(errors.Is(err, ErrBusy) || errors.Is(err, ErrUnavailable)) {
			return
		}
		select {
		case <-cf.done:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 4*time.Second)
	}
}

// validID reports whether id looks like newCallID's output.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// legRecordPath is where a leg of a conference records when the
// conference was given one file: "-<party>" goes before the extension.
func legRecordPath(file, who string) string {
	ext := filepath.Ext(file)
	base := strings.TrimSuffix(file, ext)
	if ext == "" {
		ext = ".ogg" // recordings are Ogg/Opus whatever the name given
	}
	return base + "-" + who + ext
}
