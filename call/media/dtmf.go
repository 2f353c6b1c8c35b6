package media

import (
	"encoding/json"
	"strings"
	"time"
)

// DTMF limits.
const (
	// DTMFDigits are the keys a DTMF message carries, in the order of
	// their RFC 4733 event codes (section 3.2: 0-9, *, #, A-D).
	DTMFDigits     = "0123456789*#ABCD"
	maxDTMFMessage = 256
	// MaxDTMFDuration bounds the duration a message may ask for.
	MaxDTMFDuration = 5 * time.Second
)

// dtmfMsg is a key press on the chat channel.
type dtmfMsg struct {
	Type       string `json:"type"` // "dtmf"
	Digit      string `json:"digit"`
	DurationMS int    `json:"duration_ms,omitempty"`
}

// SendDTMF sends a key press (one of DTMFDigits) held for d on the chat
// channel; the other side gets it from [ParseDTMF] in Options.OnControl.
// Before the channel is open it fails with [ErrChatNotOpen].
func (p *Peer) SendDTMF(digit byte, d time.Duration) error {
	b, err := DTMFMessage(digit, d)
	if err != nil {
		return err
	}
	return p.SendControl(b)
}

// DTMFMessage is the control message of a key press.
func DTMFMessage(digit byte, d time.Duration) ([]byte, error) {
	if strings.IndexByte(DTMFDigits, digit) < 0 {
		return nil, ErrBadDigit
	}
	d = min(max(d, 0), MaxDTMFDuration)
	return json.Marshal(dtmfMsg{Type: "dtmf", Digit: string(digit), DurationMS: int(d / time.Millisecond)})
}

// ParseDTMF reads a control message; ok is false for anything but a
// well-formed key press.
func ParseDTMF(b []byte) (digit byte, d time.Duration, ok bool) {
	if len(b) > maxDTMFMessage {
		return 0, 0, false
	}
	var m dtmfMsg
	if json.Unmarshal(b, &m) != nil || m.Type != "dtmf" || len(m.Digit) != 1 || strings.IndexByte(DTMFDigits, m.Digit[0]) < 0 {
		return 0, 0, false
	}
	if m.DurationMS < 0 || time.Duration(m.DurationMS)*time.Millisecond > MaxDTMFDuration {
		return 0, 0, false
	}
	return m.Digit[0], time.Duration(m.DurationMS) * time.Millisecond, true
}
