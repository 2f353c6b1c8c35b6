package nodetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// built is the irmv command built once per test process: linking it
// takes seconds, once is enough for every test that runs it.
var built struct {
	once     sync.Once
	dir, bin string
	err      error
	out      []byte
}

// Binary returns the irmv command built from this tree, building it on
// the first call of the test process. The package's TestMain removes it
// with RemoveBinary.
func Binary(tb testing.TB) string {
	tb.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "irmv-test-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "irmv")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, "github.com/irmv/irmv/cmd/irmv").CombinedOutput()
	})
	if built.err != nil {
		tb.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

// RemoveBinary removes what Binary built; its argument is the exit code
// that goleak.Cleanup passes.
func RemoveBinary(int) {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}
