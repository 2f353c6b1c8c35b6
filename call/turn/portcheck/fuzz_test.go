package portcheck

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzResponse feeds answers of any shape to the asking side's decoder:
// refused or accepted, never a crash, and an accepted one names an IP.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		`{"ip":"11.0.0.104","answered":true}`,
		`{"ip":"11.0.0.104","answered":true,"sent":true}`,
		`{"ip":"11.0.0.104","sent":true}`,
		`{"ip":"2001:db8::1"}`,
		`{"error":"over quota"}`,
		`{"ip":"not an address","answered":true}`,
		`{}`,
	} {
		var b bytes.Buffer
		b.Write(binary.AppendUvarint(nil, uint64(len(s))))
		b.WriteString(s)
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := readResponse(bufio.NewReader(bytes.NewReader(data)))
		if err == nil && r.IP == nil {
			t.Fatal("an answer without an IP accepted")
		}
		if r.Sent && !r.Answered || r.Relayed {
			t.Fatalf("%+v: sent without an answer, or relayed taken from the checker's word", r)
		}
	})
}
