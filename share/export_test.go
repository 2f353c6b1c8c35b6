package share

import "time"

// SweepForTest runs one pass of the presence loop (Serve) as of now.
func (r *Registry) SweepForTest(now time.Time) error { return r.sweep(now) }
