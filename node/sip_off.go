//go:build irmv_no_sip

package node

import (
	"fmt"
	"io"
	"net"
	"net/http"
)

// HasSIP tells whether this build has the SIP side. Builds with the tag
// irmv_no_sip leave package sip (and sipgo) out.
const HasSIP = false

type sipSide = io.Closer

func (n *Node) startSIP() error {
	if n.opts.SIPTLS == "" && (n.opts.SIP == "" || n.opts.SIP == "off" || (n.opts.Profile == "ap" && n.opts.SIP == DefaultSIPAP)) {
		n.opts.SIP = "off"
		return nil
	}
	return fmt.Errorf("%w: this build has no SIP side (built with irmv_no_sip); --sip off", ErrBadOptions)
}

// SIPAddr is nil: this build has no SIP side.
func (n *Node) SIPAddr() net.Addr { return nil }

// SIPTLSAddr is nil: this build has no SIP side.
func (n *Node) SIPTLSAddr() net.Addr { return nil }

func (n *Node) sipRoutes(mux *http.ServeMux) {
	mux.HandleFunc("/v1/sip/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "this build has no SIP side")
	})
}
