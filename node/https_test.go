package node_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/node"
	"github.com/irmv/irmv/node/nodetest"
)

func TestHTTPSListener(t *testing.T) {
	o := nodetest.Options(t)
	o.HTTPS = "127.0.0.1:0"
	n1, err := node.New(o)
	if err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := cl.Get(n1.HTTPSURL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("GET / over HTTPS: %d", resp.StatusCode)
	}
	first := resp.TLS.PeerCertificates[0].Raw
	n1.Close()

	// The certificate is kept across restarts, so a browser's exception holds.
	n2 := nodetest.Start(t, o)
	resp, err = cl.Get(n2.HTTPSURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, first) {
		t.Fatal("self-signed certificate changed across a restart")
	}

	// Over HTTPS even a loopback client needs a token to change a terminal.
	ack, err := n2.Registry().Register(client.Registration{UID: "desk-1", Address: "10.99.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("DELETE", n2.HTTPSURL()+"/v1/terminals/"+ack.Terminal, nil)
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("DELETE over HTTPS without a token: %d, want 403", resp.StatusCode)
	}
	req.Header.Set("Authorization", "Bearer "+ack.Token)
	resp, err = cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE over HTTPS with the terminal's token: %d", resp.StatusCode)
	}
}

// TestHTTPSFingerprint: a node serving HTTPS with its self-signed
// certificate tells its SHA-256 fingerprint in GET /v1/node (as browsers
// and openssl show it), so that a user can check the certificate the
// browser is shown; there was no way to.
func TestHTTPSFingerprint(t *testing.T) {
	o := nodetest.Options(t)
	o.HTTPS = "127.0.0.1:0"
	n := nodetest.Start(t, o)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := cl.Get(n.HTTPSURL() + "/v1/node")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info client.NodeInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
	var pairs []string
	for _, b := range sum {
		pairs = append(pairs, strings.ToUpper(hex.EncodeToString([]byte{b})))
	}
	if want := strings.Join(pairs, ":"); info.HTTPSSHA256 != want || n.HTTPSFingerprint() != want {
		t.Errorf("https_sha256 %q, HTTPSFingerprint %q; the certificate's is %q", info.HTTPSSHA256, n.HTTPSFingerprint(), want)
	}
	if plain := nodetest.Start(t, nodetest.Options(t)); plain.Info().HTTPSSHA256 != "" {
		t.Errorf("a node without --https has https_sha256 %q", plain.Info().HTTPSSHA256)
	}
}
