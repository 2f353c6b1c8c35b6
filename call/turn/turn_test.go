package turn

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/transport/v5/test"
	pionturn "github.com/pion/turn/v5"

	"github.com/irmv/irmv/internal/testenv"
)

// startServer starts a relay on a free loopback port, closed at cleanup.
func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// newClient is a pion TURN client on a loopback socket, closed at cleanup.
func newClient(t *testing.T, s *Server, username, password string) *pionturn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: s.Addr().String(),
		TURNServerAddr: s.Addr().String(),
		Username:       username,
		Password:       password,
		Realm:          DefaultRealm,
		Conn:           conn,
		RTO:            100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := conn.Close(); err != nil {
			t.Errorf("closing the client's socket: %v", err)
		}
	})
	return c
}

// offlineServer has credentials but no sockets.
func offlineServer(secret string) *Server {
	return &Server{secret: []byte(secret), log: slog.New(slog.DiscardHandler)}
}

func TestNewRejectsMissingOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want error
	}{
		{"no listen addr", Options{RelayIP: net.IPv4(127, 0, 0, 1)}, ErrNoListenAddr},
		{"no relay ip", Options{ListenAddr: "127.0.0.1:0"}, ErrNoRelayIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts); !errors.Is(err, tc.want) {
				t.Fatalf("New: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCredentialsFormat(t *testing.T) {
	s := offlineServer("secret")
	user, pass, exp := s.Credentials("alice", time.Hour)
	if want := fmt.Sprintf("%d:alice", exp.Unix()); user != want {
		t.Fatalf("username %q, want %q", user, want)
	}
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expires in %v", d)
	}
	mac := hmac.New(sha1.New, []byte("secret"))
	mac.Write([]byte(user))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); pass != want {
		t.Fatalf("password %q, want %q", pass, want)
	}
	if _, ok := s.authenticate(user, DefaultRealm, &net.UDPAddr{}, true); !ok {
		t.Fatal("fresh credentials refused")
	}
	expired, _, _ := s.Credentials("alice", -time.Second)
	for _, bad := range []string{expired, "", "alice", "x:alice", "99999999999999999999:alice", "1:alice"} {
		if _, ok := s.authenticate(bad, DefaultRealm, &net.UDPAddr{}, true); ok {
			t.Errorf("username %q accepted", bad)
		}
	}
}

func TestRelay(t *testing.T) {
	t.Cleanup(test.CheckRoutines(t))
	s := startServer(t)

	// STUN: the relay tells a client its address.
	user, pass, _ := s.Credentials("alice", time.Minute)
	c := newClient(t, s, user, pass)
	mapped, err := c.SendBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	if !mapped.(*net.UDPAddr).IP.IsLoopback() {
		t.Fatalf("mapped address %v", mapped)
	}

	// TURN: a relayed socket reaches a peer and back.
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if ip := relay.LocalAddr().(*net.UDPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("relayed address %v, want 127.0.0.1", relay.LocalAddr())
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := relay.WriteTo([]byte("ping"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("ping")) {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}
	if from.String() != relay.LocalAddr().String() {
		t.Fatalf("peer got packet from %v, want relay %v", from, relay.LocalAddr())
	}
	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err = relay.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("pong")) {
		t.Fatalf("relay read %q, %v", buf[:n], err)
	}
}

func TestExpiredCredentialsRefused(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		name  string
		creds func() (user, pass string)
	}{
		{"expired", func() (string, string) {
			u, p, _ := s.Credentials("bob", -time.Second)
			return u, p
		}},
		{"wrong password", func() (string, string) {
			u, _, _ := s.Credentials("bob", time.Minute)
			return u, "AAAA"
		}},
		{"foreign secret", func() (string, string) {
			u, p, _ := offlineServer("other").Credentials("bob", time.Minute)
			return u, p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user, pass := tc.creds()
			c := newClient(t, s, user, pass)
			if relay, err := c.Allocate(); err == nil {
				_ = relay.Close()
				t.Fatal("allocation granted")
			}
		})
	}
	// The same client with fresh credentials is served.
	user, pass, _ := s.Credentials("bob", time.Minute)
	c := newClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("fresh credentials: %v", err)
	}
	_ = relay.Close()
}

func TestICEServers(t *testing.T) {
	s := startServer(t)
	servers := s.ICEServers("carol", time.Minute)
	if len(servers) != 2 {
		t.Fatalf("%d servers", len(servers))
	}
	addr := s.Addr().String()
	if got := servers[0].URLs[0]; got != "stun:"+addr {
		t.Errorf("STUN URL %q", got)
	}
	turnServer := servers[1]
	if got := turnServer.URLs[0]; got != "turn:"+addr+"?transport=udp" {
		t.Errorf("TURN URL %q", got)
	}
	if !strings.HasSuffix(turnServer.Username, ":carol") || turnServer.Credential == "" {
		t.Errorf("credentials %q %v", turnServer.Username, turnServer.Credential)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// With a port range, relayed addresses stay inside it (a firewall in
// front of the relay opens exactly those); a bad range is refused.
func TestRelayPortRange(t *testing.T) {
	if _, err := New(Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MinPort: 50010, MaxPort: 50000}); !errors.Is(err, ErrBadPorts) {
		t.Fatalf("New with 50010-50000: %v, want ErrBadPorts", err)
	}
	s, err := New(Options{ListenAddr: "127.0.0.1:0", RelayIP: net.IPv4(127, 0, 0, 1), MinPort: 50000, MaxPort: 50003})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Close(t, "s", s)
	u, p, _ := s.Credentials("t", time.Minute)
	for range 3 {
		relay, err := newClient(t, s, u, p).Allocate()
		if err != nil {
			t.Fatal(err)
		}
		defer relay.Close()
		if port := relay.LocalAddr().(*net.UDPAddr).Port; port < 50000 || port > 50003 {
			t.Errorf("relayed port %d outside 50000-50003", port)
		}
	}
}
