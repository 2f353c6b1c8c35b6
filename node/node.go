package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irmv/irmv/call"
	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/p2pstream"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/search/flood"
	"github.com/irmv/irmv/share"
	"github.com/irmv/irmv/share/roam"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ProtocolPrefix makes irmv's Kademlia DHT its own network.
const ProtocolPrefix = "/irmv"

// Node is a running irmv node.
type Node struct {
	opts      Options
	log       *slog.Logger
	host      host.Host
	dht       *dht.IpfsDHT
	reg       *prometheus.Registry
	mdns      io.Closer
	norm      *ident.Normalizer
	pub       *search.Publisher
	share     *share.Registry
	flood     *flood.Flooder
	search    *search.Service
	roam      *roam.Service
	calls     *call.Switch
	sip       sipSide // nil: off (see sip.go)
	turn      *turn.Server
	borrow    atomic.Pointer[borrowed]     // a public node's relay, if ours is not public (relay.go)
	lend      lender                       // our relay lent to other nodes (relay.go)
	wan       atomic.Pointer[ma.Multiaddr] // the public address AutoNAT v2 confirmed (wan.go)
	wanLost   atomic.Bool                  // it was withdrawn and not confirmed again (wan.go)
	fresh     freshConns                   // API connections without a request yet (api_conns.go)
	wanAssume chan ma.Multiaddr            // taken for confirmed (tests: AssumeWANForTest)
	an2       *autonatv2.AutoNAT           // nil: none (wan.go)
	admin     string                       // admin token (see adminToken)
	api       *http.Server
	apiLn     net.Listener
	https     *http.Server
	httpsLn   net.Listener
	boot      []peer.AddrInfo
	boots     *bootstrapper
	policy    *addrPolicy
	relays    *relayKeeper
	reach     atomic.Value    // string: ReachPublic, ReachPrivate, ReachUnknown
	ctx       context.Context // the node's life; Close cancels it
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	apiLimit *apiLimiter  // the API's per-client buckets
	newTerms newTerminals // new terminals per client beyond loopback

	httpsFingerprint atomic.Pointer[string] // SHA-256 of httpsLn's certificate (https.go); the API answers while it is set
}

// New starts a node: it loads (or creates) the identity, starts the libp2p
// host, the DHT, discovery and the terminal API. Close stops it.
func New(opts Options) (*Node, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	boot, err := parseBootstrap(opts.Bootstrap)
	if err != nil {
		return nil, err
	}
	key, err := LoadIdentity(opts.DataDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &Node{opts: opts, log: opts.Logger, reg: prometheus.NewRegistry(), boot: boot, ctx: ctx, cancel: cancel}
	if err := n.start(ctx, key); err != nil {
		n.Close()
		return nil, err
	}
	n.log.Info("Node started", "peer_id", n.host.ID(), "addrs", n.Addrs(), "api", n.APIAddr())
	return n, nil
}

func (n *Node) start(ctx context.Context, key crypto.PrivKey) (err error) {
	opts := n.opts
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var nh *nodeHost
	n.policy = &addrPolicy{}
	if nh, err = newHost(key, &opts, n.reg, n.policy); err != nil {
		return err
	}
	n.host = nh
	n.an2 = nh.an2
	// Before any connection: the first peers' identify tells the address
	// the node is seen at.
	servicesUp := make(chan struct{})
	if err := n.watchWAN(ctx, servicesUp); err != nil {
		return err
	}
	// Private: a DHT client (nobody could dial it to ask); public or
	// not known yet: a server, so that nodes on a LAN or on loopback,
	// which AutoNAT cannot judge, still form a DHT.
	mode := dht.ModeAutoServer
	switch opts.Reachability {
	case ReachPublic:
		mode = dht.ModeServer
	case ReachPrivate:
		mode = dht.ModeClient
	}
	// p2pstream: a query to a peer not yet connected sends its request
	// without waiting for identify (one round trip less), a stream per
	// message.
	n.dht, err = dht.New(p2pstream.Host(n.host),
		dht.WithCustomMessageSender(p2pstream.NewDHTSender),
		dht.Mode(mode),
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.BucketSize(bucketSize(opts.Profile)),
		dht.BootstrapPeers(n.boot...),
		dht.ProviderManagerOpts(records.ProvideValidity(opts.ProvideValidity)),
		dht.AddressFilter(n.policy.Filter),
		dht.QueryFilter(func(_ any, ai peer.AddrInfo) bool { return n.policy.DHTServer(ai) }),
		dht.RoutingTableFilter(func(_ any, p peer.ID) bool {
			return n.policy.DHTServer(n.host.Peerstore().PeerInfo(p))
		}),
	)
	if err != nil {
		return fmt.Errorf("dht: %w", err)
	}
	if n.relays, err = newRelayKeeper(n.host, n.boot, n.policy, n.log); err != nil {
		return fmt.Errorf("relays: %w", err)
	}
	circuits := n.relays.Circuits
	n.policy.circuits.Store(&circuits)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.relays.Serve(ctx)
	}()

	if err := n.startServices(ctx, key); err != nil {
		return err
	}
	close(servicesUp)
	if err := n.watchReachability(ctx); err != nil {
		return err
	}

	// Before the API serves: GET /v1/node reports it.
	n.boots = newBootstrapper(n, opts.Bootstrap, n.boot)
	if n.apiLn, err = net.Listen("tcp", opts.API); err != nil {
		return fmt.Errorf("terminal API on %s: %w%s", opts.API, err, inUseHint(err, "--api"))
	}
	n.api = n.newAPIServer()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.api.Serve(n.limitConns(n.apiLn, "api")); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("Terminal API stopped", "err", err)
		}
	}()

	if err := n.startHTTPS(); err != nil {
		return err
	}

	if opts.MDNS {
		if n.mdns, err = n.startMDNS(ctx); err != nil {
			return err
		}
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.boots.Serve(ctx)
	}()
	return nil
}

// baseContext makes requests end when the node closes: a streaming search
// would otherwise outlast the API shutdown's grace period.
func (n *Node) baseContext(net.Listener) context.Context { return n.ctx }

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// DHT is the node's Kademlia DHT.
func (n *Node) DHT() *dht.IpfsDHT { return n.dht }

// APIAddr is the address the terminal API listens on.
func (n *Node) APIAddr() net.Addr { return n.apiLn.Addr() }

// APIURL is the terminal API's base URL.
func (n *Node) APIURL() string { return "http://" + n.apiLn.Addr().String() }

// Addrs are the node's full multiaddrs, each ending in /p2p/<peer ID>.
func (n *Node) Addrs() []string {
	ai := peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
	full, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil {
		return nil
	}
	out := make([]string, len(full))
	for i, a := range full {
		out[i] = a.String()
	}
	return out
}

// Close stops the node and waits for everything it started. Only the
// first call does anything; later calls return the first result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		var errs []error
		if n.api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, n.api.Shutdown(ctx))
			cancel()
		} else if n.apiLn != nil {
			n.apiLn.Close()
		}
		if n.https != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, n.https.Shutdown(ctx))
			cancel()
		}
		if n.mdns != nil {
			errs = append(errs, n.mdns.Close())
		}
		if n.sip != nil {
			errs = append(errs, n.sip.Close())
		}
		if n.calls != nil {
			errs = append(errs, n.calls.Close())
		}
		if n.turn != nil {
			errs = append(errs, n.turn.Close())
		}
		if n.roam != nil {
			errs = append(errs, n.roam.Close())
		}
		if n.search != nil {
			errs = append(errs, n.search.Close())
		}
		if n.flood != nil {
			errs = append(errs, n.flood.Close())
		}
		if n.pub != nil {
			errs = append(errs, n.pub.Close())
		}
		n.wg.Wait() // the register's presence loop
		if n.share != nil {
			errs = append(errs, n.share.Close())
		}
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		if n.host != nil {
			errs = append(errs, n.host.Close())
		}
		n.wg.Wait()
		n.closeErr = errors.Join(errs...)
		n.log.Info("Node stopped")
	})
	return n.closeErr
}

// parseBootstrap parses bootstrap multiaddrs; each must name a peer ID.
func parseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: bootstrap %q: %v", ErrBadOptions, s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: bootstrap %q: needs /p2p/<peer-id>: %v", ErrBadOptions, s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}
