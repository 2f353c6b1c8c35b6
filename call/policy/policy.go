// Package policy holds the terminal side's figures that every terminal
// shares: the quality a call tolerates before it moves to another route,
// how route switching paces itself, how often a terminal pings its node
// and how long a call may ring. `irmv phone` (call/phone) uses them, and
// the node serves them to the web page (GET /v1/config, Config), so that
// the page does not keep copies. It imports nothing of the media engine:
// the node-only build links it.
package policy

import (
	"time"

	"github.com/irmv/irmv/call/signal"
	"github.com/irmv/irmv/record"
)

// Quality thresholds and route switching (see call/phone).
const (
	// DefaultMaxLoss is the packet loss (a fraction) a call tolerates.
	DefaultMaxLoss = 0.05
	// DefaultMaxJitter is the interarrival jitter a call tolerates.
	DefaultMaxJitter = 50 * time.Millisecond
	// DefaultMaxRTT is the round-trip time a call tolerates.
	DefaultMaxRTT = 400 * time.Millisecond
	// SampleInterval is how often a live call samples its quality.
	SampleInterval = time.Second
	// BadSamples is how many consecutive samples over a threshold move
	// the call to another route.
	BadSamples = 3
	// RouteHoldDown is how long a route that was left is not taken again.
	RouteHoldDown = 30 * time.Second
	// RerouteTimeout is how long a new leg may take to come up before the
	// call gives it up and stays where it is.
	RerouteTimeout = 10 * time.Second
)

// Timing of a terminal.
const (
	// PingInterval is how often a terminal pings its node (the heartbeat).
	PingInterval = 10 * time.Second
	// RingTimeout is how long a caller lets the callee ring by default.
	RingTimeout = 30 * time.Second
	// ReregisterInterval is how often a terminal signs and registers its
	// record again, well before record.MaxAge.
	ReregisterInterval = record.MaxAge / 3
	// ReconnectMin and ReconnectMax bound how long a terminal that lost
	// its node waits before it connects again: ReconnectMin first, twice
	// as long after each failure, at most ReconnectMax.
	ReconnectMin = 250 * time.Millisecond
	ReconnectMax = 10 * time.Second
)

// RouteOrder is the order in which a call tries the routes: from a bad
// route it moves to the next one that it may take and has not left within
// the hold-down.
var RouteOrder = []string{signal.RouteDirect, signal.RouteRelayed, signal.RouteRelayedPeer}

// Config is the JSON shape of GET /v1/config: the figures above in
// seconds (fractions for loss), for the web page.
type Config struct {
	MaxLoss        float64  `json:"max_loss"`
	MaxJitter      float64  `json:"max_jitter"`
	MaxRTT         float64  `json:"max_rtt"`
	SampleInterval float64  `json:"sample_interval"`
	BadSamples     int      `json:"bad_samples"`
	RouteHoldDown  float64  `json:"route_hold_down"`
	RerouteTimeout float64  `json:"reroute_timeout"`
	PingInterval   float64  `json:"ping_interval"`
	RingTimeout    float64  `json:"ring_timeout"`
	Reregister     float64  `json:"reregister_interval"`
	ReconnectMin   float64  `json:"reconnect_min"`
	ReconnectMax   float64  `json:"reconnect_max"`
	MaxLeg         int      `json:"max_leg"` // signal.MaxLeg
	RouteOrder     []string `json:"route_order"`
}

// Current is the Config of this build.
func Current() Config {
	return Config{
		MaxLoss:        DefaultMaxLoss,
		MaxJitter:      DefaultMaxJitter.Seconds(),
		MaxRTT:         DefaultMaxRTT.Seconds(),
		SampleInterval: SampleInterval.Seconds(),
		BadSamples:     BadSamples,
		RouteHoldDown:  RouteHoldDown.Seconds(),
		RerouteTimeout: RerouteTimeout.Seconds(),
		PingInterval:   PingInterval.Seconds(),
		RingTimeout:    RingTimeout.Seconds(),
		Reregister:     ReregisterInterval.Seconds(),
		ReconnectMin:   ReconnectMin.Seconds(),
		ReconnectMax:   ReconnectMax.Seconds(),
		MaxLeg:         signal.MaxLeg,
		RouteOrder:     append([]string(nil), RouteOrder...),
	}
}
