package record

import "fmt"

// Status is a terminal's presence as its hosting node sees it.
type Status uint8

// Statuses. The zero value is StatusUnknown.
const (
	StatusUnknown Status = iota
	StatusOnline
	StatusIdle
	StatusBusy
	StatusOffline
)

var statusNames = [...]string{"unknown", "online", "idle", "busy", "offline"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ParseStatus parses a status name. "unknown" is not accepted: it is never
// a status a terminal sets.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if i > 0 && n == s {
			return Status(i), nil
		}
	}
	return StatusUnknown, fmt.Errorf("%w: %q (want online, idle, busy or offline)", ErrBadStatus, s)
}

// MarshalText implements encoding.TextMarshaler.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts "unknown".
func (s *Status) UnmarshalText(b []byte) error {
	if string(b) == "unknown" {
		*s = StatusUnknown
		return nil
	}
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Callable reports whether a terminal with this status can take a call.
func (s Status) Callable() bool { return s == StatusOnline || s == StatusIdle }
