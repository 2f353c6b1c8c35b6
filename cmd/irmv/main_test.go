package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/irmv/irmv/internal/leaktest"
	"github.com/irmv/irmv/node/nodetest"
)

func TestMain(m *testing.M) {
	// The CLI's default files (known_keys.json, phone.key) go to a config
	// directory of this run's own: callee keys remembered by an earlier
	// run (or by the user) made calls warn that a key had changed.
	dir, err := os.MkdirTemp("", "irmv-cli-config")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	leaktest.Main(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		nodetest.RemoveBinary(code)
	}))
}
