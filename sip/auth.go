package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"
)

// nonceLifetime is how long a challenge's nonce is accepted; older ones
// get a new challenge with stale=true (RFC 7616 section 3.3), so a phone
// retries without asking its user.
const nonceLifetime = 5 * time.Minute

// maxAuthHeader bounds the Authorization header the node parses.
const maxAuthHeader = 2048

// nonces makes and checks stateless nonces: the issue time and an HMAC of
// it under a key that lives as long as the process.
type nonces struct{ key [32]byte }

func newNonces() *nonces {
	n := &nonces{}
	rand.Read(n.key[:])
	return n
}

func (n *nonces) make(now time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	m := hmac.New(sha256.New, n.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// check reports whether nonce is one of ours (ok) and whether it is still
// fresh.
func (n *nonces) check(nonce string, now time.Time) (ok, fresh bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false, false
	}
	m := hmac.New(sha256.New, n.key[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return false, false
	}
	t := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	age := now.Sub(t)
	return true, age >= -time.Second && age <= nonceLifetime
}

// challenges are the WWW-Authenticate values for a 401, one per
// algorithm in order of preference (RFC 8760 section 2.4).
func (n *nonces) challenges(realm string, algs []string, now time.Time, stale bool) []string {
	nonce := n.make(now)
	out := make([]string, 0, len(algs))
	for _, alg := range algs {
		c := digest.Challenge{Realm: realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// Reasons a digest check fails.
var (
	errNoCredentials  = errors.New("no digest credentials")
	errBadCredentials = errors.New("malformed digest credentials")
	errStale          = errors.New("stale nonce")
	errDenied         = errors.New("wrong user or password")
	errLimited        = errors.New("too many wrong passwords (not checked)")
)

// authenticate is verify behind the limits of password guessing
// (guard.go) for a request from src.
func (s *Server) authenticate(header, method, aor string, src netip.Addr, now time.Time) (User, error) {
	if header == "" {
		return User{}, errNoCredentials
	}
	s.mu.Lock()
	var home netip.Addr
	if b := s.bindings[aor]; b != nil {
		home = sourceIP(b.Source)
	}
	s.mu.Unlock()
	if bySource, byUser := s.guesses.blocked(src, aor, home, now); bySource || byUser {
		return User{}, errLimited
	}
	usr, err := s.verify(header, method, aor, now)
	if errors.Is(err, errDenied) {
		_, known := s.users.get(aor)
		bySource, byUser := s.guesses.failed(src, aor, known, now)
		if bySource {
			s.log.Warn("SIP password guesses limited: source", "source", src, "user", aor)
		}
		if byUser {
			s.log.Warn("SIP password guesses limited: user", "user", aor, "source", src)
		}
	}
	return usr, err
}

// usedKey is what tells one digest answer from another, against replay.
func usedKey(cred *digest.Credentials) string {
	return cred.Nonce + "\x00" + cred.Cnonce + "\x00" + strconv.Itoa(cred.Nc) + "\x00" + cred.Response
}

// verify checks an Authorization header value against the user store for
// a request with method and the AOR user aor. It returns the user on
// success; errStale when only the nonce has expired.
func (s *Server) verify(header, method, aor string, now time.Time) (User, error) {
	if header == "" {
		return User{}, errNoCredentials
	}
	if len(header) > maxAuthHeader || !digest.IsDigest(header) {
		return User{}, errBadCredentials
	}
	cred, err := digest.ParseCredentials(header)
	if err != nil || cred.Username == "" || cred.Response == "" || cred.URI == "" {
		return User{}, errBadCredentials
	}
	if cred.Userhash {
		return User{}, errDenied
	}
	usr, known := s.users.get(cred.Username)
	// A user registers only its own address of record.
	if !known || cred.Username != aor || cred.Realm != usr.Realm {
		return User{}, errDenied
	}
	ours, fresh := s.nonces.check(cred.Nonce, now)
	if !ours {
		return User{}, errDenied
	}
	var a1 string
	switch strings.ToUpper(cred.Algorithm) {
	case "", "MD5":
		a1 = usr.HA1MD5
	case "SHA-256":
		a1 = usr.HA1SHA256
	default:
		return User{}, errBadCredentials
	}
	chal := &digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, Opaque: cred.Opaque}
	if cred.QOP != "" {
		if cred.QOP != "auth" || cred.Cnonce == "" || cred.Nc == 0 {
			return User{}, errBadCredentials
		}
		chal.QOP = []string{"auth"}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: cred.URI, Username: cred.Username, A1: a1,
		Cnonce: cred.Cnonce, Count: cred.Nc,
	})
	if err != nil {
		return User{}, errBadCredentials
	}
	if subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(cred.Response))) != 1 {
		return User{}, errDenied
	}
	if !fresh {
		return User{}, errStale
	}
	return usr, nil
}

// maxUsedCredentials bounds the credentials remembered against replay.
const maxUsedCredentials = 1 << 16

// usedCredentials remembers the digest credentials that placed a call,
// for as long as their nonce is accepted: a credential seen again is a
// replay (a phone counts nc up or takes a new nonce for each INVITE).
type usedCredentials struct {
	mu   sync.Mutex
	seen map[string]time.Time // by nonce, cnonce, nc and response: when it expires
}

// first records key and reports whether it was not seen before. When the
// table is full of live entries an eighth of them, any, are forgotten:
// refusing every new answer would let whoever fills the table (any user,
// registering fast) lock every phone out; forgetting only lets an answer
// seen before be replayed, by someone who captured it, while the table is
// flooded.
func (u *usedCredentials) first(key string, now time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = map[string]time.Time{}
	}
	if _, ok := u.seen[key]; ok {
		return false
	}
	if len(u.seen) >= maxUsedCredentials {
		for k, exp := range u.seen {
			if !now.Before(exp) {
				delete(u.seen, k)
			}
		}
		for k := range u.seen { // map order: any
			if len(u.seen) <= maxUsedCredentials*7/8 {
				break
			}
			delete(u.seen, k)
		}
	}
	u.seen[key] = now.Add(nonceLifetime + time.Second)
	return true
}

// inviteCredentials is the digest answer an INVITE carries: to a 407
// (Proxy-Authorization) or a 401 (Authorization).
func inviteCredentials(req *sip.Request) string {
	for _, name := range []string{"Proxy-Authorization", "Authorization"} {
		if h := req.GetHeader(name); h != nil {
			return h.Value()
		}
	}
	return ""
}

// refuseAuth answers a request whose digest check failed with err, and
// counts the answer in results: a new challenge when there were no
// credentials or the nonce is stale (401 WWW-Authenticate to a REGISTER,
// 407 Proxy-Authenticate to an INVITE), 400 to malformed credentials,
// 403 (logged, with err as the reason) otherwise.
func (s *Server) refuseAuth(req *sip.Request, tx sip.ServerTransaction, err error, user string, now time.Time, results *prometheus.CounterVec) {
	defer tx.Terminate() // as refuse does
	switch {
	case errors.Is(err, errNoCredentials), errors.Is(err, errStale):
		results.WithLabelValues("challenged").Inc()
		code, reason, name := 401, "Unauthorized", "WWW-Authenticate"
		if req.Method == sip.INVITE {
			code, reason, name = 407, "Proxy Authentication Required", "Proxy-Authenticate"
		}
		var hdrs []sip.Header
		for _, c := range s.nonces.challenges(s.o.Realm, s.o.Algorithms, now, errors.Is(err, errStale)) {
			hdrs = append(hdrs, sip.NewHeader(name, c))
		}
		s.respond(tx, req, code, reason, hdrs...)
	case errors.Is(err, errLimited): // logged when the limit began
		s.m.dropped.WithLabelValues("guesses").Inc()
		results.WithLabelValues("limited").Inc()
		s.respond(tx, req, 403, "Forbidden")
	case errors.Is(err, errBadCredentials):
		s.m.dropped.WithLabelValues("malformed").Inc()
		results.WithLabelValues("malformed").Inc()
		s.respond(tx, req, 400, "Bad Request")
	default:
		results.WithLabelValues("forbidden").Inc()
		s.log.Info("SIP request refused", "method", req.Method, "user", user, "source", req.Source(), "why", err)
		s.respond(tx, req, 403, "Forbidden")
	}
}

// sameTarget reports whether a digest's uri names the Request-URI: the
// same host and port and, when it has a user part, the same user (the
// callee), so that credentials for one callee do not place a call to
// another. (Some clients, SIPp among them, leave the user part out.)
func sameTarget(digestURI string, ruri sip.Uri) bool {
	var u sip.Uri
	if sip.ParseUri(digestURI, &u) != nil {
		return false
	}
	port := func(p int) int {
		if p == 0 {
			return 5060
		}
		return p
	}
	return (u.User == "" || u.User == ruri.User) && strings.EqualFold(u.Host, ruri.Host) && port(u.Port) == port(ruri.Port)
}

// authorizeInvite decides whether an INVITE outside a dialog may place a
// call, and answers it when not. A phone authenticates as the user of its
// From address with a digest answer to a 407 (the same algorithms and
// nonces as REGISTER; each credential places one call); that user must be
// registered here. From a trusted network (Options.OpenNets) an INVITE
// without credentials is taken from the From user when the phone
// registered from the same address. It returns the caller's binding, nil
// when the INVITE was refused (401/403/407/400, counted).
func (s *Server) authorizeInvite(req *sip.Request, tx sip.ServerTransaction) *binding {
	from := req.From()
	if from == nil || validUser(from.Address.User) != nil {
		s.m.dropped.WithLabelValues("malformed").Inc()
		s.m.invites.WithLabelValues("malformed").Inc()
		s.refuse(tx, req, 400, "Bad Request")
		return nil
	}
	user := from.Address.User
	src := sourceIP(req.Source())
	now := s.o.Now()
	creds := inviteCredentials(req)
	forbid := func(why string) *binding {
		s.refuseAuth(req, tx, errors.New(why), user, now, s.m.invites)
		return nil
	}
	if creds == "" && s.open(src) {
		s.mu.Lock()
		b := s.bindings[user]
		s.mu.Unlock()
		if b == nil || sourceIP(b.Source) != src {
			return forbid("not registered from this address")
		}
		s.m.invites.WithLabelValues("trusted").Inc()
		return b
	}
	usr, err := s.authenticate(creds, string(sip.INVITE), user, src, now)
	if err == nil {
		cred, _ := digest.ParseCredentials(creds) // verify parsed it
		switch {
		case !sameTarget(cred.URI, req.Recipient):
			return forbid("credentials for another request URI")
		case !s.used.first(usedKey(cred), now):
			err = errStale // a replay, or a phone reusing its answer: a new nonce
		}
	}
	if err != nil {
		s.refuseAuth(req, tx, err, user, now, s.m.invites)
		return nil
	}
	s.mu.Lock()
	b := s.bindings[usr.User]
	s.mu.Unlock()
	if b == nil {
		return forbid("not registered")
	}
	s.m.invites.WithLabelValues("authorized").Inc()
	return b
}
