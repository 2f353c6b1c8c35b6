package sim

import "math/rand/v2"

func newKeysForTest(s uint64) *rand.ChaCha8 { return rand.NewChaCha8(seed32(s)) }
func newRngForTest(s uint64) *rand.Rand     { return rand.New(rand.NewPCG(s, s)) }
