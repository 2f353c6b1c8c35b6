package node

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files of the HTTPS listener's self-signed certificate in the data dir.
const (
	httpsCertFile = "https.crt"
	httpsKeyFile  = "https.key"
)

// startHTTPS starts the optional HTTPS listener: the same API and web page,
// for browsers on the LAN, which allow WebCrypto and the microphone only
// in a secure context. Requests over it never get the loopback exemption.
func (n *Node) startHTTPS() error {
	if n.opts.HTTPS == "" {
		return nil
	}
	cert, err := n.httpsCert()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", n.opts.HTTPS)
	if err != nil {
		return fmt.Errorf("https on %s: %w%s", n.opts.HTTPS, err, inUseHint(err, "--https"))
	}
	n.httpsLn = ln
	fp := certFingerprint(cert.Certificate[0])
	n.httpsFingerprint.Store(&fp)
	n.log.Info("Serving HTTPS", "addr", ln.Addr().String(), "sha256", fp)
	n.https = n.newAPIServer()
	n.https.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.https.ServeTLS(n.limitConns(ln, "https"), "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("HTTPS listener stopped", "err", err)
		}
	}()
	return nil
}

// HTTPSURL is the HTTPS listener's base URL, "" when there is none.
func (n *Node) HTTPSURL() string {
	if n.httpsLn == nil {
		return ""
	}
	return "https://" + n.httpsLn.Addr().String()
}

// HTTPSFingerprint is the SHA-256 fingerprint of the HTTPS listener's
// certificate as browsers show it (hex pairs, colon-separated), so that a
// user can check a self-signed one; "" when there is no listener.
func (n *Node) HTTPSFingerprint() string {
	if fp := n.httpsFingerprint.Load(); fp != nil {
		return *fp
	}
	return ""
}

// certFingerprint is the SHA-256 fingerprint of a DER certificate, as
// openssl x509 -fingerprint -sha256 and browsers print it.
func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// httpsCert loads the configured certificate, or the node's self-signed
// one, creating it on first use.
func (n *Node) httpsCert() (tls.Certificate, error) {
	if n.opts.HTTPSCert != "" || n.opts.HTTPSKey != "" {
		cert, err := tls.LoadX509KeyPair(n.opts.HTTPSCert, n.opts.HTTPSKey)
		if err != nil {
			return cert, fmt.Errorf("%w: https certificate: %v", ErrBadOptions, err)
		}
		return cert, nil
	}
	certPath := filepath.Join(n.opts.DataDir, httpsCertFile)
	keyPath := filepath.Join(n.opts.DataDir, httpsKeyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		return cert, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return cert, fmt.Errorf("https certificate %s: %w (move it away to create a new one)", certPath, err)
	}
	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		return cert, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return cert, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return cert, err
	}
	n.log.Info("Created a self-signed HTTPS certificate", "path", certPath)
	return tls.X509KeyPair(certPEM, keyPEM)
}

// selfSigned makes a certificate for this machine's addresses and names.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "irmv node"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLinkLocalUnicast() {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ipn.IP)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}
