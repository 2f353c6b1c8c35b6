package call

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/irmv/irmv/call/signal"
)

// session is one terminal's WebSocket. Writes go through a queue so a slow
// terminal never blocks the Switch; a terminal that lets the queue fill
// up is disconnected.
type session struct {
	terminal string
	conn     *websocket.Conn
	out      chan signal.Msg
	done     chan struct{}
	once     sync.Once
	wg       *sync.WaitGroup // the Switch's: Close waits for closing handshakes
}

func newSession(terminal string, conn *websocket.Conn, wg *sync.WaitGroup) *session {
	return &session{terminal: terminal, conn: conn, out: make(chan signal.Msg, sendQueue), done: make(chan struct{}), wg: wg}
}

var errSlow = errors.New("terminal too slow: send queue full")

func (ss *session) send(m signal.Msg) error {
	select {
	case <-ss.done:
		return errors.New("terminal disconnected")
	default:
	}
	select {
	case ss.out <- m:
		return nil
	default:
		ss.close(websocket.StatusPolicyViolation, errSlow.Error())
		return errSlow
	}
}

func (ss *session) writeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ss.done:
			return
		case m := <-ss.out:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := wsjson.Write(wctx, ss.conn, m)
			cancel()
			if err != nil {
				ss.close(websocket.StatusInternalError, "write failed")
				return
			}
		}
	}
}

func (ss *session) close(code websocket.StatusCode, reason string) {
	ss.once.Do(func() {
		close(ss.done)
		ss.wg.Add(1)
		go func() { // Close waits for the peer's answer
			defer ss.wg.Done()
			ss.conn.Close(code, reason)
		}()
	})
}
