package grant

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/internal/wire"
)

// FuzzResponse feeds answers of any shape to the decoder and the check
// Fetch applies: they are refused or accepted, never a crash, and an
// accepted one is within the limits.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		`{"ice_servers":[{"urls":["stun:11.0.0.10:3478"]},{"urls":["turn:11.0.0.10:3478?transport=udp"],"username":"1700000000:peer-12D3KooW","credential":"c2VjcmV0"}]}`,
		`{"error":"over quota"}`,
		`{"ice_servers":[{"urls":["http://x"]}]}`,
		`{"ice_servers":[{"urls":[]}]}`,
		`{}`,
	} {
		var b bytes.Buffer
		b.Write(binary.AppendUvarint(nil, uint64(len(s))))
		b.WriteString(s)
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp Response
		if err := wire.Read(bufio.NewReader(bytes.NewReader(data)), &resp, MaxResponse); err != nil {
			return
		}
		if signal.CheckICEServers(resp.ICEServers) != nil {
			return
		}
		if len(resp.ICEServers) > signal.MaxPeerICEServers {
			t.Fatalf("%d servers accepted", len(resp.ICEServers))
		}
	})
}
