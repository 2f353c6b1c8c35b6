package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/p2pstream"
	"github.com/irmv/irmv/internal/rtheal"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/search/flood"
	"github.com/irmv/irmv/share"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

// Defaults of Config.
const (
	DefaultTerminalsPerNode = 2
	DefaultLatency          = 10 * time.Millisecond
	DefaultLookups          = 200
	DefaultDegree           = 8
	DefaultParallel         = 1
	DefaultFloodSamples     = 20
	DefaultDeadDial         = time.Second
	DefaultAlpha            = 10 // kad-dht's default lookup concurrency
)

// ErrBadConfig is returned, wrapped, for a Config that cannot run.
var ErrBadConfig = errors.New("sim: bad config")

// Config describes one simulated network and its workload. Zero fields take
// the defaults above.
type Config struct {
	Nodes            int           // required, at least 3
	TerminalsPerNode int           // terminals registered on each node
	Latency          time.Duration // one-way latency of every link
	Lookups          int           // exact lookups, half before and half after churn
	Churn            float64       // share of nodes killed after the first half of the lookups, 0..0.9
	Seed             uint64        // seeds keys, topology and workload
	Degree           int           // random peers each node dials at start
	Parallel         int           // lookups in flight at once
	FloodSamples     int           // dynamic and full flood queries measured; <0: none
	DeadDial         time.Duration // how long a dial to a dead node takes to fail
	// Trim closes, after a node's routing-table refresh, its connections to
	// peers outside its routing table, as a connection manager trims down
	// to the peers the DHT protects. It saves memory.
	Trim bool
	// Alpha and Beta are kad-dht's lookup concurrency and resiliency
	// (dht.Concurrency, dht.Resiliency); zero keeps kad-dht's defaults.
	Alpha, Beta int
	// BucketSize is kad-dht's k (dht.BucketSize): the routing table's
	// bucket size and how many closest nodes store a provider record;
	// zero keeps kad-dht's default, 20.
	BucketSize int
	// Private is the share of nodes behind NAT (0..0.9): DHT clients that
	// others reach through a relay, so a connection they did not dial
	// themselves has twice the link latency. The first nodes stay public.
	Private float64
	// AccessPoints is the share of nodes (0..0.9) with the access-point
	// profile's k, 20 (node/kad.go), whatever BucketSize is: a mixed
	// network, where each record is stored on its publisher's k closest
	// nodes. The first node stays a server.
	AccessPoints float64
	// KadStreams keeps kad-dht's own message sender, which holds a stream
	// open to every peer it asked (three goroutines each on mocknet);
	// otherwise each DHT message has a stream of its own (p2pstream.NewDHTSender).
	KadStreams bool
	// WaitIdentify makes the DHT's messages and the lookup request to the
	// hosting node wait, on a new connection, until identify has
	// finished, as go-libp2p's host.NewStream does (irmv before issue
	// 22); otherwise they leave at once (internal/p2pstream), as a node's
	// do. Round trips are counted accordingly.
	WaitIdentify bool
	// After churn, before the lookups after it, every live node does what
	// a running network does within minutes (right after the churn
	// otherwise): Evict dials each routing-table peer and drops those
	// that fail (kad-dht's refresh does so for peers it has not queried
	// successfully for ~43 min, the grace period of its 10-min refresh);
	// Refresh runs kad-dht's routing-table refresh (a query per bucket;
	// kad-dht drops each peer whose dial fails in it); Republish announces
	// every identifier again (the publisher does so every 10 min), which
	// stores the records on the closest live nodes.
	Evict, Refresh, Republish bool
	// Heal runs on every node what node/node.go runs (internal/rtheal):
	// a routing-table peer whose connection ended is dialled and dropped
	// if the dial fails, and a refresh follows once a tenth of the table
	// went; the lookups after churn wait until every node is done.
	Heal bool
	// KadProvide publishes with kad-dht's own Provide instead of the
	// node's (internal/dhtprovide), which reports success when its lookup
	// found no reachable peer or every ADD_PROVIDER failed.
	KadProvide bool
	// ProvideTimeout bounds each announcement of the publishers (zero:
	// search.DefaultProvideTimeout); a short one starves them.
	ProvideTimeout time.Duration
	// Variant names this configuration in a comparison.
	Variant string
	// Dir holds the nodes' bbolt files; "" is a new temporary directory,
	// removed at the end.
	Dir string
	// Live, if set, is called once the lookups are done, while the whole
	// network still runs (to profile it).
	Live func()
	// Progress, if set, is called as phases advance (from one goroutine
	// at a time).
	Progress func(phase string, done, total int)
}

func (c *Config) defaults() error {
	if c.Nodes < 3 {
		return fmt.Errorf("%w: nodes %d (want at least 3)", ErrBadConfig, c.Nodes)
	}
	if c.Churn < 0 || c.Churn > 0.9 {
		return fmt.Errorf("%w: churn %g out of 0..0.9", ErrBadConfig, c.Churn)
	}
	if c.Private < 0 || c.Private > 0.9 {
		return fmt.Errorf("%w: private share %g out of 0..0.9", ErrBadConfig, c.Private)
	}
	if c.AccessPoints < 0 || c.AccessPoints > 0.9 {
		return fmt.Errorf("%w: access-point share %g out of 0..0.9", ErrBadConfig, c.AccessPoints)
	}
	if c.BucketSize < 0 || c.Alpha < 0 || c.Beta < 0 {
		return fmt.Errorf("%w: negative bucket size, alpha or beta", ErrBadConfig)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.TerminalsPerNode, DefaultTerminalsPerNode)
	def(&c.Lookups, DefaultLookups)
	def(&c.Degree, DefaultDegree)
	def(&c.Parallel, DefaultParallel)
	def(&c.FloodSamples, DefaultFloodSamples)
	c.Degree = min(c.Degree, c.Nodes-1)
	if c.Latency == 0 {
		c.Latency = DefaultLatency
	}
	if c.DeadDial == 0 {
		c.DeadDial = DefaultDeadDial
	}
	if c.Progress == nil {
		c.Progress = func(string, int, int) {}
	}
	return nil
}

// simNode is one irmv node, composed as node/services.go does.
type simNode struct {
	idx    int
	h      *linkedHost
	d      *dht.IpfsDHT
	router *tracingRouter
	heal   *rtheal.Healer
	reg    *share.Registry
	pub    *search.Publisher
	fl     *flood.Flooder
	srch   *search.Service
	stop   context.CancelFunc
	terms  []terminal
	dead   bool
	asks   askErrors // why its lookup requests failed
	// private: behind NAT, a DHT client reached through a relay.
	private bool
	// ap: an access point (Config.AccessPoints); k is its kad-dht k.
	ap bool
	k  int
}

type terminal struct {
	node   int
	handle string
	uid    string
}

// simnet is a running simulation.
type simnet struct {
	cfg   Config
	rng   *rand.Rand
	keys  *rand.ChaCha8 // node keys
	mn    mocknet.Mocknet
	link  *linker
	nodes []*simNode
	byID  map[peer.ID]*simNode
	dir   string
	norm  *ident.Normalizer
	log   *slog.Logger
}

// Run builds the network, drives the workload and tears everything down.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	n := &simnet{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		byID: map[peer.ID]*simNode{}, keys: rand.NewChaCha8(seed32(cfg.Seed)), log: slog.New(slog.DiscardHandler)}
	defer n.close()
	res := &Result{Nodes: cfg.Nodes, TerminalsPerNode: cfg.TerminalsPerNode, LatencyMS: ms(cfg.Latency),
		Churn: cfg.Churn, Seed: cfg.Seed, Degree: cfg.Degree, Alpha: cfg.Alpha, Beta: cfg.Beta, Trim: cfg.Trim,
		BucketSize: cfg.BucketSize, Private: cfg.Private, AccessPoints: cfg.AccessPoints, KadStreams: cfg.KadStreams, WaitIdentify: cfg.WaitIdentify, Variant: cfg.Variant,
		Evict: cfg.Evict, Refresh: cfg.Refresh, Republish: cfg.Republish, Heal: cfg.Heal,
		KadProvide: cfg.KadProvide, ProvideTimeoutMS: ms(cfg.ProvideTimeout)}
	start := time.Now()
	if err := n.build(ctx, res); err != nil {
		return nil, err
	}
	if err := n.register(ctx, res); err != nil {
		return nil, err
	}
	if cfg.FloodSamples > 0 {
		n.measureFlood(ctx, res)
	}
	res.SetupMessagesPerNode = float64(n.streams()) / float64(len(n.nodes))
	half := cfg.Lookups / 2
	if cfg.Churn == 0 {
		half = cfg.Lookups
	}
	m0 := n.streams()
	before := n.lookups(ctx, half, "lookups")
	if cfg.Churn > 0 {
		res.Killed = n.churn()
		n.afterChurn(ctx, res)
	}
	after := n.lookups(ctx, cfg.Lookups-half, "lookups after churn")
	if cfg.Lookups > 0 {
		heal := res.HealMessagesPerNode * float64(len(n.nodes)-res.Killed)
		res.MessagesPerLookup = (float64(n.streams()-m0) - heal) / float64(cfg.Lookups)
	}
	res.MessagesPerNode = float64(n.streams()) / float64(len(n.nodes))
	res.summarise(before, after)
	res.PeakRSSMB, res.HeapMB, res.Goroutines = memory()
	res.perNode()
	if cfg.Live != nil {
		cfg.Live()
	}
	res.Links = n.link.count()
	res.WallS = time.Since(start).Seconds()
	return res, ctx.Err()
}

func (n *simnet) build(ctx context.Context, res *Result) error {
	var err error
	if n.dir = n.cfg.Dir; n.dir == "" {
		if n.dir, err = os.MkdirTemp("", "irmv-sim-"); err != nil {
			return err
		}
	}
	if n.norm, err = ident.NewNormalizer("DE"); err != nil {
		return err
	}
	n.mn = mocknet.New()
	n.mn.SetLinkDefaults(mocknet.LinkOptions{Latency: n.cfg.Latency})
	n.link = newLinker(n.mn, n.cfg.DeadDial)
	t0 := time.Now()
	// The first node and every other node until the share is reached stay
	// public; which ones are private is drawn from the seed.
	private := make([]bool, n.cfg.Nodes)
	if n.cfg.Private > 0 {
		for _, i := range n.rng.Perm(n.cfg.Nodes - 1)[:int(n.cfg.Private*float64(n.cfg.Nodes))] {
			private[i+1] = true
		}
	}
	ap := make([]bool, n.cfg.Nodes)
	if n.cfg.AccessPoints > 0 {
		for _, i := range n.rng.Perm(n.cfg.Nodes - 1)[:int(n.cfg.AccessPoints*float64(n.cfg.Nodes))] {
			ap[i+1] = true
		}
	}
	for i := range n.cfg.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		sn, err := n.startNode(ctx, i, private[i], ap[i])
		if err != nil {
			if sn != nil {
				sn.close()
			}
			return fmt.Errorf("node %d: %w", i, err)
		}
		n.nodes = append(n.nodes, sn)
		n.byID[sn.h.ID()] = sn
		n.cfg.Progress("starting nodes", i+1, n.cfg.Nodes)
	}
	// Each node dials a few random peers, as a bootstrap list would give it.
	perms := make([][]int, len(n.nodes))
	for i := range perms {
		perms[i] = n.rng.Perm(n.cfg.Nodes)[:n.cfg.Degree+1]
	}
	n.parallel(ctx, "connecting", len(n.nodes), 32, func(i int) {
		for _, j := range perms[i] {
			if j != i {
				o := n.nodes[j].h
				n.nodes[i].h.Connect(ctx, peer.AddrInfo{ID: o.ID(), Addrs: o.Addrs()})
			}
		}
	})
	// Fill routing tables as a node does after bootstrapping: a refresh of
	// every bucket. A few at a time, for memory.
	n.parallel(ctx, "refreshing routing tables", len(n.nodes), 16, func(i int) {
		sn := n.nodes[i]
		for ctx.Err() == nil {
			if sn.d.RoutingTable().Size() > 0 {
				<-sn.d.ForceRefresh()
				if n.cfg.Trim {
					trim(sn)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	res.SetupS = time.Since(t0).Seconds()
	var rt []float64
	for _, sn := range n.nodes {
		rt = append(rt, float64(sn.d.RoutingTable().Size()))
		res.ConnsPerNode += float64(len(sn.h.Network().Conns()))
	}
	res.ConnsPerNode /= float64(len(n.nodes))
	res.RoutingTableP50 = percentile(rt, 50)
	return ctx.Err()
}

func (n *simnet) startNode(ctx context.Context, i int, private, ap bool) (*simNode, error) {
	key, _, err := crypto.GenerateEd25519Key(n.keys)
	if err != nil {
		return nil, err
	}
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&255, i>>8&255, i&255))
	if err != nil {
		return nil, err
	}
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(ps.AddPrivKey(id, key), ps.AddPubKey(id, key.GetPublic())); err != nil {
		return nil, err
	}
	ps.AddAddr(id, addr, peerstore.PermanentAddrTTL)
	mh, err := n.mn.AddPeerWithPeerstore(id, leanPeerstore{ps})
	if err != nil {
		return nil, err
	}
	h := &linkedHost{Host: mh, l: n.link, waitIdentify: n.cfg.WaitIdentify}
	if h.waitIdentify {
		bh, ok := mh.(interface{ IDService() identify.IDService })
		if !ok {
			return nil, fmt.Errorf("sim: mocknet host %T has no identify service", mh)
		}
		h.ids = bh.IDService()
	}
	sn := &simNode{idx: i, h: h, private: private, ap: ap, k: cmp.Or(n.cfg.BucketSize, kadBucketSize)}
	if ap {
		sn.k = apBucketSize
	}
	mode := dht.ModeServer
	if private {
		mode = dht.ModeClient
		n.link.private[mh.ID()] = true
	}
	opts := []dht.Option{dht.Mode(mode), dht.ProtocolPrefix("/irmv"), dht.DisableAutoRefresh()}
	if !n.cfg.KadStreams {
		opts = append(opts, dht.WithCustomMessageSender(newTracingSender))
	}
	if n.cfg.Alpha > 0 {
		opts = append(opts, dht.Concurrency(n.cfg.Alpha))
	}
	if n.cfg.Beta > 0 {
		opts = append(opts, dht.Resiliency(n.cfg.Beta))
	}
	opts = append(opts, dht.BucketSize(sn.k))
	// As node/node.go: kad-dht connects to the peers it asks without
	// waiting for identify (unless WaitIdentify: linkedNet waits).
	if sn.d, err = dht.New(p2pstream.Host(h), opts...); err != nil {
		return sn, err
	}
	sn.router = &tracingRouter{d: sn.d, kad: n.cfg.KadProvide}
	if n.cfg.Heal {
		if sn.heal, err = rtheal.New(h, sn.d, rtheal.Options{}); err != nil {
			return sn, err
		}
	}
	// As node/services.go: publisher, register, flooder, search.
	sn.pub = search.NewPublisher(sn.router, time.Hour, nil, n.log)
	sn.pub.SetProvideTimeout(n.cfg.ProvideTimeout)
	sn.reg, err = share.Open(share.Options{
		Path:       filepath.Join(n.dir, fmt.Sprintf("node-%d.db", i)),
		NodeKey:    key,
		Normalizer: n.norm,
		Publisher:  sn.pub,
		Logger:     n.log,
	})
	if err != nil {
		return sn, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	sn.stop = cancel
	go sn.reg.Serve(sctx)
	if sn.fl, err = flood.New(flood.Options{Host: h, Matcher: sn.reg, Logger: n.log}); err != nil {
		return sn, err
	}
	sn.srch, err = search.New(search.Options{
		Host:       h,
		Matcher:    sn.reg,
		Normalizer: n.norm,
		Router:     sn.router,
		TableSize:  func() int { return sn.d.RoutingTable().Size() },
		Flooder:    sn.fl,
		Logger:     slog.New(&sn.asks),
	})
	return sn, err
}

// parallel runs f(0..total-1) with at most width at once, reporting progress.
func (n *simnet) parallel(ctx context.Context, phase string, total, width int, f func(i int)) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		sem  = make(chan struct{}, width)
	)
	for i := range total {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
			mu.Lock()
			done++
			n.cfg.Progress(phase, done, total)
			mu.Unlock()
		}()
	}
	wg.Wait()
}

// register registers the terminals and waits until every identifier is
// announced into the DHT.
func (n *simnet) register(ctx context.Context, res *Result) error {
	var (
		mu   sync.Mutex
		regs []float64
		ferr error
	)
	t0 := time.Now()
	n.parallel(ctx, "registering terminals", len(n.nodes), 8, func(i int) {
		sn := n.nodes[i]
		for t := range n.cfg.TerminalsPerNode {
			uid := fmt.Sprintf("sim-%d-%d", i, t)
			s := time.Now()
			// A day: the terminals send no heartbeats, and a slow run
			// must not outlive the default ten minutes.
			ack, err := sn.reg.Register(client.Registration{UID: uid, Address: "10.200.0.1", TTL: int((24 * time.Hour).Seconds())})
			d := time.Since(s)
			mu.Lock()
			if err != nil && ferr == nil {
				ferr = fmt.Errorf("register %s: %w", uid, err)
			}
			regs = append(regs, ms(d))
			mu.Unlock()
			sn.terms = append(sn.terms, terminal{node: i, handle: ack.Terminal, uid: uid})
		}
	})
	if ferr != nil {
		return ferr
	}
	res.RegisterMSP50 = percentile(regs, 50)
	res.RegisterMSP99 = percentile(regs, 99)
	n.waitPublished(ctx, n.nodes)
	res.PublishS = time.Since(t0).Seconds()
	var provs []float64
	res.ProvideOutcomes = map[string]int{}
	for _, sn := range n.nodes {
		sn.router.mu.Lock()
		for _, d := range sn.router.provides {
			provs = append(provs, ms(d))
		}
		for o, c := range sn.router.outcomes {
			res.ProvideOutcomes[o] += c
		}
		sn.router.mu.Unlock()
	}
	res.ProvideMSP50 = percentile(provs, 50)
	res.ProvideMSP99 = percentile(provs, 99)
	res.Identifiers = len(provs)
	n.placement(ctx, res)
	return ctx.Err()
}

// waitPublished waits until the publishers of nodes have announced every
// identifier, then for the last ADD_PROVIDER to land (Provide returns
// before the records are stored). Each minute it reports the
// announcements' outcomes so far, so that a slow run shows why.
func (n *simnet) waitPublished(ctx context.Context, nodes []*simNode) {
	total := 0
	for _, sn := range nodes {
		total += sn.pub.Published()
	}
	phase, next := "publishing", time.Now().Add(time.Minute)
	for ctx.Err() == nil {
		pending := 0
		for _, sn := range nodes {
			pending += sn.pub.Pending()
		}
		if time.Now().After(next) {
			phase, next = "publishing ("+n.outcomeText(nodes)+")", time.Now().Add(time.Minute)
		}
		n.cfg.Progress(phase, total-pending, total)
		if pending == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(4*n.cfg.Latency + 200*time.Millisecond)
}

// outcomeText counts the announcements of nodes so far by outcome.
func (n *simnet) outcomeText(nodes []*simNode) string {
	m := map[string]int{}
	for _, sn := range nodes {
		sn.router.mu.Lock()
		for o, c := range sn.router.outcomes {
			m[o] += c
		}
		sn.router.mu.Unlock()
	}
	var out []string
	for _, o := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s %d", o, m[o]))
	}
	return strings.Join(out, ", ")
}

// kad-dht's default k, and the access-point profile's (node/kad.go).
const (
	kadBucketSize = 20
	apBucketSize  = 20
)

// class names the node's kind for Result.ByClass: public or private,
// and with access points, server or ap.
func (sn *simNode) class(cfg *Config) string {
	var c []string
	switch {
	case sn.private:
		c = append(c, "private")
	case cfg.Private > 0 || cfg.AccessPoints == 0:
		c = append(c, "public")
	}
	switch {
	case sn.ap:
		c = append(c, "ap")
	case cfg.AccessPoints > 0:
		c = append(c, "server")
	}
	return strings.Join(c, " ")
}

// streams is how many streams all nodes have opened so far.
func (n *simnet) streams() uint64 {
	var t uint64
	for _, sn := range n.nodes {
		t += sn.h.streams.Load()
	}
	return t
}

// leanPeerstore drops the peer metadata identify stores (agent and
// protocol version of every peer ever connected: a tenth of the heap at
// 300 nodes); nothing in a node reads it.
type leanPeerstore struct{ peerstore.Peerstore }

func (leanPeerstore) Put(peer.ID, string, any) error { return nil }

// alive returns the live nodes.
func (n *simnet) alive() []*simNode {
	var out []*simNode
	for _, sn := range n.nodes {
		if !sn.dead {
			out = append(out, sn)
		}
	}
	return out
}

// churn kills a share of the nodes abruptly and returns how many.
func (n *simnet) churn() int {
	k := min(int(n.cfg.Churn*float64(len(n.nodes))), len(n.nodes)-2) // two must live to look up
	for _, i := range n.rng.Perm(len(n.nodes))[:k] {
		sn := n.nodes[i]
		sn.dead = true
		n.link.kill(sn.h.ID())
		sn.h.Host.Close()
	}
	return k
}

// afterChurn lets the live nodes do what Config.Evict, Refresh and
// Republish ask, and records what it cost and the routing tables after it.
func (n *simnet) afterChurn(ctx context.Context, res *Result) {
	live := n.alive()
	defer n.tablesAfterChurn(live, res)
	if !n.cfg.Evict && !n.cfg.Refresh && !n.cfg.Republish && !n.cfg.Heal {
		return
	}
	t0, m0 := time.Now(), n.streams()
	var evicted atomic.Int64
	n.parallel(ctx, "healing routing tables", len(live), 16, func(i int) {
		sn := live[i]
		if sn.heal != nil {
			sn.heal.Idle(ctx)
			evicted.Add(int64(sn.heal.Stats().Dropped))
		}
		if n.cfg.Evict {
			var wg sync.WaitGroup
			for _, p := range sn.d.RoutingTable().ListPeers() {
				wg.Go(func() {
					if err := sn.h.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
						sn.d.RoutingTable().RemovePeer(p)
						evicted.Add(1)
					}
				})
			}
			wg.Wait()
		}
		if n.cfg.Refresh {
			<-sn.d.ForceRefresh()
		}
	})
	if n.cfg.Republish {
		for _, sn := range live {
			sn.pub.Republish()
		}
		n.waitPublished(ctx, live)
	}
	res.HealS = time.Since(t0).Seconds()
	res.HealMessagesPerNode = float64(n.streams()-m0) / float64(len(live))
	res.EvictedPerNode = float64(evicted.Load()) / float64(len(live))
}

// tablesAfterChurn records the routing tables of the live nodes before
// the lookups after churn: their size and the dead peers in them.
func (n *simnet) tablesAfterChurn(live []*simNode, res *Result) {
	var rt, dead []float64
	for _, sn := range live {
		d := 0
		ps := sn.d.RoutingTable().ListPeers()
		for _, p := range ps {
			if o := n.byID[p]; o == nil || o.dead {
				d++
			}
		}
		rt = append(rt, float64(len(ps)))
		dead = append(dead, float64(d))
	}
	res.RoutingTableAfterChurnP50 = percentile(rt, 50)
	res.DeadInRoutingTableP50 = percentile(dead, 50)
}

// lookups runs count exact lookups, each from a random live node for a
// random terminal on another live node.
func (n *simnet) lookups(ctx context.Context, count int, phase string) []lookup {
	live := n.alive()
	type job struct {
		from, to *simNode
		t        terminal
	}
	jobs := make([]job, count)
	for i := range jobs {
		from := live[n.rng.IntN(len(live))]
		to := from
		for to == from {
			to = live[n.rng.IntN(len(live))]
		}
		jobs[i] = job{from, to, to.terms[n.rng.IntN(len(to.terms))]}
	}
	out := make([]lookup, count)
	n.parallel(ctx, phase, count, n.cfg.Parallel, func(i int) {
		j := jobs[i]
		out[i] = n.lookup(ctx, j.from, j.to, j.t)
	})
	return out
}

// lookup is one exact lookup's outcome.
type lookup struct {
	class string // asker's class -> host's class
	warm  bool   // the asker was connected to the host before the lookup
	// counted is the link round trips on the lookup's path, counted from
	// the trace rather than timed (see lookupTrace.countedRoundTrips);
	// -1: unknown.
	counted float64
	found   bool
	miss    string // why it missed
	detail  string // for a miss in the DHT: whom it asked (lookupTrace.asked)
	ms      float64
	dhtMS   float64 // until the DHT named the hosting node; 0: unknown
	dhtHops int     // -1: unknown
}

func (n *simnet) lookup(ctx context.Context, from, to *simNode, t terminal) lookup {
	tr := newTrace()
	lctx := context.WithValue(ctx, traceKey{}, tr)
	class := from.class(&n.cfg) + "->" + to.class(&n.cfg)
	connected := map[peer.ID]bool{}
	for _, p := range from.h.Network().Peers() {
		connected[p] = true
	}
	warm := connected[to.h.ID()]
	t0 := time.Now()
	rs, err := from.srch.Search(lctx, client.Query{Text: "uid:" + t.uid, Via: client.ViaDHT, Limit: 1})
	if err != nil {
		return lookup{class: class, warm: warm, dhtHops: -1, counted: -1, miss: missSearch}
	}
	l := lookup{class: class, warm: warm, counted: -1}
	for r := range rs {
		if r.Terminal == t.handle && r.Node == to.h.ID().String() && !l.found {
			l.found, l.ms = true, ms(time.Since(t0))
		}
	}
	key := ident.ID{Kind: ident.KindUID, Value: t.uid}.CID().Hash()
	tr.wg.Wait()
	tr.mu.Lock()
	l.dhtMS = ms(tr.firstProvider)
	named := slices.Contains(tr.providers, to.h.ID())
	anyNamed := len(tr.providers) > 0
	tr.mu.Unlock()
	holds := func(p peer.ID) bool {
		sn := n.byID[p]
		if sn == nil || sn.dead {
			return false
		}
		ps, err := sn.d.ProviderStore().GetProviders(ctx, key)
		return err == nil && len(ps) > 0
	}
	askErr := from.asks.take(to.h.ID())
	if !l.found {
		switch {
		case named:
			l.miss = askReason(askErr)
		case anyNamed:
			l.miss = missOtherProvider
		case !slices.ContainsFunc(n.nodes, func(sn *simNode) bool { return holds(sn.h.ID()) }):
			l.miss = missNoRecord
		default:
			l.miss = missNoProvider + tr.holderFailures(holds)
		}
		if !named {
			l.detail = n.askedDetail(tr, key, holds, to.h.ID())
		}
	}
	l.dhtHops = tr.minDepth(holds)
	base := float64(n.cfg.Latency)
	weight := func(p peer.ID) float64 { return float64(n.link.latency(from.h.ID(), p)) / base }
	cold := func(p peer.ID) bool { return !connected[p] }
	// A request on a new connection: identify first, then the request
	// (as go-libp2p's host.NewStream does: WaitIdentify), or both at once
	// (p2pstream). Mocknet dials cost nothing; TestRoundTrip times both.
	coldCost, dhtColdCost := 1.0, 1.0
	if n.cfg.WaitIdentify {
		coldCost, dhtColdCost = 2, 2
	}
	if n.cfg.KadStreams { // kad-dht's sender opens with host.NewStream
		dhtColdCost = 2
	}
	dhtRT := tr.countedRoundTrips(holds, cold, dhtColdCost, weight)
	if ps, err := from.d.ProviderStore().GetProviders(ctx, key); err == nil && len(ps) > 0 && l.found {
		// kad-dht names a provider the asker stores at once.
		l.dhtHops, dhtRT = 0, 0
	}
	if l.found && dhtRT >= 0 {
		// Asking the host: a request, on a new connection at coldCost
		// (unless the DHT query already opened one to it).
		ask := 1.0
		if !warm && !tr.wasQueried(to.h.ID()) {
			ask = coldCost
		}
		l.counted = dhtRT + ask*weight(to.h.ID())
	}
	return l
}

// askedDetail lists whom a lookup's DHT query asked, ranked by distance
// to key among the live nodes (dead ones are not ranked); the host's rank
// among those storing the record is marked "h" (it stores its own).
func (n *simnet) askedDetail(tr *lookupTrace, key mh.Multihash, holds func(peer.ID) bool, host peer.ID) string {
	var ids []peer.ID
	for _, sn := range n.alive() {
		ids = append(ids, sn.h.ID())
	}
	ids = kb.SortClosestPeers(ids, kb.ConvertKey(string(key)))
	rank := map[peer.ID]int{}
	var holders []string
	for i, p := range ids {
		rank[p] = i + 1
		if holds(p) {
			h := strconv.Itoa(i + 1)
			if p == host {
				h += "h"
			}
			holders = append(holders, h)
		}
	}
	dead := func(p peer.ID) bool { sn := n.byID[p]; return sn == nil || sn.dead }
	return tr.asked(func(p peer.ID) int { return rank[p] }, dead, holders)
}

func (n *simnet) close() {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, sn := range n.nodes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			sn.close()
		}()
	}
	wg.Wait()
	if n.mn != nil {
		n.mn.Close()
	}
	if n.cfg.Dir == "" && n.dir != "" {
		os.RemoveAll(n.dir)
	}
}

// close stops whatever of the node was started.
func (sn *simNode) close() {
	if sn.srch != nil {
		sn.srch.Close()
	}
	if sn.fl != nil {
		sn.fl.Close()
	}
	if sn.pub != nil {
		sn.pub.Close()
	}
	if sn.stop != nil {
		sn.stop()
	}
	if sn.reg != nil {
		sn.reg.Close()
	}
	if sn.heal != nil {
		sn.heal.Close()
	}
	if sn.d != nil {
		sn.d.Close()
	}
	sn.h.Host.Close()
}

var _ host.Host = (*linkedHost)(nil)

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func seed32(s uint64) (b [32]byte) {
	for i := range 8 {
		b[i] = byte(s >> (8 * i))
	}
	return b
}

// trim closes sn's connections to peers outside its routing table.
func trim(sn *simNode) {
	keep := map[peer.ID]bool{}
	for _, p := range sn.d.RoutingTable().ListPeers() {
		keep[p] = true
	}
	for _, c := range sn.h.Network().Conns() {
		if !keep[c.RemotePeer()] {
			c.Close()
		}
	}
}
