package share

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
)

// Limits and defaults.
const (
	// DefaultTTL is the registration lifetime without refresh when neither
	// Options.TTL nor client.Registration.TTL says otherwise.
	DefaultTTL = 10 * time.Minute
	// MinTTL and MaxTTL bound the lifetime a registration may ask for.
	MinTTL = 10 * time.Second
	MaxTTL = 7 * 24 * time.Hour
	// DefaultOfflineAfter is the default Options.OfflineAfter.
	DefaultOfflineAfter = 30 * time.Second
	// SignWindow is how long a body returned by Prepare may be registered
	// after its Time.
	SignWindow = 5 * time.Minute
	// MaxField is the longest string field of a client.Registration, in bytes.
	MaxField = ident.MaxInputLen
	// DefaultMaxTerminals is the default Options.MaxTerminals: each
	// hosted terminal holds some 4 kB of memory (scripts/footprint).
	DefaultMaxTerminals = 100_000
)

// batchDelay is how long bbolt collects concurrent writes into one commit
// (one fsync). bbolt's default is 10 ms; shorter keeps a lone registration
// fast while 64 concurrent ones still share commits.
const batchDelay = 2 * time.Millisecond

var bucketTerminals = []byte("terminals")

// Publisher announces identifiers into the directory; the node implements
// it with the DHT. Calls come one at a time, in order, never concurrently;
// they should not block for long (queue the network work).
type Publisher interface {
	Publish(ids []ident.ID)
	Unpublish(ids []ident.ID)
}

// Options configure a Registry.
type Options struct {
	// Path is the bbolt database file, created if missing. Required.
	Path string
	// NodeKey is the node's libp2p key. It attests the records of
	// terminals without a key, and its peer ID is the Node of every
	// record. Required.
	NodeKey crypto.PrivKey
	// Normalizer normalises identifiers (its region is the default for
	// national phone numbers). Required.
	Normalizer *ident.Normalizer
	// TTL is the registration lifetime without refresh; zero means
	// DefaultTTL. A client.Registration may ask for its own. Must be within
	// MinTTL..MaxTTL.
	TTL time.Duration
	// OfflineAfter is how long a keepalive terminal may be silent before it
	// is shown offline; zero means DefaultOfflineAfter.
	OfflineAfter time.Duration
	// TrackConnections shows a keepalive terminal offline whenever it
	// holds no connection to the node (see SetConnected): from its
	// registration, or the registry's Open, until it connects, and from
	// the moment its connection closes, not OfflineAfter later.
	TrackConnections bool
	// MaxTerminals bounds the terminals hosted at once: registering a new
	// one beyond it fails with ErrFull (updates of hosted ones go on);
	// zero means DefaultMaxTerminals.
	MaxTerminals int
	// Publisher announces identifiers; nil publishes nothing.
	Publisher Publisher
	// Registerer receives the registry's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger logs; nil discards.
	Logger *slog.Logger
	// Now is the clock, a test seam; nil means time.Now.
	Now func() time.Time
}

// Registry is the register of the terminals a node hosts. It is safe for
// concurrent use.
type Registry struct {
	db           *bbolt.DB
	key          crypto.PrivKey
	self         peer.ID
	norm         *ident.Normalizer
	ttl          time.Duration
	max          int // MaxTerminals
	offlineAfter time.Duration
	track        bool
	pub          Publisher
	log          *slog.Logger
	now          func() time.Time
	m            *metrics
	closed       atomic.Bool
	closeOnce    sync.Once
	closeErr     error
	writers      atomic.Int32 // commits in flight

	// Lock order: identity stripes, then handle stripes (ascending), then
	// mu, then pubMu. Every change to a terminal holds its handle stripe
	// from the decision through the write to the apply, so the disk and
	// memory see changes to one terminal in the same order.
	seed      maphash.Seed
	idLocks   [stripes]sync.Mutex
	hLocks    [stripes]sync.Mutex
	pubMu     sync.Mutex // orders Publisher calls
	mu        sync.RWMutex
	byHandle  map[string]*entry
	byKey     map[string]*entry // string(Ed25519 key)
	byUID     map[string]*entry
	prefix    map[string]set // name token prefixes up to maxPrefix runes
	byPhone   map[string]set
	byIP      map[string]set
	published map[ident.ID]int // reference counts
	connected map[string]bool  // keepalive terminals with a connection (TrackConnections)
}

const stripes = 256

type set map[*entry]struct{}

// stored is a terminal as kept in the database.
type stored struct {
	Terminal  string         `json:"terminal"`
	TokenHash []byte         `json:"token_hash"` // SHA-256 of the token
	Record    *record.Record `json:"record"`     // with current status and seen
	Address   string         `json:"address,omitempty"`
	Expires   int64          `json:"expires"` // Unix ms
	TTL       int64          `json:"ttl"`     // seconds
	Keepalive bool           `json:"keepalive,omitempty"`
	// Resume is the status to return to when a keepalive terminal that was
	// marked offline for silence is heard again; unknown otherwise.
	Resume record.Status `json:"resume,omitempty"`
}

// entry is a hosted terminal in memory. Fields change only under mu held
// for writing and the terminal's handle stripe.
type entry struct {
	stored
	body   *record.Body
	folded string     // folded name
	tokens []string   // ident.Terms of folded
	ids    []ident.ID // published identifiers
	// diskExpires is the Expires last written to disk.
	diskExpires int64
}

// clone copies e deeply enough to change its stored fields.
func (e *entry) clone() *entry {
	c := *e
	rc := *e.Record
	c.Record = &rc
	return &c
}

func (e *entry) ttl() time.Duration { return time.Duration(e.TTL) * time.Second }

func (e *entry) terminal() client.Terminal {
	t := client.Terminal{
		Terminal:    e.Terminal,
		Identifiers: e.body.Identifiers,
		Address:     e.Address,
		Status:      e.Record.Status,
		Private:     e.body.Private,
		Keepalive:   e.Keepalive,
		Signer:      e.Record.Signer,
		Key:         slices.Clone(e.body.Key),
		Seq:         e.body.Seq,
		ExpiresAt:   time.UnixMilli(e.Expires).UTC(),
	}
	if e.Record.Seen != 0 {
		t.Seen = time.UnixMilli(e.Record.Seen).UTC()
	}
	return t
}

func (e *entry) ack(token string) client.Ack {
	rc := *e.Record
	return client.Ack{
		Terminal:    e.Terminal,
		Token:       token,
		ExpiresAt:   time.UnixMilli(e.Expires).UTC(),
		Identifiers: e.body.Identifiers,
		NameTokens:  slices.Clone(e.tokens),
		Status:      rc.Status,
		Signer:      rc.Signer,
		Record:      &rc,
	}
}

// Open opens or creates the database at opts.Path, loads every terminal
// into memory, drops expired ones and publishes the identifiers of the
// rest.
func Open(opts Options) (*Registry, error) {
	switch {
	case opts.Path == "":
		return nil, errors.New("share: Options.Path must be set")
	case opts.NodeKey == nil:
		return nil, errors.New("share: Options.NodeKey must be non-nil")
	case opts.Normalizer == nil:
		return nil, errors.New("share: Options.Normalizer must be non-nil")
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.TTL < MinTTL || opts.TTL > MaxTTL {
		return nil, fmt.Errorf("share: Options.TTL %s out of range %s..%s", opts.TTL, MinTTL, MaxTTL)
	}
	if opts.OfflineAfter == 0 {
		opts.OfflineAfter = DefaultOfflineAfter
	}
	if opts.MaxTerminals == 0 {
		opts.MaxTerminals = DefaultMaxTerminals
	}
	if opts.MaxTerminals < 0 {
		return nil, fmt.Errorf("share: Options.MaxTerminals %d is negative", opts.MaxTerminals)
	}
	if opts.OfflineAfter < 0 {
		return nil, fmt.Errorf("share: Options.OfflineAfter %s is negative", opts.OfflineAfter)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	self, err := peer.IDFromPrivateKey(opts.NodeKey)
	if err != nil {
		return nil, fmt.Errorf("share: node key: %w", err)
	}
	db, err := bbolt.Open(opts.Path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("share: open %s: %w", opts.Path, err)
	}
	db.MaxBatchDelay = batchDelay
	r := &Registry{
		db:           db,
		key:          opts.NodeKey,
		self:         self,
		norm:         opts.Normalizer,
		ttl:          opts.TTL,
		max:          opts.MaxTerminals,
		offlineAfter: opts.OfflineAfter,
		track:        opts.TrackConnections,
		pub:          opts.Publisher,
		log:          opts.Logger,
		now:          opts.Now,
		seed:         maphash.MakeSeed(),
		byHandle:     make(map[string]*entry),
		byKey:        make(map[string]*entry),
		byUID:        make(map[string]*entry),
		prefix:       make(map[string]set),
		byPhone:      make(map[string]set),
		byIP:         make(map[string]set),
		published:    make(map[ident.ID]int),
		connected:    make(map[string]bool),
	}
	if err := r.load(); err != nil {
		db.Close()
		return nil, err
	}
	r.m = newMetrics(r)
	if err := r.m.register(opts.Registerer); err != nil {
		db.Close()
		return nil, err
	}
	if r.pub != nil {
		if ids := r.IDs(); len(ids) > 0 {
			r.pubMu.Lock()
			r.pub.Publish(ids)
			r.pubMu.Unlock()
		}
	}
	r.log.Info("Registry opened", "path", opts.Path, "terminals", r.Count(), "node", self.String())
	return r, nil
}

// Close closes the database. Only the first call does anything; later
// calls return its result. Methods called afterwards return ErrClosed.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		r.m.unregister()
		r.closeErr = r.db.Close()
	})
	return r.closeErr
}

// Count returns the number of hosted terminals.
func (r *Registry) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byHandle)
}

// IDs returns every identifier currently published, sorted, for
// republishing.
func (r *Registry) IDs() []ident.ID {
	r.mu.RLock()
	ids := make([]ident.ID, 0, len(r.published))
	for id := range r.published {
		ids = append(ids, id)
	}
	r.mu.RUnlock()
	slices.SortFunc(ids, compareIDs)
	return ids
}

func compareIDs(a, b ident.ID) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Value, b.Value))
}

// Get returns the terminal with the handle, or an error wrapping
// ErrNotFound.
func (r *Registry) Get(terminal string) (client.Terminal, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.byHandle[terminal]
	if e == nil {
		return client.Terminal{}, notFound(terminal)
	}
	t := e.terminal()
	t.Status = r.shownStatus(e, r.now().UnixMilli())
	return t, nil
}

// Record returns the terminal's current signed record (a copy), or an
// error wrapping ErrNotFound.
func (r *Registry) Record(terminal string) (*record.Record, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e := r.byHandle[terminal]
	if e == nil {
		return nil, notFound(terminal)
	}
	rc := *e.Record
	return &rc, nil
}

// List returns every hosted terminal, sorted by folded name, then handle.
func (r *Registry) List() []client.Terminal {
	r.mu.RLock()
	es := make([]*entry, 0, len(r.byHandle))
	for _, e := range r.byHandle {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.folded, b.folded), cmp.Compare(a.Terminal, b.Terminal))
	})
	out := make([]client.Terminal, len(es))
	nowMS := r.now().UnixMilli()
	for i, e := range es {
		out[i] = e.terminal()
		out[i].Status = r.shownStatus(e, nowMS)
	}
	r.mu.RUnlock()
	return out
}

// silent reports whether a keepalive terminal has been silent for
// OfflineAfter as of nowMS.
func (r *Registry) silent(e *entry, nowMS int64) bool {
	return e.Keepalive && nowMS-e.Record.Seen >= r.offlineAfter.Milliseconds()
}

// shownStatus is e's status as of nowMS: offline once it is silent, even
// before the next sweep stores that, so presence never lags OfflineAfter
// by the sweep interval, and while it holds no connection when
// connections are tracked. The caller holds mu.
func (r *Registry) shownStatus(e *entry, nowMS int64) record.Status {
	if r.silent(e, nowMS) || r.track && e.Keepalive && !r.connected[e.Terminal] {
		return record.StatusOffline
	}
	return e.Record.Status
}

// SetConnected records whether a keepalive terminal holds its connection
// to the node (the node's WebSocket); see Options.TrackConnections.
func (r *Registry) SetConnected(terminal string, up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if up && r.byHandle[terminal] != nil {
		r.connected[terminal] = true
	} else {
		delete(r.connected, terminal)
	}
}

// Authorize checks a terminal's token as returned by Register. It returns
// an error wrapping ErrNotFound for an unknown handle and ErrForbidden for
// a wrong token.
func (r *Registry) Authorize(terminal, token string) error {
	r.mu.RLock()
	e := r.byHandle[terminal]
	var want []byte
	if e != nil {
		want = e.TokenHash
	}
	r.mu.RUnlock()
	if e == nil {
		return notFound(terminal)
	}
	got := sha256.Sum256([]byte(token))
	if len(want) != len(got) || subtle.ConstantTimeCompare(got[:], want) != 1 {
		return fmt.Errorf("%w: wrong token for terminal %q", ErrForbidden, terminal)
	}
	return nil
}

func notFound(terminal string) error {
	return fmt.Errorf("%w: %q", ErrNotFound, terminal)
}

// lockHandle locks the stripe of a handle and returns its unlock.
func (r *Registry) lockHandle(h string) func() {
	m := &r.hLocks[maphash.String(r.seed, h)%stripes]
	m.Lock()
	return m.Unlock
}

// lockAllHandles locks every handle stripe, in order.
func (r *Registry) lockAllHandles() func() {
	for i := range r.hLocks {
		r.hLocks[i].Lock()
	}
	return func() {
		for i := range r.hLocks {
			r.hLocks[i].Unlock()
		}
	}
}

// lockIdentity locks the identity stripes of a key and a uid (either may
// be empty), in order, and returns their unlock.
func (r *Registry) lockIdentity(key []byte, uid string) func() {
	var idx []uint64
	if len(key) > 0 {
		idx = append(idx, maphash.Bytes(r.seed, append([]byte("k"), key...))%stripes)
	}
	if uid != "" {
		idx = append(idx, maphash.String(r.seed, "u"+uid)%stripes)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		r.idLocks[i].Lock()
	}
	return func() {
		for _, i := range idx {
			r.idLocks[i].Unlock()
		}
	}
}

// findLocked returns the terminal that a registration with key and uid
// updates, or nil for a new one. It fails when key and uid belong to
// different terminals, or the uid to a terminal with another key.
func (r *Registry) findLocked(key []byte, uid string) (*entry, error) {
	var byKey, byUID *entry
	if len(key) > 0 {
		byKey = r.byKey[string(key)]
	}
	if uid != "" {
		byUID = r.byUID[uid]
	}
	switch {
	case byKey != nil && byUID != nil && byKey != byUID:
		return nil, fmt.Errorf("%w: uid %q is registered as terminal %q, the key as terminal %q; remove one first",
			ErrForbidden, uid, byUID.Terminal, byKey.Terminal)
	case byKey != nil:
		return byKey, nil
	case byUID != nil:
		if len(byUID.body.Key) > 0 && !bytes.Equal(byUID.body.Key, key) {
			return nil, fmt.Errorf("%w: uid %q is registered as terminal %q with another key; register with that key or remove it first",
				ErrForbidden, uid, byUID.Terminal)
		}
		return byUID, nil
	}
	return nil, nil
}

// publishUnlock releases mu, held for writing, and then announces changes
// in order.
func (r *Registry) publishUnlock(pub, unpub []ident.ID) {
	if r.pub == nil || (len(pub) == 0 && len(unpub) == 0) {
		r.mu.Unlock()
		return
	}
	r.pubMu.Lock()
	r.mu.Unlock()
	defer r.pubMu.Unlock()
	if len(unpub) > 0 {
		slices.SortFunc(unpub, compareIDs)
		r.pub.Unpublish(unpub)
	}
	if len(pub) > 0 {
		slices.SortFunc(pub, compareIDs)
		r.pub.Publish(pub)
	}
}
