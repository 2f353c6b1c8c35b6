// Package call relays call signalling between terminals and nodes: the
// node's side of the call flow. A Switch accepts terminal WebSockets (GET
// /v1/ws), speaks the node-to-node protocol signal.Protocol, and passes
// each call's messages hop by hop: caller → caller's node → callee's node
// → callee and back, as package call/signal describes. Media never passes
// through the Switch; it runs between the terminals (package call/media),
// through the nodes' TURN relays (package call/turn) only when it must.
package call
