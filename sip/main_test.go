package sip

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/irmv/irmv/internal/leaktest"
)

// The reader of a UDP connection that a sipgo client dialled can outlive
// UserAgent.Close: sipgo v1.7.3's connection pool skips, when cleared,
// connections whose reference count went negative ("UDP ref went negative
// on try close"), so their socket stays open until the process ends. It is
// a library defect, seen once in CI; every other sipgo goroutine (the
// server's listeners, TCP connections, transactions) is still checked.
func TestMain(m *testing.M) {
	leaktest.Main(m, goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"))
}
