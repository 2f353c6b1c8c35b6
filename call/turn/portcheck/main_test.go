package portcheck

import (
	"testing"

	"github.com/irmv/irmv/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.Main(m) }
