package node

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/irmv/irmv/call"
	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/call/turn"
	"github.com/irmv/irmv/call/turn/portcheck"
	"github.com/irmv/irmv/internal/dhtprovide"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	routedhost "github.com/libp2p/go-libp2p/p2p/host/routed"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/search/flood"
	"github.com/irmv/irmv/share"
	"github.com/irmv/irmv/share/roam"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Files in the data directory.
const (
	registryFile = "terminals.db"
	adminFile    = "admin.token"
	// turnSecretFile keys the relay's credentials, so that those handed
	// out (to other nodes' terminals too) survive a restart.
	turnSecretFile = "turn.secret"
)

// startServices starts the register of hosted terminals, DHT publishing,
// flooding and search.
func (n *Node) startServices(ctx context.Context, key crypto.PrivKey) error {
	var err error
	if n.norm, err = ident.NewNormalizer(n.opts.Region); err != nil {
		if errors.Is(err, ident.ErrUnknownRegion) {
			return fmt.Errorf("%w: --region %q: want a country code (ISO 3166 alpha-2), e.g. DE", ErrBadOptions, n.opts.Region)
		}
		return fmt.Errorf("%w: region: %v", ErrBadOptions, err)
	}
	if n.admin, err = adminToken(n.opts.DataDir); err != nil {
		return err
	}
	n.pub = search.NewPublisher(filteredRouter{n.dht, n.policy}, n.opts.RepublishInterval, n.reg, n.log)
	n.pub.SetReady(func() bool { return n.dht.RoutingTable().Size() > 0 })
	n.share, err = share.Open(share.Options{
		Path:         filepath.Join(n.opts.DataDir, registryFile),
		NodeKey:      key,
		Normalizer:   n.norm,
		TTL:          n.opts.TerminalTTL,
		MaxTerminals: maxTerminals(n.opts.Profile),
		// The switch tells which terminals hold their WebSocket.
		TrackConnections: true,
		Publisher:        n.pub,
		Registerer:       n.reg,
		Logger:           n.log,
	})
	if err != nil {
		return fmt.Errorf("terminal register: %w", err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.share.Serve(ctx)
	}()
	n.flood, err = flood.New(flood.Options{Host: n.host, Matcher: n.share, Registerer: n.reg, Logger: n.log})
	if err != nil {
		return fmt.Errorf("flooding: %w", err)
	}
	if err := n.startCalls(); err != nil {
		return err
	}
	n.search, err = search.New(search.Options{
		Host:       n.host,
		Matcher:    n.share,
		Normalizer: n.norm,
		Router:     filteredRouter{n.dht, n.policy},
		TableSize:  func() int { return n.dht.RoutingTable().Size() },
		Flooder:    n.flood,
		Registerer: n.reg,
		Logger:     n.log,
	})
	if err != nil {
		return err
	}
	if err := n.startSIP(); err != nil {
		return err
	}
	n.roam, err = roam.New(roam.Options{
		Host:         n.host,
		Registry:     n.share,
		Find:         n.findElsewhere,
		OnSuperseded: n.calls.Moved,
		Registerer:   n.reg,
		Logger:       n.log,
	})
	return err
}

// findElsewhere names the other nodes that host an older record of a
// terminal's key: the DHT's providers of one of its identifiers, asked
// directly (a search would hide the older records behind the newer one).
func (n *Node) findElsewhere(ctx context.Context, b *record.Body) []peer.ID {
	var id ident.ID
	switch ids := b.Identifiers; {
	case ids.UID != "":
		id = ident.ID{Kind: ident.KindUID, Value: ids.UID}
	case ids.Phone != "":
		id = ident.ID{Kind: ident.KindPhone, Value: ids.Phone}
	default:
		_, folded, err := n.norm.Name(ids.Name)
		if err != nil {
			return nil
		}
		id = ident.ID{Kind: ident.KindName, Value: folded}
	}
	var (
		mu  sync.Mutex
		out []peer.ID
		wg  sync.WaitGroup
	)
	for ai := range n.dht.FindProvidersAsync(ctx, id.CID(), 20) {
		if ai.ID == n.host.ID() {
			continue
		}
		wg.Go(func() {
			recs, _, err := search.QueryNode(ctx, n.host, ai.ID, []ident.ID{id}, search.MaxLookupRecords)
			if err != nil {
				return
			}
			for _, r := range recs {
				if rb, err := r.Decoded(); err == nil && bytes.Equal(rb.Key, b.Key) && rb.Seq < b.Seq {
					mu.Lock()
					out = append(out, ai.ID)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return out
}

// filteredRouter hands search only the provider addresses this node can
// use: kad-dht passes providers on as it got them (it filters only what
// it stores), and search adds them to the peerstore.
type filteredRouter struct {
	*dht.IpfsDHT
	policy *addrPolicy
}

func (r filteredRouter) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	in := r.IpfsDHT.FindProvidersAsync(ctx, c, count)
	out := make(chan peer.AddrInfo)
	go func() {
		defer close(out)
		for ai := range in {
			ai.Addrs = r.policy.Filter(ai.Addrs)
			select {
			case out <- ai:
			case <-ctx.Done():
				// kad-dht closes in once ctx ends.
				for range in {
				}
				return
			}
		}
	}()
	return out
}

// Provide announces c as internal/dhtprovide does (to the closest peers of
// its key, failing unless one took it), each peer told only the addresses
// of this node that it can use (addrPolicy.AnnounceTo).
func (r filteredRouter) Provide(ctx context.Context, c cid.Cid, announce bool) error {
	_, err := dhtprovide.Provide(ctx, r.IpfsDHT, c, announce, dhtprovide.Addrs{Filter: r.policy.Filter, AnnounceTo: r.policy.AnnounceTo})
	return err
}

// adminToken reads the node's admin token from the data dir, creating it
// on first start. Hooks and `irmv share` present it to act for terminals
// that have no key of their own.
func adminToken(dir string) (string, error) {
	return secretFile(filepath.Join(dir, adminFile), "admin token")
}

// secretFile reads a secret (32 random bytes, hex) from path, creating
// it on first use.
func secretFile(path, what string) (string, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(data))
		if len(tok) < 32 {
			return "", fmt.Errorf("%w: %s %s is too short", ErrBadOptions, what, path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	if err := writeFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return tok, nil
}

// startCalls starts the TURN relay and the call signalling switch.
func (n *Node) startCalls() error {
	public := false
	if n.opts.TURN != "off" {
		relayIP := n.opts.TURNRelayIP
		host, _, err := net.SplitHostPort(n.opts.TURN)
		if err != nil {
			return fmt.Errorf("%w: turn %q: %v", ErrBadOptions, n.opts.TURN, err)
		}
		if relayIP == nil {
			relayIP = net.ParseIP(host)
			if relayIP == nil || relayIP.IsUnspecified() {
				relayIP = firstLANAddr()
			}
		}
		secret, err := secretFile(filepath.Join(n.opts.DataDir, turnSecretFile), "TURN secret")
		if err != nil {
			return err
		}
		lo, hi, err := turnPorts(n.opts.TURNPorts)
		if err != nil {
			return err
		}
		n.turn, err = turn.New(turn.Options{ListenAddr: n.opts.TURN, RelayIP: relayIP, RelayIP6: n.opts.TURNRelayIP6,
			MinPort: lo, MaxPort: hi, Secret: []byte(secret), Logger: n.log})
		if err != nil {
			return fmt.Errorf("turn relay on %s: %w (choose another with --turn ADDR, or --turn off)", n.opts.TURN, err)
		}
		if public = n.relayIsPublic(relayIP); public {
			n.lendRelay()
		}
	}
	if !public {
		n.borrow.Store(&borrowed{})
	}
	// Other nodes behind NATs ask whether their relay's port answers at
	// their public address (wan.go).
	portcheck.Serve(n.host, n.log)
	var err error
	n.calls, err = call.NewSwitch(call.Options{
		// The routed host finds a callee's node through the DHT when its
		// addresses are not known yet.
		Host:        routedhost.Wrap(n.host, n.dht),
		Directory:   n.share,
		ICEServers:  n.iceServers,
		ICERefresh:  cmp.Or(n.opts.ICERefresh, iceRefresh),
		RingTimeout: n.opts.RingTimeout,
		Registerer:  n.reg,
		Logger:      n.log,
		// The other node's terminal in a call may relay through us too
		// (the route "relayed-peer" of call/phone).
		PeerICEServers: n.peerICEServers,
	})
	return err
}

// iceCredentialTTL is how long the TURN credentials a terminal gets last:
// long enough to set up a call (the relay refreshes an allocation past its
// credentials' expiry, call/turn), renewed by a new welcome every
// iceRefresh.
const iceCredentialTTL = time.Hour

// iceRefresh is how often a connected terminal gets fresh ICE servers
// (Options.ICERefresh's default).
const iceRefresh = 10 * time.Minute

// iceServers gives a terminal this node's STUN/TURN with fresh credentials.
// Behind a NAT, a public node's relay comes too (borrowedRelay).
func (n *Node) iceServers(terminal string) []signal.ICEServer {
	var own []signal.ICEServer
	if n.turn != nil {
		own = n.turn.ICEServers(terminal, iceCredentialTTL)
	}
	return append(own, n.borrowedRelay()...)
}

// peerICEServers gives a terminal of node remote, calling or called by
// one of ours, this node's STUN/TURN with fresh credentials, as a foreign
// user (turn.ForeignPrefix): it may relay only to this relay's own
// relayed addresses. The TTL is that of our own
// terminals': credentials must outlive the call, whose allocations are
// refreshed with them.
//
// Behind a NAT it gives the public relay it borrowed instead, the one its
// own terminals use.
func (n *Node) peerICEServers(remote peer.ID) []signal.ICEServer {
	if b := n.borrowedRelay(); b != nil {
		return b
	}
	if n.turn == nil {
		return nil
	}
	return n.turn.ICEServers(turn.ForeignPrefix+remote.String(), iceCredentialTTL)
}

// firstLANAddr is this machine's first public IPv4 address (a router's
// WAN side), else its first other non-loopback one, else 127.0.0.1.
func firstLANAddr() net.IP {
	var lan net.IP
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && !ipn.IP.IsLinkLocalUnicast() {
				if isPublicIP(ipn.IP) {
					return ipn.IP
				}
				if lan == nil {
					lan = ipn.IP
				}
			}
		}
	}
	if lan == nil {
		return net.IPv4(127, 0, 0, 1)
	}
	return lan
}

// Calls is the node's call signalling switch.
func (n *Node) Calls() *call.Switch { return n.calls }

// TURN is the node's STUN/TURN relay, nil when it is off.
func (n *Node) TURN() *turn.Server { return n.turn }

// Registry is the register of terminals this node hosts.
func (n *Node) Registry() *share.Registry { return n.share }

// Search is the node's search service.
func (n *Node) Search() *search.Service { return n.search }

// Flooder is the node's query flooder.
func (n *Node) Flooder() *flood.Flooder { return n.flood }

// Publisher announces the node's identifiers into the DHT.
func (n *Node) Publisher() *search.Publisher { return n.pub }

// Normalizer is the node's identifier normaliser.
func (n *Node) Normalizer() *ident.Normalizer { return n.norm }

// AdminToken is the token that authorises changes to any hosted terminal.
func (n *Node) AdminToken() string { return n.admin }

// apMaxTerminals bounds the terminals an access point hosts (--profile
// ap): some 8 MB of memory (scripts/footprint: 4 kB each).
const apMaxTerminals = 2048

// maxTerminals is the register's bound for a profile (0: share's default).
func maxTerminals(profile string) int {
	if profile == "ap" {
		return apMaxTerminals
	}
	return 0
}
