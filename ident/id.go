package ident

import (
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// ID is one normalised identifier.
type ID struct {
	Kind  Kind   `json:"kind"`
	Value string `json:"value"`
}

// String returns "kind:value", e.g. "phone:+4930123456". Parse accepts
// this form back.
func (id ID) String() string {
	return id.Kind.String() + ":" + id.Value
}

// Key is the DHT key text for an identifier: "irmv/" + kind + "/" + value.
func (id ID) Key() string {
	return "irmv/" + id.Kind.String() + "/" + id.Value
}

var cidPrefix = cid.Prefix{
	Version:  1,
	Codec:    cid.Raw,
	MhType:   mh.SHA2_256,
	MhLength: -1,
}

// CID returns a CIDv1 (raw codec, sha2-256 multihash) of Key(), for
// kad-dht provider records. It returns cid.Undef only if hashing fails,
// which sha2-256 does not.
func (id ID) CID() cid.Cid {
	c, err := cidPrefix.Sum([]byte(id.Key()))
	if err != nil {
		return cid.Undef
	}
	return c
}
