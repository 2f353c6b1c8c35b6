// Package flood finds terminals by flooding queries through the overlay of
// irmv nodes, with the semantics of Gnutella 0.6
// (https://rfc-gnutella.sourceforge.net/src/rfc-0_6-draft.html, section
// 2.2 "Message Routing") carried over a libp2p stream protocol. It is the
// fallback of the resolver when the DHT cannot answer, and the only way to
// answer partial (name token) queries.
//
// # Streams and framing
//
// The protocol ID is ProtocolID, "/irmv/flood/1.0.0". Every message travels
// on its own new stream: the sender opens a stream, writes one frame and
// closes the stream; the receiver reads one frame and never answers on that
// stream. A frame is internal/wire's, as in every irmv protocol: the body's
// length as an unsigned varint followed by the body, one JSON object; a
// frame of length 0, or a stream that ends before or within its frame, is
// malformed.
// Unknown JSON fields are ignored; every known field is validated (Decode)
// and a message breaking any rule is dropped whole.
//
// # Messages
//
// A query has at most MaxQuerySize (2 KiB) of body. Its fields:
//
//   - type: "query".
//   - guid: 16 random bytes as 32 hex digits. Each deepening round of a
//     search has its own GUID.
//   - ttl: how many more hops the query may travel, counting the hop to the
//     receiver; at least 1. A receiver forwards it only if ttl > 1.
//   - hops: how often the query has been forwarded; 0 from the originator,
//     so the receiver is hops+1 overlay hops away from the originator.
//   - ttl + hops must not exceed MaxTTL (7); both stay within 0..7.
//   - kind: "name", "phone", "uid" or "ip"; value: the identifier
//     normalised by package ident (for names the folded text, matched by
//     token prefix), 1 to MaxValueLen (256) bytes of UTF-8.
//   - also (optional): further readings of the same query text, at most
//     MaxAlso (2) objects {"kind", "value"} with the rules of kind and
//     value, e.g. the unique ID "desk-42" beside the name "desk-42". A
//     query is flooded once for all its readings; a terminal that matches
//     any of them answers it.
//
// For example:
//
//	{"type":"query","guid":"<32 hex digits>","ttl":3,"hops":0,"kind":"name","value":"jose mul"}
//
// A hit has at most MaxHitSize (64 KiB) of body and MaxHitRecords (32)
// records. Its fields:
//
//   - type: "hit".
//   - guid: the GUID of the query answered.
//   - hops: the answering node's distance from the originator (the query's
//     hops + 1 on arrival), 1..7. Informational: not authenticated.
//   - origin: the peer ID of the node that answered.
//   - records: package record records of matching terminals, at least one.
//     Each must decode, have a terminal handle, a signature of at most
//     1 KiB and a known signer, and name origin as its hosting node in the
//     signed body. Signatures are not checked in transit; the originator's
//     resolver verifies them. A node that has more matches than fit in one
//     hit sends several hits.
//
// For example:
//
//	{"type":"hit","guid":"...","hops":2,"origin":"12D3KooW...","records":[{...}]}
//
// # Handling a query
//
// A node receiving a query, in order:
//
//  1. drops it if the sending peer is over its rate (a token bucket per peer,
//     Options.PerPeerRate and PerPeerBurst, default 50/s with a burst of
//  100. — reason "rate";
//  2. drops it if its GUID was seen within Options.DedupTTL (default 2
//     min) — reason "duplicate". The seen GUIDs are a bounded LRU
//     (Options.DedupSize, default 10000) that also remembers, per GUID, the
//     peer the query came from (the reverse path). A node's own queries are
//     in it too, so they are never answered by their originator;
//  3. matches it against its hosted terminals (Matcher) and, if anything
//     matched, sends hits to the peer the query came from;
//  4. if ttl > 1, forwards it with ttl-1 and hops+1 to its flood neighbours
//     except the peer it came from.
//
// The flood neighbours are the connected peers whose peerstore lists
// ProtocolID (learned by identify), ranked by SHA-256(own peer ID || peer
// ID), the first Options.MaxNeighbours (default 8). The ranking is
// deterministic and stable as peers come and go, yet differs from node to
// node, so the neighbour graph is random-like and well connected (ranking
// by XOR distance would close clusters off from each other).
//
// # Routing hits
//
// A hit is routed back along the reverse path: a node receiving a hit for
// one of its own pending queries delivers it to that query if it came
// from a neighbour the query went to (reverse paths end there), at most
// 96 hits per neighbour and round (an honest neighbour sends its own
// matches, at most MaxHitRecords hits, and routes at most 64): hits from
// other peers are dropped ("unasked"), a neighbour's excess too ("rate"),
// whether the query is still running or has ended; for a GUID in
// its seen cache it sends the hit unchanged to the remembered upstream peer,
// at most 64 hits per GUID (more are dropped with reason "rate"); a hit
// for one of its own queries that has ended is dropped ("late") but its
// delay is remembered (see Dynamic querying); for any other GUID it drops
// the hit ("unknown_guid"). A pending query holds at most 256 hits that its
// reader has not taken (and 64 more in transit); more are dropped
// ("query_full"), so neighbours cannot fill the node's memory with hits.
//
// # Dynamic querying
//
// Query deepens step by step rather than flooding at once: rounds with TTL
// 1, 2, 3, 5 and 7 (cut at QueryOptions.MaxTTL, which is always the last
// round) are sent to the neighbours, each with a fresh GUID, and the round
// with TTL t waits t × QueryOptions.StepWait for hits (by default four
// times the slowest neighbour's round-trip time, as the DHT measured it,
// plus MinStepWait, at most DefaultStepWait; hits of earlier rounds still
// count while later rounds run). The neighbours' round trips say nothing of
// farther links, so each hit also measures the hops it came over: a hit
// from h hops that took e raises the wait per hop to 2 × e/h (at most
// MaxStepWait) for the running round and the later ones, and hits from
// far, slow hops are waited for. A match that only a far, slow node holds
// shows no such thing before it arrives, so the originator also remembers,
// for each distance, the slowest time a hit took in the last AnswerMemory
// (10 min), hits that came after their query ended included (not ones
// slower than MaxTTL × MaxStepWait, which no round waits for); the last
// round waits 1.5 times the slowest remembered from within its TTL, plus
// MinStepWait, at most TTL × MaxStepWait. Such a match is missed by the
// first query that reaches it and found by the next. It stops once
// QueryOptions.Want records have arrived, so a terminal close by costs only
// a handful of messages. QueryOptions.FullFlood sends one round at MaxTTL
// instead.
//
// Toward Want, the records delivered by one flood neighbour (the
// authenticated peer of the hit's stream, not the hit's origin or hops,
// which a node makes up at will along with signed records of made-up
// terminals and nodes) count for at most ceil(Want/2). So for a Want of 2
// or more an early end needs hits delivered by two neighbours: one rogue
// neighbour answering every query at once with Want matching records
// cannot end it in its first round, and the query deepens as if those
// records had not come (it still delivers them; the resolver verifies
// and the caller judges). The cost is that a node with a single flood
// neighbour, or whose matches all lie behind one neighbour, always runs
// every round. A Want of 1 asks for the first record from anyone, so one
// neighbour ends it (the resolver, package search, asks for 2 when a
// search wants one result); rogues reached through two neighbours can
// still end a query early. The resolver applies the same share to the
// results a search may fill before its flood has ended.
//
// # Drops and metrics
//
// Messages that do not decode ("malformed"), are over their size limit
// ("oversize") or break the TTL rules ("ttl") are dropped and the stream is
// reset; the node goes on. Every drop is counted by reason in Stats and, if
// Options.Registerer is set, in irmv_flood_dropped_total{reason}; messages
// in and out are counted in irmv_flood_messages_total{dir,type}.
package flood
