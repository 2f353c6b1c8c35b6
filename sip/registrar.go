package sip

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"go.etcd.io/bbolt"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/share"
)

// binding is where a registered phone is reached: one per address of
// record (the newest REGISTER's contact wins).
type binding struct {
	AOR       string `json:"aor"`       // the user part
	Contact   string `json:"contact"`   // the Contact URI the phone registered
	Source    string `json:"source"`    // host:port the REGISTER came from (RFC 3581)
	Transport string `json:"transport"` // UDP or TCP
	Expires   int64  `json:"expires"`   // Unix ms
	TTL       int64  `json:"ttl"`       // seconds granted
	Terminal  string `json:"terminal"`  // the share handle
	Name      string `json:"name,omitempty"`
	Phone     string `json:"phone,omitempty"`
	// diskExpires is the Expires last written.
	diskExpires int64
}

// Bindings lists the registered phones.
func (s *Server) Bindings() []client.SIPBinding {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]client.SIPBinding, 0, len(s.bindings))
	for _, b := range s.bindings {
		out = append(out, client.SIPBinding{AOR: b.AOR, Contact: b.Contact, Source: b.Source, Transport: b.Transport,
			Terminal: b.Terminal, ExpiresAt: time.UnixMilli(b.Expires).UTC()})
	}
	return out
}

// register is a parsed REGISTER.
type register struct {
	aor      string
	display  string
	contact  string        // "" for a query
	wildcard bool          // Contact: *
	expires  time.Duration // -1: none given
}

var errMalformed = errors.New("malformed REGISTER")

// parseRegister reads what the registrar needs from a REGISTER; errors
// wrap errMalformed.
func parseRegister(req *sip.Request) (register, error) {
	var r register
	to, from := req.To(), req.From()
	if to == nil || from == nil || req.CallID() == nil || req.CSeq() == nil {
		return r, fmt.Errorf("%w: missing To, From, Call-ID or CSeq", errMalformed)
	}
	r.aor = to.Address.User
	if err := validUser(r.aor); err != nil {
		return r, fmt.Errorf("%w: %v", errMalformed, err)
	}
	r.display = to.DisplayName
	if r.display == "" {
		r.display = from.DisplayName
	}
	if len(r.display) > MaxNameLen {
		return r, fmt.Errorf("%w: display name over %d bytes", errMalformed, MaxNameLen)
	}
	r.expires = -1
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return r, fmt.Errorf("%w: Expires %q", errMalformed, h.Value())
		}
		r.expires = time.Duration(v) * time.Second
	}
	contacts := req.GetHeaders("Contact")
	if len(contacts) > 8 {
		return r, fmt.Errorf("%w: %d contacts", errMalformed, len(contacts))
	}
	for _, h := range contacts {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return r, fmt.Errorf("%w: Contact", errMalformed)
		}
		if c.Address.Wildcard {
			if len(contacts) != 1 || r.expires != 0 {
				return r, fmt.Errorf("%w: Contact * needs Expires: 0 and no other contact", errMalformed)
			}
			r.wildcard = true
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			e, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return r, fmt.Errorf("%w: Contact expires %q", errMalformed, v)
			}
			// The last contact counts: one binding per AOR.
			r.expires = time.Duration(e) * time.Second
		}
		if c.Address.Host == "" {
			return r, fmt.Errorf("%w: Contact without host", errMalformed)
		}
		r.contact = c.Address.String()
		if len(r.contact) > 512 {
			return r, fmt.Errorf("%w: Contact over 512 bytes", errMalformed)
		}
	}
	return r, nil
}

// onRegister is the registrar (RFC 3261 section 10.3).
func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r, err := parseRegister(req)
	if err != nil {
		s.m.dropped.WithLabelValues("malformed").Inc()
		s.m.registers.WithLabelValues("malformed").Inc()
		s.refuse(tx, req, 400, "Bad Request")
		return
	}
	now := s.o.Now()
	srcIP := sourceIP(req.Source())
	var usr User
	authz := ""
	if h := req.GetHeader("Authorization"); h != nil {
		authz = h.Value()
	}
	if authz == "" && s.open(srcIP) {
		usr = User{User: r.aor}
	} else {
		usr, err = s.authenticate(authz, string(req.Method), r.aor, srcIP, now)
		if err == nil {
			// Each answer registers once: a captured REGISTER replayed
			// from elsewhere would move the binding (and the calls) there.
			// A phone counts nc up or takes a new nonce; one that resends
			// its answer gets a new (stale) challenge.
			cred, _ := digest.ParseCredentials(authz) // verify parsed it
			if !s.used.first(usedKey(cred), now) {
				err = errStale
			}
		}
		if err != nil {
			s.refuseAuth(req, tx, err, r.aor, now, s.m.registers)
			return
		}
	}

	if r.contact == "" && !r.wildcard { // a query: the current binding
		s.respondBindings(tx, req, r.aor, now)
		return
	}
	if r.expires == 0 {
		s.unbind(r.aor)
		s.m.registers.WithLabelValues("removed").Inc()
		s.respond(tx, req, 200, "OK")
		return
	}
	if r.expires < 0 {
		r.expires = DefaultExpires
	}
	if r.expires < s.o.MinExpires {
		s.m.registers.WithLabelValues("too_brief").Inc()
		s.respond(tx, req, 423, "Interval Too Brief",
			sip.NewHeader("Min-Expires", strconv.Itoa(int(s.o.MinExpires/time.Second))))
		return
	}
	max := s.o.MaxExpires
	if strings.EqualFold(req.Transport(), "UDP") {
		max = s.o.MaxExpiresUDP
	}
	r.expires = min(r.expires, max)
	if err := s.bind(r, usr, req, srcIP, now); err != nil {
		s.m.registers.WithLabelValues("refused").Inc()
		s.log.Info("SIP registration not stored", "aor", r.aor, "err", err)
		switch {
		case errors.Is(err, share.ErrForbidden) || errors.Is(err, share.ErrInvalid):
			s.respond(tx, req, 403, "Forbidden")
		case errors.Is(err, share.ErrFull):
			s.respond(tx, req, 503, "Service Unavailable")
		default:
			s.respond(tx, req, 500, "Server Internal Error")
		}
		return
	}
	s.m.registers.WithLabelValues("ok").Inc()
	s.respondBindings(tx, req, r.aor, now)
}

// respondBindings answers 200 with the AOR's binding, if any.
func (s *Server) respondBindings(tx sip.ServerTransaction, req *sip.Request, aor string, now time.Time) {
	s.mu.Lock()
	b := s.bindings[aor]
	var hdr sip.Header
	if b != nil {
		left := max(0, time.UnixMilli(b.Expires).Sub(now).Round(time.Second)/time.Second)
		hdr = sip.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(int(left)))
	}
	s.mu.Unlock()
	if hdr == nil {
		s.respond(tx, req, 200, "OK")
		return
	}
	s.respond(tx, req, 200, "OK", hdr, sip.NewHeader("Date", now.UTC().Format(time.RFC1123)))
}

// open reports whether ip may register without credentials.
func (s *Server) open(ip netip.Addr) bool {
	for _, p := range s.o.OpenNets {
		if ip.IsValid() && p.Contains(ip) {
			return true
		}
	}
	return false
}

func sourceIP(hostport string) netip.Addr {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.Addr{}
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

// isNumber reports whether a user part is written like a phone number.
func isNumber(u string) bool {
	u = strings.TrimPrefix(u, "+")
	if len(u) < 3 {
		return false
	}
	for _, c := range []byte(u) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// bind stores a binding and registers (or refreshes) its terminal.
func (s *Server) bind(r register, usr User, req *sip.Request, srcIP netip.Addr, now time.Time) error {
	nb := &binding{
		AOR: r.aor, Contact: r.contact, Source: req.Source(), Transport: strings.ToUpper(req.Transport()),
		Expires: now.Add(r.expires).UnixMilli(), TTL: int64((r.expires + ttlGrace) / time.Second),
		Name: usr.Name, Phone: usr.Phone,
	}
	if nb.Name == "" {
		nb.Name = r.display
	}
	if nb.Phone == "" && isNumber(r.aor) && s.o.Normalizer != nil {
		if _, err := s.o.Normalizer.Phone(r.aor); err == nil {
			nb.Phone = r.aor
		}
	}
	s.mu.Lock()
	old := s.bindings[r.aor]
	s.mu.Unlock()

	refreshed := false
	if old != nil && old.Terminal != "" && old.Contact == nb.Contact && old.Source == nb.Source &&
		old.TTL == nb.TTL && old.Name == nb.Name && old.Phone == nb.Phone {
		if _, err := s.o.Directory.Heartbeat(old.Terminal); err == nil {
			nb.Terminal, refreshed = old.Terminal, true
		}
	}
	if !refreshed {
		reg := client.Registration{
			Name: nb.Name, UID: r.aor, Phone: nb.Phone, TTL: int(nb.TTL),
		}
		if srcIP.IsValid() {
			reg.Address = srcIP.String()
		}
		ack, err := s.o.Directory.RegisterChecked(reg, nil)
		if err != nil {
			return err
		}
		nb.Terminal = ack.Terminal
	}
	write := !refreshed || nb.Expires-old.diskExpires > nb.TTL*1000/2
	if !write {
		nb.diskExpires = old.diskExpires
	} else {
		if err := s.putBinding(nb); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.bindings[r.aor] = nb
	s.mu.Unlock()
	s.attach(r.aor, nb.Terminal)
	return nil
}

func (s *Server) putBinding(b *binding) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if err := s.db.Batch(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketBindings).Put([]byte(b.AOR), data)
	}); err != nil {
		return fmt.Errorf("sip: store binding %q: %w", b.AOR, err)
	}
	b.diskExpires = b.Expires
	return nil
}

// unbind removes an AOR's binding and its terminal.
func (s *Server) unbind(aor string) {
	s.mu.Lock()
	b := s.bindings[aor]
	delete(s.bindings, aor)
	s.mu.Unlock()
	if b == nil {
		return
	}
	s.detach(aor)
	if err := s.db.Batch(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketBindings).Delete([]byte(aor))
	}); err != nil {
		s.log.Warn("SIP binding not removed from disk", "aor", aor, "err", err)
	}
	if err := s.o.Directory.Remove(b.Terminal); err != nil && !errors.Is(err, share.ErrNotFound) {
		s.log.Warn("SIP terminal not removed", "aor", aor, "terminal", b.Terminal, "err", err)
	}
}

// loadBindings reads the stored bindings; expired ones are dropped.
func (s *Server) loadBindings() error {
	now := s.o.Now().UnixMilli()
	var drop [][]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketBindings).ForEach(func(k, v []byte) error {
			var b binding
			if json.Unmarshal(v, &b) != nil || b.AOR != string(k) || b.Expires <= now {
				drop = append(drop, append([]byte(nil), k...))
				return nil
			}
			b.diskExpires = b.Expires
			s.bindings[b.AOR] = &b
			return nil
		})
	})
	if err != nil || len(drop) == 0 {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, k := range drop {
			if err := tx.Bucket(bucketBindings).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// sweep removes bindings past their expiry (their terminals too).
func (s *Server) sweep(now time.Time) {
	s.mu.Lock()
	var gone []string
	for aor, b := range s.bindings {
		if b.Expires <= now.UnixMilli() {
			gone = append(gone, aor)
		}
	}
	s.mu.Unlock()
	for _, aor := range gone {
		s.log.Debug("SIP binding expired", "aor", aor)
		s.unbind(aor)
	}
}
