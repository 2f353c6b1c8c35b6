package sip

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testCert is a self-signed certificate for 127.0.0.1 and the pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "irmv test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// newTLSEnv is a registrar that also listens for TLS; roots trust it.
func newTLSEnv(t *testing.T) (e *testEnv, roots *x509.CertPool) {
	cert, roots := testCert(t)
	e = newTestEnv(t, func(o *Options) {
		o.TLSAddr = "127.0.0.1:0"
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	})
	return e, roots
}

// tlsClient is a sipgo user agent whose TLS trusts roots.
func tlsClient(t *testing.T, roots *x509.CertPool) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ua.Close() })
	return c
}

func (e *testEnv) tlsRegisterReq(user string, expires int) *sip.Request {
	port := e.s.TLSAddr().(*net.TCPAddr).Port
	recipient := sip.Uri{Host: "127.0.0.1", Port: port, UriParams: sip.NewParams()}
	recipient.UriParams.Add("transport", "tls")
	req := sip.NewRequest(sip.REGISTER, recipient)
	aor := "<sip:" + user + "@127.0.0.1>"
	req.AppendHeader(sip.NewHeader("To", aor))
	req.AppendHeader(sip.NewHeader("From", aor+";tag=t1"))
	req.AppendHeader(sip.NewHeader("Contact", "<sips:"+user+"@127.0.0.1:5099>"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	return req
}

// A phone registers over TLS with digest: the binding keeps its TLS flow
// (transport TLS, the connection's source) and the long TCP expiry.
func TestRegisterOverTLS(t *testing.T) {
	e, roots := newTLSEnv(t)
	e.addUser("alice", "s3cret", "", "")
	c := tlsClient(t, roots)
	res := registerAuth(t, c, e.tlsRegisterReq("alice", 3600), "alice", "s3cret")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER over TLS: %d %s", res.StatusCode, res.Reason)
	}
	b := e.s.Bindings()
	if len(b) != 1 || b[0].Transport != "TLS" || b[0].Contact != "sips:alice@127.0.0.1:5099" || b[0].ExpiresAt.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("bindings %+v, want alice's over TLS for an hour", b)
	}
	if !e.s.hasFlow(b[0].Source) {
		t.Fatalf("no open TLS connection from %s", b[0].Source)
	}
	// The node's URIs for a phone on TLS name its TLS port.
	port := strconv.Itoa(e.s.TLSAddr().(*net.TCPAddr).Port)
	ip := net.IPv4(127, 0, 0, 1)
	if got, want := e.s.nodeURI("irmv", ip, "TLS", true), "sips:irmv@127.0.0.1:"+port; got != want {
		t.Fatalf("nodeURI over TLS (sips) = %q, want %q", got, want)
	}
	if got, want := e.s.nodeURI("irmv", ip, "TLS", false), "sip:irmv@127.0.0.1:"+port+";transport=tls"; got != want {
		t.Fatalf("nodeURI over TLS = %q, want %q", got, want)
	}
	// A wrong password over TLS is refused like anywhere.
	res = registerAuth(t, tlsClient(t, roots), e.tlsRegisterReq("alice", 3600), "alice", "wrong")
	if res.StatusCode != 403 {
		t.Fatalf("wrong password over TLS: %d, want 403", res.StatusCode)
	}
}

// Plain SIP sent to the TLS port gets no answer: the connection is
// closed and counted. A client that does not trust the node's
// certificate gives up (its own business); the node counts it too.
func TestTLSPortRefusesPlain(t *testing.T) {
	e, _ := newTLSEnv(t)
	dropped := func() float64 { return testutil.ToFloat64(e.s.m.dropped.WithLabelValues("tls")) }
	c, err := net.Dial("tcp", e.s.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// tcpRegister fails the test on a read error: send by hand.
	if _, err := c.Write([]byte("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bK-p\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=t\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: plain-1\r\nCSeq: 1 REGISTER\r\n" +
		"Content-Length: 0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if isTimeout(err) {
				t.Fatal("plain SIP on the TLS port: connection still open")
			}
			break
		}
		// A TLS alert at most, never a SIP answer.
		if n > 0 && string(buf[:min(n, 3)]) == "SIP" {
			t.Fatalf("plain SIP on the TLS port answered: %q", buf[:n])
		}
	}
	waitMetric(t, "tls drops", dropped, 1)

	// A client without the node's certificate in its roots.
	cc, err := tls.Dial("tcp", e.s.TLSAddr().String(), &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"})
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		if cc != nil {
			cc.Close()
		}
		t.Fatalf("TLS to the node with no roots: %v, want an unknown authority", err)
	}
	waitMetric(t, "tls drops", dropped, 2)
	if len(e.s.Bindings()) != 0 {
		t.Fatal("a binding after refused connections")
	}
}

func waitMetric(t *testing.T, what string, f func() float64, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v, want %v", what, f(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// addrConn and addrListener report another local address (a listener on
// every address) without binding one.
type addrConn struct {
	net.PacketConn
	a net.Addr
}

func (c addrConn) LocalAddr() net.Addr { return c.a }

type addrListener struct {
	net.Listener
	a net.Addr
}

func (l addrListener) Addr() net.Addr { return l.a }

// The node's Contact in its answers to a phone names the node's address
// toward the phone when it listens on every address (a phone on the LAN
// sent its ACK and BYE to 127.0.0.1 before), and its TLS port and
// scheme over TLS. Needs the LAN address of scripts/netns-run.
func TestContactNamesReachableAddress(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	s := &Server{udp: addrConn{udp, &net.UDPAddr{IP: net.IPv4zero, Port: 5060}}, tls: addrListener{tl, &net.TCPAddr{IP: net.IPv4zero, Port: 5061}}}
	for _, c := range []struct{ transport, scheme, want string }{
		{"UDP", "sip", "sip:irmv@10.99.0.1:5060"},
		{"TCP", "sip", "sip:irmv@10.99.0.1:5060"},
		{"TLS", "sip", "sip:irmv@10.99.0.1:5061;transport=tls"},
		{"TLS", "sips", "sips:irmv@10.99.0.1:5061"},
	} {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: c.scheme, User: "bob", Host: "10.99.0.1"})
		req.SetSource("10.99.0.7:5555") // a phone on the LAN
		req.SetTransport(c.transport)
		if got := s.contact(req).Address.String(); got != c.want {
			t.Errorf("%s %s: Contact %s, want %s", c.transport, c.scheme, got, c.want)
		}
	}
}
