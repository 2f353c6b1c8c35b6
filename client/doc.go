// Package client is the terminal side of an irmv node's HTTP API: the
// client that `irmv phone`, `irmv call`, `irmv share`, `irmv search`, the
// access point hooks and any Go program use, and the API's JSON shapes
// (Registration, Ack, Terminal, Query and Result, Event, NodeInfo, the SIP
// users and bindings). The node's own packages use these same types, so
// the server and this client cannot drift apart.
//
// A Go program builds a terminal from this package and package call/phone:
// client.New names the node, phone.Start registers the terminal (with its
// own Ed25519 key) and keeps it registered, Client.Search finds the callee
// and Phone.Call places the call; see the example and examples/terminal.
//
// # Access
//
// The node serves the API on --api (default 127.0.0.1:7370, plain HTTP)
// and, with --https, on the LAN. Requests from this machine over loopback
// need no token, unless a browser sends them. Everything else sends
// Authorization: Bearer <token>: a terminal's token (Ack.Token, from its
// registration) for requests about that terminal, or the node's admin
// token (<data-dir>/admin.token) for anything. Client.Token is sent when
// set.
//
// Request bodies are JSON (Content-Type: application/json; anything else
// is 415), one object of at most 64 KiB, decoded strictly: unknown fields,
// wrong types and trailing data are 400. Every error answer is
// {"error": "..."} with a 4xx or 5xx status; the client returns it as
// *APIError. Answers to every route may also be:
//
//	403  Host is not this node (DNS rebinding; see --api-host), or a
//	     cross-origin browser request, or a token is missing or wrong
//	404  no such route ({"error": "no such endpoint: METHOD PATH"})
//	415  a body that is not application/json
//	429  a client beyond loopback over its request rate; Retry-After says
//	     when to come back
//
// # Routes
//
//	GET /healthz
//	    200 {"status": "ok"}. (Client.WaitReady)
//	GET /v1/node
//	    200 NodeInfo: peer ID, addresses, reachability, relays, bootstrap
//	    state, peers, DHT. (Client.Node)
//	GET /v1/config
//	    200 call/policy.Config: the quality thresholds, timers and route
//	    order that terminals use, for the web page.
//	POST /v1/terminals                       body: Registration
//	    201 Ack with the terminal's handle and Token. A registration whose
//	    uid is already registered here updates that terminal (same handle).
//	    400 invalid identifier, address, status or TTL (share.ErrInvalid);
//	    403 the uid belongs to a terminal of this node and the request has
//	    neither its token nor the admin token (beyond loopback or from a
//	    browser), or a key-less registration or another key for a terminal
//	    registered with its own key; 429 a client beyond loopback (or a
//	    browser) registered 16 new terminals lately (then one a minute;
//	    Retry-After); 503 the node is shutting down or hosts its most
//	    terminals.
//	    (Client.Register)
//	POST /v1/terminals/prepare               body: Registration with Key
//	    200 {"body": base64, "sign": base64}: the record body the terminal
//	    signs (ed25519.Sign over "sign", which is record.SigningBytes of
//	    body); the terminal then registers with Body and Sig. 400, 403 as
//	    POST /v1/terminals. (Client.Prepare; phone.Start does both steps)
//	GET /v1/terminals                        admin
//	    200 {"terminals": [Terminal]}, sorted by name. (Client.List)
//	GET /v1/terminals/{terminal}             the terminal or admin
//	    200 Terminal; 404 unknown handle. (Client.Get)
//	DELETE /v1/terminals/{terminal}          the terminal or admin
//	    200 {"removed": "<terminal>"}; 404. (Client.Remove)
//	PUT /v1/terminals/{terminal}/status      body: {"status": "busy"}
//	    the terminal or admin. 200 Ack (no token); 400 a status other than
//	    online, idle, busy, offline; 404. (Client.SetStatus)
//	POST /v1/terminals/{terminal}/heartbeat  the terminal or admin
//	    200 Ack (no token): the registration's TTL starts again; 404.
//	    (Client.Heartbeat)
//	GET /v1/search?q=TEXT&via=&limit=&timeout=
//	    open to all: the directory. 200 application/x-ndjson, one Result
//	    per line as it arrives, until limit results (default 20, at most
//	    200) or timeout (default 5s, at most 60s); via is auto (default),
//	    dht or flood. 400 missing q, a limit or timeout that does not
//	    parse, an unknown via, or a query no identifier reads.
//	    (Client.Search)
//	GET /v1/ws                               WebSocket upgrade
//	    call signalling: the terminal sends hello with its handle and
//	    token, the node answers welcome (ICE servers, its peer ID); then
//	    invite, ringing, accept, candidate, update, hangup… as package
//	    call/signal describes. 426 without an upgrade. (package call/phone)
//	GET /metrics                             admin
//	    200 Prometheus text format.
//	GET /v1/sip/users                        admin
//	    200 {"users": [SIPUserInfo]}. (Client.SIPUsers)
//	POST /v1/sip/users                       admin, body: SIPUser
//	    201 SIPUserInfo; 400 a user part, password, name or phone that is
//	    not valid. (Client.SetSIPUser)
//	DELETE /v1/sip/users/{user}              admin
//	    204; 404 unknown user. (Client.RemoveSIPUser)
//	GET /v1/sip/bindings                     admin
//	    200 {"bindings": [SIPBinding]}. (Client.SIPBindings)
//	    Every /v1/sip/ route answers 404 while the node's SIP side is off.
//	GET /, GET /static/…
//	    the web terminal.
package client
