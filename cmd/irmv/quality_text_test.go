package main

import (
	"strings"
	"testing"

	"github.com/irmv/irmv/client"
)

// TestQualityLineWithoutAudio: a quality event without audio, or with the
// other party not answering, does not print as a perfect line.
func TestQualityLineWithoutAudio(t *testing.T) {
	for _, tc := range []struct {
		e            client.Event
		want, absent string
	}{
		{client.Event{Type: client.EventQuality, RTTMS: 0.2, Route: "direct"}, "loss 0.0%", "no audio"},
		{client.Event{Type: client.EventQuality, RTTMS: 0.2, Route: "direct", NoAudioMS: 2100}, "no audio from the other party for 2 s", "loss"},
		{client.Event{Type: client.EventQuality, RTTMS: 0.2, Route: "direct", NoAudioMS: 5000, Disconnected: true}, "no answer from the other party", "loss"},
	} {
		var b strings.Builder
		eventText(&b, tc.e)
		if !strings.Contains(b.String(), tc.want) || strings.Contains(b.String(), tc.absent) {
			t.Errorf("%+v printed %q, want %q and no %q", tc.e, b.String(), tc.want, tc.absent)
		}
	}
}
