package call

import (
	"errors"
	"sync"

	"github.com/coder/websocket"

	"github.com/irmv/irmv/call/signal"
)

// ErrClosed is returned by Attach after Close.
var ErrClosed = errors.New("call: switch closed")

// Line is a local terminal attached to the Switch in process instead of
// by WebSocket: a gateway that speaks for the terminal (the SIP side's
// bridge for a SIP phone). It sends and receives the same messages as
// a terminal's WebSocket, without hello and welcome.
type Line struct {
	s    *Switch
	ss   *session
	recv chan signal.Msg
	once sync.Once
}

// Attach connects terminal as a Line, replacing any WebSocket or Line it
// had (whose calls end). Messages for it arrive on Recv until Close.
func (s *Switch) Attach(terminal string) (*Line, error) {
	if !s.begin() {
		return nil, ErrClosed
	}
	ss := newSession(terminal, nil)
	l := &Line{s: s, ss: ss, recv: make(chan signal.Msg, sendQueue)}
	s.mu.Lock()
	old := s.sessions[terminal]
	s.sessions[terminal] = ss
	s.o.Directory.SetConnected(terminal, true)
	s.mu.Unlock()
	if old != nil {
		old.close(websocket.StatusGoingAway, "replaced by a newer connection")
	}
	s.o.Directory.Heartbeat(terminal)
	go func() {
		defer s.wg.Done()
		defer close(ss.flushed)
		defer close(l.recv)
		for {
			select {
			case m := <-ss.out:
				select {
				case l.recv <- m:
				case <-ss.done:
				}
			case <-ss.done:
				for { // what is still queued, as far as the reader takes it
					select {
					case m := <-ss.out:
						select {
						case l.recv <- m:
						default:
							return
						}
					default:
						return
					}
				}
			case <-s.ctx.Done():
				ss.close(websocket.StatusGoingAway, "node shutting down")
			}
		}
	}()
	return l, nil
}

// Recv delivers the messages for the terminal; it is closed after Close
// (or when the Switch closes or another connection replaces the Line).
// The reader must keep up: a Line whose queue fills is closed.
func (l *Line) Recv() <-chan signal.Msg { return l.recv }

// Send passes a message from the terminal into the Switch, as if it came
// over its WebSocket (From is set by the Switch).
func (l *Line) Send(m signal.Msg) {
	select {
	case <-l.ss.done:
		return
	default:
	}
	l.s.handle(l.ss, m)
}

// Heard tells the Switch that the terminal is there for call, offered to
// it, without a message for the other side (a SIP phone's 100 Trying): the
// answer timeout (Options.AnswerTimeout) stops.
func (l *Line) Heard(call string) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	if c := l.s.calls[call]; c != nil && c.b.stream == nil && c.b.ss == l.ss {
		c.heard = true
	}
}

// Close detaches the terminal; its calls end. Only the first call acts.
func (l *Line) Close() {
	l.once.Do(func() {
		l.s.mu.Lock()
		if l.s.sessions[l.ss.terminal] == l.ss {
			delete(l.s.sessions, l.ss.terminal)
			l.s.o.Directory.SetConnected(l.ss.terminal, false)
		}
		l.s.mu.Unlock()
		l.s.gone(l.ss, "terminal disconnected", false)
		l.ss.close(websocket.StatusNormalClosure, "")
	})
}
