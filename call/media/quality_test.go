package media

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/irmv/irmv/internal/testenv"
)

// qualityCase is a call's statistics over a few samples and the quality
// each gives, in the W3C statistics' names
// (https://www.w3.org/TR/webrtc-stats/): the web page's quality.js is
// tested with the same file (node TestBrowserQualityCases).
type qualityCase struct {
	Name    string `json:"name"`
	Samples []struct {
		Stats []struct {
			Type            string  `json:"type"`
			Kind            string  `json:"kind"`
			PacketsReceived uint32  `json:"packetsReceived"`
			PacketsLost     int32   `json:"packetsLost"`
			Jitter          float64 `json:"jitter"`
			FractionLost    float64 `json:"fractionLost"`
			RoundTripTime   float64 `json:"roundTripTime"`
		} `json:"stats"`
		PairRTT float64 `json:"pairRTT"`
		Want    Quality `json:"want"`
	} `json:"samples"`
}

func loadQualityCases(t *testing.T) []qualityCase {
	t.Helper()
	b, err := os.ReadFile("testdata/quality-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []qualityCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestQualityCases(t *testing.T) {
	for _, tc := range loadQualityCases(t) {
		t.Run(tc.Name, func(t *testing.T) {
			m := &Meter{}
			for i, s := range tc.Samples {
				report := webrtc.StatsReport{}
				for j, st := range s.Stats {
					id := strconv.Itoa(j)
					switch st.Type {
					case "inbound-rtp":
						report[id] = webrtc.InboundRTPStreamStats{Kind: st.Kind, PacketsReceived: st.PacketsReceived, PacketsLost: st.PacketsLost, Jitter: st.Jitter}
					case "remote-inbound-rtp":
						report[id] = webrtc.RemoteInboundRTPStreamStats{Kind: st.Kind, FractionLost: st.FractionLost, Jitter: st.Jitter, RoundTripTime: st.RoundTripTime}
					}
				}
				r := walkStats(report)
				r.pairRTT = s.PairRTT
				if i == 0 && len(tc.Samples) == 1 {
					if got := r.since(reading{}); !sameQuality(got, s.Want) {
						t.Errorf("Stats: %+v, want %+v", got, s.Want)
					}
				}
				if got := m.next(r); !sameQuality(got, s.Want) {
					t.Errorf("sample %d: %+v, want %+v", i, got, s.Want)
				}
			}
		})
	}
}

func sameQuality(a, b Quality) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }
	return near(a.Loss, b.Loss) && near(a.Jitter, b.Jitter) && near(a.RTT, b.RTT) && a.PacketsReceived == b.PacketsReceived && a.Route == b.Route
}

// TestMeterNoAudio: a Meter's sample says how long no audio has arrived
// once that is NoAudioAfter or more, instead of a perfect line with
// loss 0: 0 while the other side plays, then rising after it stops, with
// the connection still answering.
func TestMeterNoAudio(t *testing.T) {
	fixture := readFixture(t)
	callerPub, callerKey := newKey(t)
	calleePub, calleeKey := newKey(t)
	p := newPair(t, Options{Key: callerKey}, Options{Key: calleeKey})
	t.Cleanup(func() { p.close(t) })
	p.negotiate(t, callerPub, calleePub)
	wait(t, p.callee.Connected(), "callee connected")
	m := p.callee.NewMeter()
	played := make(chan error, 1)
	go func() { played <- p.caller.Play(bytes.NewReader(fixture)) }()
	wait(t, p.callee.FirstPacket(), "first packet")
	if q := m.Sample(); q.NoAudio != 0 || q.Disconnected {
		t.Errorf("sample while audio arrives: NoAudio %v, Disconnected %v; want 0, false", q.NoAudio, q.Disconnected)
	}
	if err := <-played; err != nil {
		t.Fatalf("Play: %v", err)
	}
	stopped := time.Now()
	deadline := stopped.Add(waitLong)
	for {
		q := m.Sample()
		if q.NoAudio >= NoAudioAfter.Seconds() {
			if q.NoAudio > time.Since(stopped).Seconds()+1 {
				t.Errorf("NoAudio %.1f s, but audio stopped %v ago", q.NoAudio, time.Since(stopped))
			}
			if q.Disconnected {
				t.Error("Disconnected while the other side is up")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no NoAudio %v after audio stopped: last sample %+v", waitLong, q)
		}
		time.Sleep(50 * time.Millisecond) // polling the sample, not synchronising
	}
}

// TestSampleDuringClose: quality samples taken while a call ends (the
// side that closes, and the other side, whose connection pion closes by
// itself) show no pion error about the selected pair of a closing ICE
// agent (pion logged "Failed to get selected candidate pair stats: the
// agent is closed" at a call's end).
func TestSampleDuringClose(t *testing.T) {
	shown := func(logs *testenv.SyncBuffer) string {
		var bad []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "selected candidate pair") && !strings.Contains(l, "level=DEBUG") {
				bad = append(bad, l)
			}
		}
		return strings.Join(bad, "\n")
	}
	for i := range 5 {
		var callerLogs, calleeLogs testenv.SyncBuffer
		callerPub, callerKey := newKey(t)
		calleePub, calleeKey := newKey(t)
		p := newPair(t,
			Options{Key: callerKey, Logger: slog.New(slog.NewTextHandler(&callerLogs, nil))},
			Options{Key: calleeKey, Logger: slog.New(slog.NewTextHandler(&calleeLogs, nil))})
		p.negotiate(t, callerPub, calleePub)
		wait(t, p.caller.Connected(), "caller connected")
		wait(t, p.callee.Connected(), "callee connected")
		closed := make(chan struct{})
		var wg sync.WaitGroup
		sample := func(peer *Peer, until <-chan struct{}) {
			defer wg.Done()
			m := peer.NewMeter()
			for {
				m.Sample()
				select {
				case <-until:
					m.Sample()
					return
				default:
				}
			}
		}
		wg.Add(2)
		go sample(p.caller, closed)
		go sample(p.callee, p.callee.Done())
		if err := p.caller.Close(); err != nil {
			t.Fatal(err)
		}
		close(closed)
		wg.Wait()
		p.close(t)
		if s := shown(&callerLogs) + shown(&calleeLogs); s != "" {
			t.Fatalf("round %d: a sample at the call's end logged:\n%s", i, s)
		}
	}
}
