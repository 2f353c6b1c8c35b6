package p2pstream_test

import (
	"testing"

	"github.com/irmv/irmv/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }
