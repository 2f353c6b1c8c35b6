package node

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/search"
	"github.com/irmv/irmv/share"
)

// maxBody bounds every JSON request body of the terminal API.
const maxBody = 64 << 10

// decodeBody decodes a JSON request body strictly: unknown fields, wrong
// types, trailing data and oversized bodies are errors.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return fmt.Errorf("request body over %d bytes", maxBody)
		case errors.Is(err, io.EOF):
			return errors.New("empty request body: want a JSON object")
		}
		return fmt.Errorf("malformed JSON: %s", jsonProblem(err))
	}
	if dec.More() {
		return errors.New("malformed JSON: trailing data after the object")
	}
	return nil
}

// jsonProblem says what is wrong with a request body in the API's terms:
// encoding/json names Go types and prefixes "json: ".
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := "another type"
		switch te.Type.Kind() {
		case reflect.String:
			want = "a string"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = "a whole number"
		case reflect.Float32, reflect.Float64:
			want = "a number"
		case reflect.Bool:
			want = "true or false"
		case reflect.Struct, reflect.Map:
			want = "an object"
		case reflect.Slice, reflect.Array:
			want = "an array"
		}
		if f := strings.TrimPrefix(te.Field, "."); f != "" {
			return fmt.Sprintf("%s is %s, want %s", f, article(te.Value), want)
		}
		return fmt.Sprintf("the body is %s, want %s", article(te.Value), want)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// article puts "a" or "an" before a JSON value kind ("array", "number").
func article(kind string) string {
	if strings.ContainsAny(kind[:min(1, len(kind))], "aeiou") {
		return "an " + kind
	}
	return "a " + kind
}

// statusOf maps register errors to HTTP statuses.
func statusOf(err error) int {
	switch {
	case errors.Is(err, share.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, share.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, share.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, share.ErrClosed), errors.Is(err, share.ErrFull):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// bearer returns the request's bearer token, if any.
func bearer(r *http.Request) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	return ""
}

// isLoopback reports whether the API listens on loopback only.
func (n *Node) isLoopback() bool {
	if ta, ok := n.apiLn.Addr().(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	return false
}

// localTrusted reports whether r may go without a token: it came over the
// plain loopback API (HTTPS serves the LAN) from a program on this machine,
// not from a browser, which sends requests for any page it shows.
func (n *Node) localTrusted(r *http.Request) bool {
	return n.isLoopback() && r.TLS == nil && !fromBrowser(r)
}

// authorize lets a request about terminal t through for the node's admin,
// for the terminal itself (its token) and for a localTrusted request
// without a token.
func (n *Node) authorize(r *http.Request, t string) error {
	tok := bearer(r)
	if tok == "" {
		if n.localTrusted(r) {
			return nil
		}
		return fmt.Errorf("%w: send Authorization: Bearer <terminal or admin token> (needed beyond loopback and from browsers)", share.ErrForbidden)
	}
	if n.isAdmin(tok) {
		return nil
	}
	return n.share.Authorize(t, tok)
}

// authorizeAdmin lets a request about all terminals or the node through
// for the admin and for a localTrusted request without a token.
func (n *Node) authorizeAdmin(r *http.Request) error {
	tok := bearer(r)
	switch {
	case tok == "" && n.localTrusted(r):
		return nil
	case tok == "":
		return fmt.Errorf("%w: send Authorization: Bearer <admin token> (<data-dir>/admin.token; needed beyond loopback and from browsers)", share.ErrForbidden)
	case n.isAdmin(tok):
		return nil
	}
	return fmt.Errorf("%w: this needs the admin token", share.ErrForbidden)
}

func (n *Node) isAdmin(tok string) bool {
	return subtle.ConstantTimeCompare([]byte(tok), []byte(n.admin)) == 1
}

// remoteIP is the request's source address.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}

func (n *Node) terminalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/terminals", n.handleRegister)
	mux.HandleFunc("POST /v1/terminals/prepare", n.handlePrepare)
	mux.HandleFunc("GET /v1/terminals", func(w http.ResponseWriter, r *http.Request) {
		if err := n.authorizeAdmin(r); err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"terminals": n.share.List()})
	})
	mux.HandleFunc("GET /v1/terminals/{terminal}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("terminal")
		if err := n.authorize(r, id); err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		t, err := n.share.Get(id)
		if err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("DELETE /v1/terminals/{terminal}", func(w http.ResponseWriter, r *http.Request) {
		t := r.PathValue("terminal")
		if err := n.authorize(r, t); err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		if err := n.share.Remove(t); err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"removed": t})
	})
	mux.HandleFunc("PUT /v1/terminals/{terminal}/status", n.handleStatus)
	mux.HandleFunc("POST /v1/terminals/{terminal}/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		t := r.PathValue("terminal")
		if err := n.authorize(r, t); err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		ack, err := n.share.Heartbeat(t)
		if err != nil {
			writeError(w, statusOf(err), err.Error())
			return
		}
		writeJSON(w, http.StatusOK, ack)
	})
	mux.HandleFunc("GET /v1/search", n.handleSearch)
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) {
		// Plain requests get the API's JSON error, not the WebSocket
		// library's text.
		if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
			w.Header().Set("Upgrade", "websocket")
			writeError(w, http.StatusUpgradeRequired, "GET /v1/ws needs a WebSocket upgrade")
			return
		}
		n.calls.ServeWS(w, r)
	})
}

// headerHas reports whether the comma-separated header key lists token.
func headerHas(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// registration decodes a registration and fills in the address.
func (n *Node) registration(w http.ResponseWriter, r *http.Request) (client.Registration, bool) {
	var reg client.Registration
	if err := decodeBody(w, r, &reg); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return reg, false
	}
	if reg.Address == "" && !reg.Private {
		if reg.IP != "" {
			reg.Address = reg.IP
		} else {
			reg.Address = remoteIP(r)
		}
	}
	return reg, true
}

func (n *Node) handleRegister(w http.ResponseWriter, r *http.Request) {
	reg, ok := n.registration(w, r)
	if !ok {
		return
	}
	// Updating a registration needs that terminal's say-so, as any other
	// change does: else anyone could take its handle, token and calls.
	ack, err := n.share.RegisterLimited(reg, func(t string) error {
		if err := n.authorize(r, t); err != nil {
			return fmt.Errorf("%w (uid %q is registered as terminal %q: updating it needs that terminal's token or the admin token)", err, reg.UID, t)
		}
		return nil
	}, n.mayCreate(r))
	if errors.Is(err, errTooManyNew) {
		w.Header().Set("Retry-After", fmt.Sprint(int(newTermEvery.Seconds())))
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	}
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	if err := n.roam.Moved(r.Context(), ack.Record, reg.From, reg.FromToken, ack.Created); err != nil {
		// The terminal stays at its previous node: a registration here
		// too would make two of it.
		kept := "; the registration this node already had stays (with this update)"
		if ack.Created {
			kept = "; nothing was registered here"
			if rerr := n.share.Remove(ack.Terminal); rerr != nil {
				kept = "; removing the registration here failed: " + rerr.Error()
			}
		}
		status := http.StatusForbidden
		if errors.Is(err, share.ErrStale) {
			status = http.StatusConflict
		} else if errors.Is(err, share.ErrInvalid) {
			status = http.StatusBadRequest
		}
		writeError(w, status, err.Error()+kept)
		return
	}
	writeJSON(w, http.StatusCreated, ack)
}

// handlePrepare answers the body a terminal with its own key must sign.
func (n *Node) handlePrepare(w http.ResponseWriter, r *http.Request) {
	reg, ok := n.registration(w, r)
	if !ok {
		return
	}
	body, err := n.share.Prepare(reg)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"body": body, "sign": record.SigningBytes(body)})
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	t := r.PathValue("terminal")
	var req struct {
		Status string `json:"status"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, err := record.ParseStatus(req.Status)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := n.authorize(r, t); err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	ack, err := n.share.SetStatus(t, st)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ack)
}

// handleSearch streams results, one JSON object per line, as they arrive.
func (n *Node) handleSearch(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := client.Query{Text: v.Get("q"), Via: v.Get("via")}
	if s := v.Get("limit"); s != "" {
		var err error
		// Atoi, not Sscanf: "5abc" is not a limit.
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a positive whole number", s))
			return
		}
	}
	if s := v.Get("timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("timeout %q: want a duration like 3s", s))
			return
		}
		q.Timeout = d
	}
	if q.Text == "" {
		writeError(w, http.StatusBadRequest, "missing q: what to search for")
		return
	}
	// A search streams for up to its timeout: longer than the API's read
	// and write timeouts allow one request.
	rc := http.NewResponseController(w)
	until := time.Now().Add(search.MaxTimeout + apiWriteTimeout)
	rc.SetReadDeadline(until)
	rc.SetWriteDeadline(until)
	results, err := n.search.Search(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for res := range results {
		res.Record = nil // the API gives the verified view; peers get records
		if err := enc.Encode(res); err != nil {
			continue // client gone: drain so the search ends
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}
