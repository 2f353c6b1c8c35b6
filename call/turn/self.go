package turn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pion/turn/v5"

	"github.com/irmv/irmv/internal/pionlog"
)

// SelfAllocation is an allocation the node holds on its own relay, as a
// terminal would: the port check (call/turn/portcheck) has another node
// send to its relayed port at the node's public address, which proves
// that a NAT in front forwards the relayed ports (--turn-ports) too.
type SelfAllocation struct {
	client *turn.Client
	conn   net.PacketConn // the client's socket
	relay  net.PacketConn // the relayed address
	port   int
}

// selfUser is the user name of the node's own allocations.
const selfUser = "self-check"

// AllocateSelf allocates an IPv4 relayed address on the relay for its own
// node; Close frees it.
func (s *Server) AllocateSelf(ctx context.Context) (*SelfAllocation, error) {
	la, _ := s.Addr().(*net.UDPAddr)
	if la == nil || la.IP.To4() == nil {
		return nil, errors.New("turn: no IPv4 socket")
	}
	ip := la.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	conn, err := net.ListenPacket("udp4", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return nil, fmt.Errorf("turn: self allocation: %w", err)
	}
	user, pass, _ := s.Credentials(selfUser, time.Minute)
	server := net.JoinHostPort(ip.String(), fmt.Sprint(la.Port))
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server, TURNServerAddr: server, Conn: conn,
		Username: user, Password: pass, Realm: s.realm,
		LoggerFactory: pionlog.Factory(s.log),
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("turn: self allocation: %w", err)
	}
	a := &SelfAllocation{client: c, conn: conn}
	if err := c.Listen(); err != nil {
		a.Close()
		return nil, fmt.Errorf("turn: self allocation: %w", err)
	}
	if a.relay, err = c.AllocateWithContext(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("turn: self allocation: %w", err)
	}
	ra, _ := a.relay.LocalAddr().(*net.UDPAddr)
	if ra == nil {
		a.Close()
		return nil, errors.New("turn: self allocation: no UDP relayed address")
	}
	a.port = ra.Port
	return a, nil
}

// Port is the relayed address's port.
func (a *SelfAllocation) Port() int { return a.port }

// Permit lets datagrams from ip through to the allocation.
func (a *SelfAllocation) Permit(ip net.IP) error {
	return a.client.CreatePermission(&net.UDPAddr{IP: ip})
}

// ReadFrom reads a datagram that reached the relayed address, and whom
// it came from.
func (a *SelfAllocation) ReadFrom(b []byte) (int, net.Addr, error) { return a.relay.ReadFrom(b) }

// SetReadDeadline bounds ReadFrom.
func (a *SelfAllocation) SetReadDeadline(t time.Time) error { return a.relay.SetReadDeadline(t) }

// Close frees the allocation.
func (a *SelfAllocation) Close() error {
	var err error
	if a.relay != nil {
		err = a.relay.Close()
	}
	a.client.Close()
	return errors.Join(err, a.conn.Close())
}
