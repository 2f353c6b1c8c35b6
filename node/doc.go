// Package node wires an irmv node together: its persistent libp2p identity,
// the libp2p host (TCP and QUIC only), the Kademlia DHT under the /irmv
// protocol prefix, mDNS discovery, the register of hosted terminals, the
// search services, the terminal API and its metrics.
//
// Behind NATs: AutoNAT tells a node whether others can dial it
// (reach.go). A public node runs the DHT as a server and a circuit relay
// v2 service; a private one runs the DHT as a client and keeps relay
// slots on public nodes (relayslots.go); hole punching upgrades relayed
// connections where the NATs allow. addrpolicy.go decides which addresses
// a node announces and which of other nodes' it uses; bootstrap.go keeps
// it connected to its bootstrap nodes.
//
// A Node is built from Options by New, which starts everything, and stopped
// by Close, which stops everything New started and waits for it.
package node
