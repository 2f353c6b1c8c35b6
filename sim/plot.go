package sim

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot draws, against network size (log scale) for a sweep of runs, into a
// PNG file: lookup latency (p50, p90, p99); hops and round trips; messages
// per node and per lookup; memory and goroutines per node.
func Plot(results []*Result, file string) error {
	if len(results) == 0 {
		return fmt.Errorf("%w: nothing to plot", ErrBadConfig)
	}
	lat := plot.New()
	lat.Title.Text = fmt.Sprintf("irmv exact lookup latency (mocknet, %.0f ms links)", results[0].LatencyMS)
	lat.X.Label.Text = "nodes"
	lat.Y.Label.Text = "ms"
	hops := plot.New()
	hops.Title.Text = "hops (DHT depth + direct ask) and link round trips"
	hops.X.Label.Text = "nodes"
	hops.Y.Label.Text = "count"
	msgs := plot.New()
	msgs.Title.Text = "messages (streams opened)"
	msgs.X.Label.Text = "nodes"
	msgs.Y.Label.Text = "count"
	mem := plot.New()
	mem.Title.Text = "cost per node"
	mem.X.Label.Text = "nodes"
	mem.Y.Label.Text = "MB, goroutines/10, success %"
	var ticks []plot.Tick // one per size
	for _, r := range results {
		ticks = append(ticks, plot.Tick{Value: float64(r.Nodes), Label: fmt.Sprint(r.Nodes)})
	}
	for _, p := range []*plot.Plot{lat, hops, msgs, mem} {
		if len(results) > 1 {
			p.X.Scale = plot.LogScale{}
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.Legend.Top, p.Legend.Left = true, true
		p.Y.Min = 0
	}
	series := func(f func(r *Result) float64) plotter.XYs {
		xy := make(plotter.XYs, len(results))
		for i, r := range results {
			xy[i].X, xy[i].Y = float64(r.Nodes), f(r)
		}
		return xy
	}
	add := func(p *plot.Plot, name string, c color.Color, xy plotter.XYs) error {
		l, s, err := plotter.NewLinePoints(xy)
		if err != nil {
			return err
		}
		l.Color, s.Color = c, c
		p.Add(l, s)
		p.Legend.Add(name, l, s)
		return nil
	}
	blue, red, green, grey := color.RGBA{B: 200, A: 255}, color.RGBA{R: 200, A: 255}, color.RGBA{G: 150, A: 255}, color.RGBA{R: 90, G: 90, B: 90, A: 255}
	for _, e := range []error{
		add(lat, "p50", blue, series(func(r *Result) float64 { return r.LatencyMSP50 })),
		add(lat, "p90", green, series(func(r *Result) float64 { return r.LatencyMSP90 })),
		add(lat, "p99", red, series(func(r *Result) float64 { return r.LatencyMSP99 })),
		add(hops, "hops p50", blue, series(func(r *Result) float64 { return r.HopsP50 })),
		add(hops, "hops p90", green, series(func(r *Result) float64 { return r.HopsP90 })),
		add(hops, "round trips p50", red, series(func(r *Result) float64 { return r.RoundTripsP50 })),
		add(hops, "round trips p99", grey, series(func(r *Result) float64 { return r.RoundTripsP99 })),
		add(hops, "counted round trips p50", color.RGBA{R: 200, G: 120, A: 255}, series(func(r *Result) float64 { return r.CountedRTP50 })),
		add(msgs, "per node, set-up and publishing", blue, series(func(r *Result) float64 { return r.SetupMessagesPerNode })),
		add(msgs, "per node, whole run", green, series(func(r *Result) float64 { return r.MessagesPerNode })),
		add(msgs, "per lookup, all nodes", red, series(func(r *Result) float64 { return r.MessagesPerLookup })),
		add(mem, "peak RSS MB per node", blue, series(func(r *Result) float64 { return r.PeakRSSMB / float64(r.Nodes) })),
		add(mem, "live heap + stacks MB per node", green, series(func(r *Result) float64 { return r.LivePerNodeMB })),
		add(mem, "goroutines per node / 10", grey, series(func(r *Result) float64 { return float64(r.Goroutines) / float64(r.Nodes) / 10 })),
		add(mem, "found after churn, % / 10", red, series(func(r *Result) float64 { return 10 * r.SuccessRate })),
	} {
		if e != nil {
			return e
		}
	}
	img := vgimg.New(12*vg.Inch, 9*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 2, PadY: vg.Centimeter, PadX: vg.Centimeter, PadTop: vg.Centimeter / 2, PadBottom: vg.Centimeter / 2, PadLeft: vg.Centimeter / 2, PadRight: vg.Centimeter / 2}
	canvases := plot.Align([][]*plot.Plot{{lat, hops}, {msgs, mem}}, tiles, dc)
	lat.Draw(canvases[0][0])
	hops.Draw(canvases[0][1])
	msgs.Draw(canvases[1][0])
	mem.Draw(canvases[1][1])
	return writePNG(img, file)
}
