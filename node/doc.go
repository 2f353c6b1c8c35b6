// Package node wires an irmv node together: its persistent libp2p identity,
// the libp2p host (TCP and QUIC only), the Kademlia DHT under the /irmv
// protocol prefix, mDNS discovery, the register of hosted terminals, the
// search services, the terminal API and its metrics.
//
// A Node is built from Options by New, which starts everything, and stopped
// by Close, which stops everything New started and waits for it.
package node
