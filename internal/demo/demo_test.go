package demo

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestDemo runs the demo and checks that every search found its terminal
// and that the callee recorded the whole sample.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	rep, err := Run(ctx, &out, Options{Dir: t.TempDir()})
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Found) != 5 {
		t.Errorf("found %d of 5 searches", len(rep.Found))
	}
	if rep.PacketsPlayed == 0 || rep.PacketsRecorded != rep.PacketsPlayed {
		t.Errorf("recorded %d packets, played %d", rep.PacketsRecorded, rep.PacketsPlayed)
	}
	if rep.SetupMS <= 0 || rep.Route != "direct" {
		t.Errorf("set-up %.1f ms, route %q: want > 0 and direct", rep.SetupMS, rep.Route)
	}
}

func TestOgg(t *testing.T) {
	if n := OpusPackets(speech); n < 10 {
		t.Errorf("sample has %d packets", n)
	}
	if d := OggDuration(speech); d < 200*time.Millisecond || d > 10*time.Second {
		t.Errorf("sample lasts %v", d)
	}
	if OpusPackets(speech[:40]) != 0 || OggDuration(nil) != 0 {
		t.Error("truncated input counted")
	}
}
