package search

import "github.com/irmv/irmv/share/record"

// Paths a result can be found by.
const (
	ViaLocal = "local"
	ViaDHT   = "dht"
	ViaFlood = "flood"
	ViaAuto  = "auto" // only as a request: race them all
)

// Result is one terminal found by a search: the JSON shape of GET
// /v1/search lines and of `irmv search --json`.
type Result struct {
	Terminal    string             `json:"terminal"`
	Identifiers record.Identifiers `json:"identifiers"`
	Address     string             `json:"address"`
	Private     bool               `json:"private,omitempty"`
	Status      record.Status      `json:"status"`
	Node        string             `json:"node"`
	Via         string             `json:"via"`
	Verified    bool               `json:"verified"`
	Signer      record.Signer      `json:"signer"`
	Key         []byte             `json:"key,omitempty"` // terminal's Ed25519 key, if it has one
	Seq         uint64             `json:"seq"`
	Hops        int                `json:"hops,omitempty"`
	ElapsedMS   float64            `json:"elapsed_ms"`
	Record      *record.Record     `json:"record,omitempty"`
}

// resultOf builds a result from a verified record.
func resultOf(r *record.Record, b *record.Body, via string) Result {
	return Result{
		Terminal:    b.Terminal,
		Identifiers: b.Identifiers,
		Address:     b.Address,
		Private:     b.Private,
		Status:      r.Status,
		Node:        b.Node,
		Via:         via,
		Verified:    true,
		Signer:      r.Signer,
		Key:         b.Key,
		Seq:         b.Seq,
		Record:      r,
	}
}
