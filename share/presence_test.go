package share_test

import (
	"testing"
	"time"

	"github.com/irmv/irmv/client"
	"github.com/irmv/irmv/record"
	"github.com/irmv/irmv/share"
)

// A keepalive terminal silent for exactly OfflineAfter is shown offline,
// by Get, List and Match, even before the next sweep runs.
func TestOfflineWithinOfflineAfter(t *testing.T) {
	e := newEnv(t)
	ka := e.register(client.Registration{Name: "Kim", Keepalive: true, TTL: 120})
	e.clock.Add(share.DefaultOfflineAfter - time.Millisecond)
	if s := e.get(ka.Terminal).Status; s != record.StatusOnline {
		t.Fatalf("just before OfflineAfter: %s", s)
	}
	e.clock.Add(time.Millisecond)
	if s := e.get(ka.Terminal).Status; s != record.StatusOffline {
		t.Errorf("Get after OfflineAfter of silence, before a sweep: %s", s)
	}
	if l := e.r.List(); len(l) != 1 || l[0].Status != record.StatusOffline {
		t.Errorf("List: %+v", l)
	}
	if recs := e.r.Match(nameID("kim"), 0); len(recs) != 1 || recs[0].Status != record.StatusOffline {
		t.Errorf("Match: %+v", recs)
	}
	e.sweep()
	if s := e.get(ka.Terminal).Status; s != record.StatusOffline {
		t.Errorf("after the sweep: %s", s)
	}
	// Heard again: back to its status.
	if hb, err := e.r.Heartbeat(ka.Terminal); err != nil || hb.Status != record.StatusOnline {
		t.Fatalf("heartbeat: %+v %v", hb, err)
	}
	if recs := e.r.Match(nameID("kim"), 0); len(recs) != 1 || recs[0].Status != record.StatusOnline {
		t.Errorf("Match after heartbeat: %+v", recs)
	}
}
