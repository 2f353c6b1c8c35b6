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

// flushTimeout bounds the writing of what is still queued when a session
// closes (a hangup "node shutting down", say).
const flushTimeout = 2 * time.Second

// session is one terminal's WebSocket. Writes go through a queue so a slow
// terminal never blocks the Switch; a terminal that lets the queue fill
// up is disconnected.
type session struct {
	terminal string
	conn     *websocket.Conn
	out      chan signal.Msg
	done     chan struct{} // closed by close: sends are refused from then on
	flushed  chan struct{} // closed when writeLoop has flushed and closed conn
	once     sync.Once
	code     websocket.StatusCode // set before done is closed
	reason   string
}

func newSession(terminal string, conn *websocket.Conn) *session {
	return &session{terminal: terminal, conn: conn, out: make(chan signal.Msg, sendQueue),
		done: make(chan struct{}), flushed: make(chan struct{})}
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

// writeLoop writes the queue until the session closes, then writes what is
// still queued (so that a hangup sent just before reaches the terminal) and
// closes the connection. It must run for every session: close relies on it.
func (ss *session) writeLoop(ctx context.Context) {
	defer close(ss.flushed)
	for {
		select {
		case <-ctx.Done():
			ss.close(websocket.StatusGoingAway, "node shutting down")
		case <-ss.done:
		case m := <-ss.out:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := wsjson.Write(wctx, ss.conn, m)
			cancel()
			if err != nil {
				ss.close(websocket.StatusInternalError, "write failed")
				ss.conn.CloseNow()
				return
			}
			continue
		}
		break
	}
	// Not ctx: it may be cancelled already, and a cancelled write closes
	// the connection.
	fctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
flush:
	for {
		select {
		case m := <-ss.out:
			if wsjson.Write(fctx, ss.conn, m) != nil {
				break flush
			}
		default:
			break flush
		}
	}
	ss.conn.Close(ss.code, ss.reason)
}

// close refuses further sends and has writeLoop flush the queue and close
// the connection. Only the first close counts.
func (ss *session) close(code websocket.StatusCode, reason string) {
	ss.once.Do(func() {
		ss.code, ss.reason = code, reason
		close(ss.done)
	})
}
