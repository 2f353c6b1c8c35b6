package sip

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/irmv/irmv/client"
)

// Limits of the credentials an operator sets.
const (
	MaxUserLen     = 64
	MaxPasswordLen = 256
	MaxNameLen     = 256
)

var (
	bucketUsers    = []byte("users")
	bucketBindings = []byte("bindings")
)

// User is a SIP user's credentials as the operator set them. The password
// is kept only as HA1 hashes, H(user:realm:password), one per digest
// algorithm (RFC 8760): it is never stored in clear.
type User struct {
	User  string `json:"user"`
	Realm string `json:"realm"`
	// Name and Phone, if set, are the identifiers the phone is registered
	// with (else its display name and, when it is a number, its user part).
	Name      string `json:"name,omitempty"`
	Phone     string `json:"phone,omitempty"`
	HA1MD5    string `json:"ha1_md5"`
	HA1SHA256 string `json:"ha1_sha256"`
}

// ha1 is H(user:realm:password) in lower-case hex.
func ha1(h hash.Hash, user, realm, password string) string {
	h.Write([]byte(user + ":" + realm + ":" + password))
	return hex.EncodeToString(h.Sum(nil))
}

// validUser accepts SIP user parts an operator may give: letters, digits
// and . _ + - (RFC 3261's unreserved set without escapes), at most
// MaxUserLen bytes.
func validUser(u string) error {
	if u == "" || len(u) > MaxUserLen {
		return fmt.Errorf("%w: user: want 1..%d characters", ErrInvalid, MaxUserLen)
	}
	for _, c := range []byte(u) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._+-", c) >= 0) {
			return fmt.Errorf("%w: user %q: only letters, digits and . _ + - are allowed", ErrInvalid, u)
		}
	}
	return nil
}

func checkNewUser(nu client.SIPUser) error {
	if err := validUser(nu.User); err != nil {
		return err
	}
	if nu.Password == "" || len(nu.Password) > MaxPasswordLen {
		return fmt.Errorf("%w: password: want 1..%d bytes", ErrInvalid, MaxPasswordLen)
	}
	if len(nu.Name) > MaxNameLen || len(nu.Phone) > MaxNameLen {
		return fmt.Errorf("%w: name, phone: at most %d bytes", ErrInvalid, MaxNameLen)
	}
	return nil
}

// users is the credential store: in memory, written through to bbolt.
type users struct {
	db    *bbolt.DB
	realm string
	mu    sync.RWMutex
	byU   map[string]User
}

func loadUsers(db *bbolt.DB, realm string) (*users, error) {
	u := &users{db: db, realm: realm, byU: map[string]User{}}
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).ForEach(func(k, v []byte) error {
			var usr User
			if json.Unmarshal(v, &usr) == nil && usr.User == string(k) {
				u.byU[usr.User] = usr
			}
			return nil
		})
	})
	return u, err
}

func (u *users) get(name string) (User, bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	usr, ok := u.byU[name]
	return usr, ok
}

func (u *users) set(nu client.SIPUser) (client.SIPUserInfo, error) {
	if err := checkNewUser(nu); err != nil {
		return client.SIPUserInfo{}, err
	}
	usr := User{
		User: nu.User, Realm: u.realm, Name: nu.Name, Phone: nu.Phone,
		HA1MD5:    ha1(md5.New(), nu.User, u.realm, nu.Password),
		HA1SHA256: ha1(sha256.New(), nu.User, u.realm, nu.Password),
	}
	data, err := json.Marshal(usr)
	if err != nil {
		return client.SIPUserInfo{}, err
	}
	if err := u.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).Put([]byte(usr.User), data)
	}); err != nil {
		return client.SIPUserInfo{}, fmt.Errorf("sip: store user %q: %w", usr.User, err)
	}
	u.mu.Lock()
	u.byU[usr.User] = usr
	u.mu.Unlock()
	return usr.info(), nil
}

func (u *users) remove(name string) error {
	u.mu.RLock()
	_, ok := u.byU[name]
	u.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err := u.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketUsers).Delete([]byte(name))
	}); err != nil {
		return fmt.Errorf("sip: remove user %q: %w", name, err)
	}
	u.mu.Lock()
	delete(u.byU, name)
	u.mu.Unlock()
	return nil
}

func (u *users) list() []client.SIPUserInfo {
	u.mu.RLock()
	out := make([]client.SIPUserInfo, 0, len(u.byU))
	for _, usr := range u.byU {
		out = append(out, usr.info())
	}
	u.mu.RUnlock()
	slices.SortFunc(out, func(a, b client.SIPUserInfo) int { return strings.Compare(a.User, b.User) })
	return out
}

func (usr User) info() client.SIPUserInfo {
	return client.SIPUserInfo{User: usr.User, Realm: usr.Realm, Name: usr.Name, Phone: usr.Phone}
}
