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

// Plot draws lookup latency (p50, p99) and hops (p50, p90) against network
// size for a sweep of runs into a PNG file.
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
	blue, red, green := color.RGBA{B: 200, A: 255}, color.RGBA{R: 200, A: 255}, color.RGBA{G: 150, A: 255}
	for _, e := range []error{
		add(lat, "p50", blue, series(func(r *Result) float64 { return r.LatencyMSP50 })),
		add(lat, "p90", green, series(func(r *Result) float64 { return r.LatencyMSP90 })),
		add(lat, "p99", red, series(func(r *Result) float64 { return r.LatencyMSP99 })),
		add(hops, "hops p50", blue, series(func(r *Result) float64 { return r.HopsP50 })),
		add(hops, "hops p90", green, series(func(r *Result) float64 { return r.HopsP90 })),
		add(hops, "round trips p50", red, series(func(r *Result) float64 { return r.RoundTripsP50 })),
	} {
		if e != nil {
			return e
		}
	}
	lat.Legend.Top, hops.Legend.Top = true, true
	lat.Legend.Left, hops.Legend.Left = true, true
	lat.Y.Min, hops.Y.Min = 0, 0
	img := vgimg.New(8*vg.Inch, 8*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Centimeter, PadX: vg.Centimeter, PadTop: vg.Centimeter / 2, PadBottom: vg.Centimeter / 2}
	canvases := plot.Align([][]*plot.Plot{{lat}, {hops}}, tiles, dc)
	lat.Draw(canvases[0][0])
	hops.Draw(canvases[1][0])
	return writePNG(img, file)
}
