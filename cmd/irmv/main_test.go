package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/irmv/irmv/internal/leaktest"
	"github.com/irmv/irmv/node/nodetest"
)

func TestMain(m *testing.M) { leaktest.Main(m, goleak.Cleanup(nodetest.RemoveBinary)) }
