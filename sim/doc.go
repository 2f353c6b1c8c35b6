// Package sim runs a network of irmv nodes in one process over go-libp2p's
// mocknet and measures lookups, flooding and churn.
//
// Each simulated node is composed exactly as package node wires a real one
// (node/services.go): a kad-dht in server mode under the /irmv prefix, a
// share.Registry (a bbolt file per node in a temporary directory), a
// search.Publisher announcing through the node's provide
// (internal/dhtprovide), a flood.Flooder and a search.Service. Only the
// host differs: a mocknet host with a fixed one-way latency per link
// instead of TCP/QUIC sockets, whose one address every peer may use.
//
// # Links
//
// Mocknet dials only peers that share a link. Linking every pair up front
// costs O(N²) link objects; instead each node's host is wrapped so that
// Connect and NewStream create the link on first use. Any node can dial any
// other, as on a network of access points with routable addresses, but only
// pairs that actually talk cost memory. At start each node dials Degree
// random peers; the DHT finds everyone else through them, and each node
// refreshes its routing table once (kad-dht's ForceRefresh). Config.Trim
// then drops connections outside the routing table, as a connection manager
// would, which saves memory.
//
// Mocknet delivers a write of under 256 bytes followed by a close at once,
// without the link's latency; the wrapped streams delay such closes so that
// every message pays the latency of its link.
//
// # Churn
//
// A killed node's host is closed without any goodbye at the irmv or DHT
// level (its connections drop, as when a process dies), and dials to it
// then fail only after Config.DeadDial, as dials to a powered-off access
// point time out.
//
// # Workload
//
// Terminals (a uid each) are registered on every node and announced; flood
// cost is measured next, one query at a time on a quiet network (dynamic
// querying for random terminals, then full floods of TTL 1..7 for an
// identifier no one has); then half the exact lookups run, the churn
// strikes, and the other half run. Each lookup asks from a random live node
// for a random terminal on another live node, via the DHT, limit 1.
//
// # Hops and round trips
//
// A lookup's DHT hops are counted from kad-dht's query events
// (routing.RegisterForQueryEvents on the lookup's context): a peer taken
// from the asker's routing table has depth 1; a peer learned from the
// answer of a peer at depth d has depth d+1. The lookup's DHT depth is the
// smallest depth of a queried peer that held the provider record (0 when the
// asker held it). Hops add one for the direct lookup request to the hosting
// node. Round trips are the first result's latency divided by twice the link
// latency; mocknet dials cost no round trips, so a new connection's
// handshake (which TCP+Noise would add) is not counted. Nodes send a
// request on a new connection at once (internal/p2pstream), beside
// identify; with Config.WaitIdentify they wait for identify first, as
// go-libp2p's host does, and identify is counted as a round trip.
package sim
