package call

import (
	"encoding/json"
	"testing"

	"github.com/irmv/irmv/call/signal"
)

// FuzzCheck feeds arbitrary JSON to the signalling validator: no panic,
// and what passes has a valid call ID and what its type requires.
func FuzzCheck(f *testing.F) {
	for _, m := range []signal.Msg{
		{Type: signal.TypeInvite, Call: "0123456789abcdef0123456789abcdef", To: &signal.Party{Node: "n", Terminal: "t"}},
		{Type: signal.TypeHangup, Call: "0123456789abcdef0123456789abcdef", Reason: "bye"},
		{Type: signal.TypeCandidate, Call: "00"},
	} {
		data, _ := json.Marshal(m)
		f.Add(data)
	}
	f.Add([]byte(`{"type":"accept","call":"0123456789abcdef0123456789abcdef","desc":{"type":"answer","sdp":"v=0"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m signal.Msg
		if json.Unmarshal(data, &m) != nil {
			return
		}
		if check(&m) != nil {
			return
		}
		if !validCallID(m.Call) {
			t.Fatalf("accepted call id %q", m.Call)
		}
		switch m.Type {
		case signal.TypeInvite:
			if m.To == nil || m.Desc == nil {
				t.Fatal("accepted an invite without to or offer")
			}
		case signal.TypeCandidate:
			if m.Candidate == nil {
				t.Fatal("accepted a candidate message without a candidate")
			}
		}
		r := relayed(m)
		if r.Token != "" || r.Terminal != "" || len(r.ICEServers) > 0 {
			t.Fatal("relayed message carries session fields")
		}
	})
}
