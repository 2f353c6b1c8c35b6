package node

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/irmv/irmv/node/web"
)

// NodeInfo is the answer of GET /v1/node.
type NodeInfo struct {
	PeerID       string   `json:"peer_id"`
	Addrs        []string `json:"addrs"`
	Peers        []string `json:"peers"`
	RoutingTable int      `json:"routing_table"`
	Terminals    int      `json:"terminals"`
}

// Info describes the node as GET /v1/node does.
func (n *Node) Info() NodeInfo {
	info := NodeInfo{
		PeerID:       n.host.ID().String(),
		Addrs:        n.Addrs(),
		Peers:        []string{},
		RoutingTable: n.dht.RoutingTable().Size(),
		Terminals:    n.terminalCount(),
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
	return n.guard(newAPILimiter().wrap(mux))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
