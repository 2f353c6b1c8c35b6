package node

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/irmv/irmv/call/policy"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node/web"
)

// Info describes the node as GET /v1/node does.
func (n *Node) Info() client.NodeInfo {
	info := client.NodeInfo{
		PeerID:        n.host.ID().String(),
		Addrs:         n.Addrs(),
		Reachability:  n.Reachability(),
		DialableAddrs: []string{},
		Relays:        []string{},
		Bootstrap:     n.boots.Info(),
		Peers:         []string{},
		RoutingTable:  n.dht.RoutingTable().Size(),
		DHTMode:       "client",
		Terminals:     n.terminalCount(),
		TURNRelayIP:   n.turnRelayIP(),
		HTTPSSHA256:   n.HTTPSFingerprint(),
	}
	if a := n.WANAddr(); a != nil {
		info.WANAddr = a.String()
	}
	// kad-dht reports the configured mode only; a server answers the
	// protocol.
	if slices.Contains(n.host.Mux().Protocols(), protocol.ID(ProtocolPrefix+"/kad/1.0.0")) {
		info.DHTMode = "server"
	}
	for _, a := range info.Addrs {
		if m, err := ma.NewMultiaddr(a); err == nil && len(dialable([]ma.Multiaddr{m})) > 0 {
			info.DialableAddrs = append(info.DialableAddrs, a)
		}
	}
	for _, p := range n.relays.Relays() {
		info.Relays = append(info.Relays, p.String())
	}
	for _, p := range n.host.Network().Peers() {
		info.Peers = append(info.Peers, p.String())
	}
	return info
}

func (n *Node) terminalCount() int { return n.share.Count() }

func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /v1/node", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Info())
	})
	// The terminal side's shared figures, for the web page.
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, policy.Current())
	})
	n.terminalRoutes(mux)
	n.sipRoutes(mux)
	metrics := promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if err := n.authorizeAdmin(r); err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		metrics.ServeHTTP(w, r)
	})
	page := web.Handler() // the web terminal: GET / and its assets
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /static/", page)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	n.apiLimit = newAPILimiter()
	return n.guard(n.apiLimit.wrap(mux))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Errors say "<admin token>" as written: answers are JSON with nosniff,
	// never HTML, so there is nothing to escape for.
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
