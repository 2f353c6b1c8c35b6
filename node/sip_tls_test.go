//go:build !irmv_no_sip

package node_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/irmv/irmv/call/phone"
	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

// readSIPStream reads one SIP message from a stream (TLS, TCP).
func readSIPStream(r *bufio.Reader) (sipmsg.Message, error) {
	tp := textproto.NewReader(r)
	var head strings.Builder
	clen := 0
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, err
		}
		head.WriteString(line + "\r\n")
		if line == "" {
			if head.Len() == 2 { // CRLF keepalive
				head.Reset()
				continue
			}
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && (strings.EqualFold(k, "Content-Length") || k == "l") {
			clen, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return sipmsg.ParseMessage(append([]byte(head.String()), body...))
}

// A phone registered over TLS gets the node's INVITE over that very
// connection, with the node's TLS URIs and an SRTP key; a phone on UDP
// gets none when SDES is for TLS only. Once the TLS connection closed,
// the phone is not dialled back: the caller hears unavailable.
func TestSIPOverTLSFlow(t *testing.T) {
	o := nodetest.Options(t)
	o.SIP, o.SIPTLS, o.SIPOpen, o.SIPSDESTLSOnly = "127.0.0.1:0", "127.0.0.1:0", []string{"127.0.0.0/8"}, true
	n := nodetest.Start(t, o)
	pem, err := os.ReadFile(filepath.Join(o.DataDir, "https.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("https.crt: no certificate")
	}
	tc, err := tls.Dial("tcp", n.SIPTLSAddr().String(), &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tr := bufio.NewReader(tc)
	tlsPort := n.SIPTLSAddr().(*net.TCPAddr).Port
	fmt.Fprintf(tc, "REGISTER sips:127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-t1;rport\r\n"+
		"From: <sips:carol@127.0.0.1>;tag=c\r\nTo: <sips:carol@127.0.0.1>\r\nCall-ID: tls-1\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sips:carol@127.0.0.1:5099>\r\nExpires: 600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		tlsPort, tc.LocalAddr())
	tc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if m, err := readSIPStream(tr); err != nil || m.(*sipmsg.Response).StatusCode != 200 {
		t.Fatalf("REGISTER over TLS: %v %v", m, err)
	}

	ph, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)}, n.SIP().Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	fmt.Fprintf(ph, "REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-u1;rport\r\n"+
		"From: <sip:dave@127.0.0.1>;tag=d\r\nTo: <sip:dave@127.0.0.1>\r\nCall-ID: udp-1\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:dave@%s>\r\nExpires: 120\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		n.SIP().Addr(), ph.LocalAddr(), ph.LocalAddr())
	buf := make([]byte, 65535)
	readUDP := func() (sipmsg.Message, error) {
		ph.SetReadDeadline(time.Now().Add(30 * time.Second))
		k, err := ph.Read(buf)
		if err != nil {
			return nil, err
		}
		return sipmsg.ParseMessage(buf[:k])
	}
	if m, err := readUDP(); err != nil || m.(*sipmsg.Response).StatusCode != 200 {
		t.Fatalf("REGISTER over UDP: %v %v", m, err)
	}

	caller, _ := startGoPhone(t, n, client.Registration{Name: "Caller", UID: "caller"}, phone.Options{})
	// call places a call to uid; the phone's INVITE is answered busy by
	// answer, and the call's error returned.
	call := func(uid string, read func() (sipmsg.Message, error), write func([]byte) error, check func(*sipmsg.Request)) error {
		t.Helper()
		res := find(t, n, uid, uid)
		errc := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		go func() {
			c, err := caller.Call(ctx, res, phone.CallOptions{})
			if c != nil {
				c.Hangup()
			}
			errc <- err
		}()
		if read != nil {
			for {
				m, err := read()
				if err != nil {
					t.Fatalf("%s: no INVITE: %v", uid, err)
				}
				if req, ok := m.(*sipmsg.Request); ok && req.Method == sipmsg.INVITE {
					check(req)
					if err := write([]byte(sipmsg.NewResponseFromRequest(req, 486, "Busy Here", nil).String())); err != nil {
						t.Fatal(err)
					}
					break
				}
			}
		}
		return <-errc
	}
	err = call("carol", func() (sipmsg.Message, error) { return readSIPStream(tr) },
		func(b []byte) error { _, err := tc.Write(b); return err },
		func(req *sipmsg.Request) {
			via := req.Via()
			if req.Recipient.String() != "sips:carol@127.0.0.1:5099" || via == nil || !strings.EqualFold(via.Transport, "TLS") {
				t.Errorf("INVITE to %s via %v, want to the contact over TLS", req.Recipient.String(), via)
			}
			if ct := req.Contact(); ct == nil || ct.Address.String() != fmt.Sprintf("sips:irmv@127.0.0.1:%d", tlsPort) {
				t.Errorf("INVITE's Contact %v, want the node's sips: URI on its TLS port", ct)
			}
			if !strings.Contains(string(req.Body()), "a=crypto:") {
				t.Errorf("INVITE over TLS offers no SRTP key:\n%s", req.Body())
			}
		})
	if !errors.Is(err, phone.ErrBusy) {
		t.Fatalf("call to carol: %v, want busy", err)
	}
	err = call("dave", readUDP, func(b []byte) error { _, err := ph.Write(b); return err },
		func(req *sipmsg.Request) {
			if strings.Contains(string(req.Body()), "a=crypto:") {
				t.Errorf("INVITE over UDP offers an SRTP key:\n%s", req.Body())
			}
		})
	if !errors.Is(err, phone.ErrBusy) {
		t.Fatalf("call to dave: %v, want busy", err)
	}

	// The TLS connection closes: carol is not dialled back (whether the
	// node saw the close yet or its write fails).
	tc.Close()
	if err := call("carol", nil, nil, nil); !errors.Is(err, phone.ErrUnavailable) {
		t.Fatalf("call to carol after her connection closed: %v, want unavailable", err)
	}
}

// --sip-tls without the SIP side, or with a certificate that does not
// load, is refused with a clear error; the node does not start.
func TestSIPTLSBadOptions(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*node.Options)
		want string
	}{
		{"no SIP side", func(o *node.Options) { o.SIPTLS = "127.0.0.1:0" }, "--sip-tls needs the SIP side"},
		{"no certificate", func(o *node.Options) {
			o.SIP, o.SIPTLS, o.HTTPSCert, o.HTTPSKey = "127.0.0.1:0", "127.0.0.1:0", filepath.Join(t.TempDir(), "none.crt"), filepath.Join(t.TempDir(), "none.key")
		}, "https certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := nodetest.Options(t)
			c.mod(&o)
			n, err := node.New(o)
			if err == nil {
				n.Close()
				t.Fatal("node started")
			}
			if !errors.Is(err, node.ErrBadOptions) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want ErrBadOptions saying %q", err, c.want)
			}
		})
	}
}
