package search

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/irmv/irmv/ident"
	"github.com/irmv/irmv/internal/wire"
)

// FuzzLookupRequest feeds arbitrary frames to the lookup request decoder
// and validator: no panic, and what validates stays within the limits.
func FuzzLookupRequest(f *testing.F) {
	var buf bytes.Buffer
	wire.Write(&buf, &LookupRequest{Kind: ident.KindPhone, Value: "+49301234567", Limit: 5}, MaxLookupRequest)
	f.Add(buf.Bytes())
	f.Add([]byte{3, '{', '}', ' '})
	f.Add([]byte("\x20{\"kind\":\"name\",\"value\":\"jose\"}"))
	f.Add([]byte("\x1a{\"kind\":99,\"value\":\"jose\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req LookupRequest
		if err := wire.Read(bufio.NewReader(bytes.NewReader(data)), &req, MaxLookupRequest); err != nil {
			return
		}
		if req.validate() != nil {
			return
		}
		if req.Kind.String() == "unknown" || req.Value == "" || len(req.Value) > ident.MaxInputLen || req.Limit < 0 || req.Limit > MaxLookupRecords {
			t.Fatalf("accepted %+v", req)
		}
	})
}
