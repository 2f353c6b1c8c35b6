// Package web is the node's web terminal: a page, served at GET / of the
// terminal API, that registers the browser as a terminal with its own
// Ed25519 key (kept in IndexedDB), searches the directory and calls and
// takes calls with the browser's own WebRTC, speaking the same API and
// signalling (package call/signal) as irmv phone. The assets are plain
// HTML, CSS and JavaScript embedded in the binary: no build step.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var assets embed.FS

// Handler serves the page at "/" (index.html) and its assets under
// "/static/". Everything else is 404, so that a mux can route the API
// around it.
func Handler() http.Handler {
	sub, err := fs.Sub(assets, "static")
	if err != nil { // the embedded tree is fixed at build time
		return http.NotFoundHandler()
	}
	files := http.FileServerFS(sub)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", noDirs(files)))
	return mux
}

// noDirs refuses directory listings of the asset tree.
func noDirs(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || r.URL.Path[len(r.URL.Path)-1] == '/' {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
