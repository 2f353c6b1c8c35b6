package node

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The terminal API's guards against browsers turned against it: DNS
// rebinding (a foreign Host), cross-site requests (a foreign Origin or
// Sec-Fetch-Site, or a body that is not JSON), framing and loading answers
// as script. Non-browser clients (the CLI, hooks, curl) pass them as they
// are; browsers get no loopback exemption (see fromBrowser).

// guard wraps the API's handler in its checks. Every answer, refusals
// included, carries the anti-framing and no-sniffing headers.
func (n *Node) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: "+r.Method+" "+r.URL.Path+" from "+originOf(r))
	}))
	inner := cop.Handler(requireJSON(next))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		// No page of another origin may load an answer as script, image
		// or media (the search oracle), whatever its content type.
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !n.hostAllowed(r) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("host %q is not served here: use this node's address, or start it with --api-host NAME", r.Host))
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// originOf names where a browser request came from, for errors.
func originOf(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	return "another site (Sec-Fetch-Site: " + r.Header.Get("Sec-Fetch-Site") + ")"
}

// fromBrowser reports whether a browser sent r: browsers add Origin to
// every request but plain navigations and Sec-Fetch-Site to all of them
// (since 2023). Such requests may come from any page the user opens, so
// they get none of the loopback exemptions.
func fromBrowser(r *http.Request) bool {
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != ""
}

// requireJSON answers 415 to a request whose body is not declared JSON:
// an HTML form (or a no-cors fetch) can only send form or text types.
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Method != http.MethodGet && r.Method != http.MethodHead {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send the body as application/json", r.Header.Get("Content-Type")))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether r names this node in Host: its own address
// on the connection (any loopback name on a loopback connection, with the
// listener's port if any; 0.0.0.0 and :: too) or a name configured with
// --api-host. A page
// whose DNS name was rebound to this node's address sends its own name
// and is refused. Requests without Host (HTTP/1.0) come from no browser.
func (n *Node) hostAllowed(r *http.Request) bool {
	if r.Host == "" {
		return true
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, "" // no port: the scheme's default
	}
	host = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	for _, name := range n.opts.APIHosts {
		if host == strings.ToLower(name) {
			return true
		}
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lap, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return false
	}
	if port != "" && port != fmt.Sprint(lap.Port()) {
		return false
	}
	laddr := lap.Addr().Unmap().WithZone("")
	if laddr.IsLoopback() && host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap().WithZone("")
	// http://0.0.0.0:port/ reaches this machine's loopback.
	return ip == laddr || (laddr.IsLoopback() && (ip.IsLoopback() || ip.IsUnspecified()))
}
