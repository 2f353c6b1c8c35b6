//go:build !irmv_no_sip

package node

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/sip"
)

// HasSIP tells whether this build has the SIP side (package sip).
const HasSIP = true

// sipSide is the SIP side as the node holds it: firmware builds without
// it (tag irmv_no_sip) link none of package sip.
type sipSide = *sip.Server

// sipFile holds SIP credentials (HA1 hashes) and bindings.
const sipFile = "sip.db"

// startSIP starts the SIP side unless it is off.
func (n *Node) startSIP() error {
	if n.opts.SIP == "" || n.opts.SIP == "off" {
		if n.opts.SIPTLS != "" {
			return fmt.Errorf("%w: --sip-tls needs the SIP side (--sip ADDR)", ErrBadOptions)
		}
		return nil
	}
	var open []netip.Prefix
	for _, s := range n.opts.SIPOpen {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%w: sip open network %q: want CIDR, e.g. 192.168.1.0/24", ErrBadOptions, s)
		}
		open = append(open, p.Masked())
	}
	var tlsConf *tls.Config
	if n.opts.SIPTLS != "" {
		cert, err := n.httpsCert()
		if err != nil {
			return fmt.Errorf("sip tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var err error
	n.sip, err = sip.New(sip.Options{
		Addr:            n.opts.SIP,
		TLSAddr:         n.opts.SIPTLS,
		TLSConfig:       tlsConf,
		SDESOverTLSOnly: n.opts.SIPSDESTLSOnly,
		DBPath:          filepath.Join(n.opts.DataDir, sipFile),
		Directory:       n.share,
		Normalizer:      n.norm,
		Realm:           n.opts.SIPRealm,
		OpenNets:        open,
		Algorithms:      n.opts.SIPDigest,
		Switch:          n.calls,
		Resolve:         n.search.Resolve,
		ICEServers:      n.iceServers,
		Rate:            n.opts.SIPRate,
		Registerer:      n.reg,
		Logger:          n.log,
	})
	if err != nil {
		if n.opts.SIPTLS != "" {
			return fmt.Errorf("sip on %s (tls %s): %w (choose others with --sip ADDR and --sip-tls ADDR, or --sip off)", n.opts.SIP, n.opts.SIPTLS, err)
		}
		return fmt.Errorf("sip on %s: %w (choose another with --sip ADDR, or --sip off)", n.opts.SIP, err)
	}
	return nil
}

// SIP is the node's SIP side, nil when it is off.
func (n *Node) SIP() *sip.Server { return n.sip }

// SIPAddr is where the SIP side listens, nil when it is off.
func (n *Node) SIPAddr() net.Addr {
	if n.sip == nil {
		return nil
	}
	return n.sip.Addr()
}

// SIPTLSAddr is where the SIP side listens for TLS, nil without.
func (n *Node) SIPTLSAddr() net.Addr {
	if n.sip == nil {
		return nil
	}
	return n.sip.TLSAddr()
}

// sipRoutes: SIP users (credentials) and bindings, all of them needing
// the admin token beyond loopback (the bindings name every phone's
// address and contact, like the listing of terminals).
func (n *Node) sipRoutes(mux *http.ServeMux) {
	// guard answers 404 while the SIP side is off and 403 without the
	// admin token beyond loopback.
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if n.sip == nil {
				writeError(w, http.StatusNotFound, "the SIP side is off (irmv node --sip ADDR)")
				return
			}
			if err := n.authorizeAdmin(r); err != nil {
				writeError(w, http.StatusForbidden, err.Error())
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /v1/sip/users", guard(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"users": n.sip.Users()})
	}))
	mux.HandleFunc("POST /v1/sip/users", guard(n.handleSIPUser))
	mux.HandleFunc("DELETE /v1/sip/users/{user}", guard(func(w http.ResponseWriter, r *http.Request) {
		if err := n.sip.RemoveUser(r.PathValue("user")); err != nil {
			writeError(w, sipStatus(err), err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("GET /v1/sip/bindings", guard(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"bindings": n.sip.Bindings()})
	}))
}

// handleSIPUser sets a SIP user's credentials: POST /v1/sip/users.
func (n *Node) handleSIPUser(w http.ResponseWriter, r *http.Request) {
	var nu client.SIPUser
	if err := decodeBody(w, r, &nu); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if nu.Phone != "" {
		p, err := n.norm.Phone(nu.Phone)
		if err != nil {
			writeError(w, http.StatusBadRequest, "phone: "+err.Error())
			return
		}
		nu.Phone = p // stored and shown as it is published
	}
	if nu.Name != "" {
		if _, _, err := n.norm.Name(nu.Name); err != nil {
			writeError(w, http.StatusBadRequest, "name: "+err.Error())
			return
		}
	}
	u, err := n.sip.AddUser(nu)
	if err != nil {
		writeError(w, sipStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func sipStatus(err error) int {
	switch {
	case errors.Is(err, sip.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, sip.ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}
