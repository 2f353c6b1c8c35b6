// Package search finds terminals anywhere in an irmv network.
//
// Three paths feed one stream of results:
//
//   - local: the terminals this node hosts (its Matcher);
//   - dht: the identifier's hash is looked up in the Kademlia DHT, which
//     names the nodes hosting a terminal with it (provider records that
//     Publisher announces); each such node is then asked directly;
//   - flood: Gnutella-style query flooding (package search/flood), for
//     partial names and for when the DHT cannot answer.
//
// # Lookup protocol
//
// LookupProtocol ("/irmv/lookup/1.0.0") is the node-to-node record query of
// the design's lookup flow. On a new stream the asker writes one frame (see
// internal/wire: uvarint length, JSON) of at most MaxLookupRequest bytes,
//
//	{"kind":"phone","value":"+49301234567","limit":10}
//
// and closes its side; the hosting node answers with one frame of at most
// MaxLookupResponse bytes holding at most MaxLookupRecords records (the
// first matches, as many as fit),
//
//	{"records":[{"body":"…","sig":"…","signer":"node","status":"online","seen":…}]}
//
// or {"error":"…"} for a request that breaks the rules. The asker may send
// further requests on the same stream, each answered in turn, and closes
// its side when done; a stream idle for 10 s is closed. Each peer may ask
// 100 times a second (burst 200); streams over that are reset and counted.
// The asker verifies every record's signature and that its signed body
// names the answering peer (authenticated by libp2p) as the host; records
// failing either are dropped. Status comes from the hosting node itself,
// so it is always fresh.
//
// # Resolver
//
// Service.Search races the paths: an exact identifier (phone, unique ID,
// IP, or a whole name) goes to the DHT first; flooding starts after a head
// start (Options.FloodHeadStart) if the DHT has produced nothing, at once
// when the routing table is empty, and always for name queries, whose
// tokens may be prefixes. Results are de-duplicated per terminal
// (hosting node + handle) and say how they were found. A search ends at
// its limit of results; until the flood has ended, the records one flood
// neighbour delivers fill at most half of it (rounded up), the rest held
// back, so that one rogue neighbour answering at once with records of
// made-up terminals on made-up nodes (they verify: node IDs are free)
// cannot fill the results before deeper nodes have answered. A search
// with a limit of 1 takes nothing from the flood early: its flood wants
// two records (so it ends early only on two neighbours' hits) and what it
// brings is delivered, best match first, once it and the DHT path have
// ended (at the latest a little before the search's deadline). So an
// identifier the DHT holds is answered from the DHT whatever flood
// neighbours say, and one the flood alone finds comes when the flood has
// ended (its last round), not with the first hit.
package search
