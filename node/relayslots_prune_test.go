package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestRelayBackoffBounded: the relay keeper's memory of failed relays
// forgets waits that ended long ago and stays bounded however many
// relays fail.
func TestRelayBackoffBounded(t *testing.T) {
	k := &relayKeeper{backoff: map[peer.ID]relayBackoff{}}
	now := time.Now()
	k.backoff["old"] = relayBackoff{until: now.Add(-3 * relayBackoffMax), wait: relayBackoffMax}
	k.backoff["recent"] = relayBackoff{until: now.Add(-time.Minute), wait: time.Minute}
	k.pruneBackoffLocked(now)
	if _, ok := k.backoff["old"]; ok {
		t.Error("a wait that ended 15 minutes ago is still kept")
	}
	if _, ok := k.backoff["recent"]; !ok {
		t.Error("a wait that ended a minute ago was forgotten")
	}
	for i := range 3 * relayBackoffKept {
		k.pruneBackoffLocked(now)
		k.backoff[peer.ID(fmt.Sprint("p", i))] = relayBackoff{until: now.Add(time.Duration(i) * time.Second), wait: time.Minute}
	}
	if len(k.backoff) > relayBackoffKept {
		t.Errorf("%d failed relays kept, want at most %d", len(k.backoff), relayBackoffKept)
	}
	last := peer.ID(fmt.Sprint("p", 3*relayBackoffKept-1))
	if _, ok := k.backoff[last]; !ok {
		t.Error("the latest failure was forgotten; the earliest-ending should go first")
	}
}
