package sip

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/icholy/digest"
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
)

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
