package node_test

import (
	"bytes"
	"crypto/tls"
	"net/http"
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
