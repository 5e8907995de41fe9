package timeline

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/reeferdlq/reefer-dlq/deployments/local/tracker"
)

// Phase is one shaded span of the chart.
type Phase struct {
	Label      string
	Start, End time.Duration // since the tracker started, like the samples
}

// Size of the picture.
const (
	width  = 12 * vg.Inch
	height = 7 * vg.Inch
	dpi    = 110
)

// Colors, chosen to be told apart by people with the common color
// vision deficiencies (Okabe-Ito palette).
var (
	colAllocated = rgb(0x00, 0x9E, 0x73)
	colRejected  = rgb(0x99, 0x99, 0x99)
	colFirst     = rgb(0x56, 0xB4, 0xE9)
	colRetry     = rgb(0xE6, 0x9F, 0x00)
	colDead      = rgb(0xD5, 0x5E, 0x00)
	colRedrive   = rgb(0xCC, 0x79, 0xA7)
	// Retry attempts from light to dark.
	colAttempts = []color.Color{rgb(0xF5, 0xD0, 0x7A), rgb(0xE6, 0x9F, 0x00), rgb(0xB0, 0x70, 0x00), rgb(0x70, 0x45, 0x00)}
	phaseTints  = []color.Color{rgb(0xF2, 0xF2, 0xF2), rgb(0xFF, 0xFF, 0xFF)}
)

func rgb(r, g, b uint8) color.Color { return color.NRGBA{R: r, G: g, B: b, A: 0xFF} }

// Write draws the chart of samples with phases shaded into a PNG at path.
func Write(path, title string, samples []tracker.Sample, phases []Phase) error {
	if len(samples) < 2 {
		return fmt.Errorf("timeline: %d samples: need at least 2 to draw a line", len(samples))
	}
	top, err := stagesPlot(title, samples, phases)
	if err != nil {
		return err
	}
	bottom, err := movingPlot(samples, phases)
	if err != nil {
		return err
	}
	// The same time range on both panels, so that they line up.
	for _, p := range []*plot.Plot{top, bottom} {
		p.X.Min, p.X.Max = 0, samples[len(samples)-1].At.Seconds()
		p.X.Tick.Marker = secondsTicker{}
	}

	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10), PadY: vg.Points(14)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("timeline: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("timeline: write %s: %w", path, err)
	}
	return nil
}

// band is one stacked layer: its name, color and value per sample.
type band struct {
	name  string
	color color.Color
	value func(tracker.Counts) int
}

func stagesPlot(title string, samples []tracker.Sample, phases []Phase) (*plot.Plot, error) {
	p := newPlot(title, "orders")
	bands := []band{
		{"allocated", colAllocated, func(c tracker.Counts) int { return c.Allocated }},
		{"rejected (no reefer big enough)", colRejected, func(c tracker.Counts) int { return c.Rejected }},
		{"waiting for first attempt", colFirst, func(c tracker.Counts) int { return c.FirstAttempt }},
		{"in order-retries", colRetry, func(c tracker.Counts) int { return c.InRetry() }},
		{"dead-lettered", colDead, func(c tracker.Counts) int { return c.DeadLettered() }},
	}
	ymax := 0
	for _, s := range samples {
		ymax = max(ymax, s.In)
	}
	p.Add(phaseBands{phases: phases})
	if err := addStack(p, samples, bands); err != nil {
		return nil, err
	}
	p.Y.Min, p.Y.Max = 0, float64(ymax)*1.12
	return p, nil
}

func movingPlot(samples []tracker.Sample, phases []Phase) (*plot.Plot, error) {
	p := newPlot("", "orders not yet concluded")
	p.X.Label.Text = "seconds since the first order"
	attempts := len(colAttempts)
	var bands []band
	bands = append(bands, band{"waiting for first attempt", colFirst, func(c tracker.Counts) int { return c.FirstAttempt }})
	bands = append(bands, band{"redriven, waiting", colRedrive, func(c tracker.Counts) int { return c.Retrying[0] }})
	for a := 1; a <= attempts; a++ {
		name := fmt.Sprintf("retry after %d failure", a)
		if a > 1 {
			name += "s"
		}
		if a == attempts {
			name = fmt.Sprintf("retry after %d+ failures", a)
		}
		bands = append(bands, band{name, colAttempts[a-1], func(c tracker.Counts) int {
			if a < attempts {
				return c.Retrying[a]
			}
			n := 0
			for _, r := range c.Retrying[a:] {
				n += r
			}
			return n
		}})
	}
	bands = append(bands, band{"dead-lettered", colDead, func(c tracker.Counts) int { return c.DeadLettered() }})
	ymax := 1
	for _, s := range samples {
		ymax = max(ymax, s.Unsettled()+s.DeadLettered())
	}
	p.Add(phaseBands{phases: phases})
	if err := addStack(p, samples, bands); err != nil {
		return nil, err
	}
	p.Y.Min, p.Y.Max = 0, float64(ymax)*1.15
	return p, nil
}

func newPlot(title, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(14)
	p.Y.Label.Text = ylabel
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(8)
	p.Legend.YOffs = -vg.Points(22) // below the phase labels
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Legend.ThumbnailWidth = vg.Points(14)
	p.X.Tick.Label.Font.Size = vg.Points(9)
	p.Y.Tick.Label.Font.Size = vg.Points(9)
	return p
}

// addStack draws bands stacked from the bottom up, each as a filled polygon
// between the cumulative sums below and above it.
func addStack(p *plot.Plot, samples []tracker.Sample, bands []band) error {
	lower := make([]float64, len(samples))
	for _, b := range bands {
		upper := make([]float64, len(samples))
		seen := false
		for i, s := range samples {
			v := b.value(s.Counts)
			seen = seen || v > 0
			upper[i] = lower[i] + float64(v)
		}
		if seen {
			ring := make(plotter.XYs, 0, 2*len(samples))
			for i, s := range samples {
				ring = append(ring, plotter.XY{X: s.At.Seconds(), Y: upper[i]})
			}
			for i := len(samples) - 1; i >= 0; i-- {
				ring = append(ring, plotter.XY{X: samples[i].At.Seconds(), Y: lower[i]})
			}
			poly, err := plotter.NewPolygon(ring)
			if err != nil {
				return fmt.Errorf("timeline: %w", err)
			}
			poly.Color = b.color
			poly.LineStyle.Width = 0
			p.Add(poly)
			p.Legend.Add(b.name, poly)
		}
		lower = upper
	}
	return nil
}

// phaseBands is a plotter that shades each phase's time span over the
// whole height of the data area and labels it at the top.
type phaseBands struct{ phases []Phase }

func (pb phaseBands) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, _ := plt.Transforms(&c)
	style := text.Style{
		Color:   color.Gray{Y: 0x40},
		Font:    font.From(plot.DefaultFont, vg.Points(9)),
		Handler: plot.DefaultTextHandler,
		XAlign:  draw.XLeft,
		YAlign:  draw.YTop,
	}
	edge := draw.LineStyle{Color: color.Gray{Y: 0xBB}, Width: vg.Points(0.6), Dashes: []vg.Length{vg.Points(3), vg.Points(3)}}
	for i, ph := range pb.phases {
		x0, x1 := trX(ph.Start.Seconds()), trX(ph.End.Seconds())
		x0, x1 = max(x0, c.Min.X), min(x1, c.Max.X)
		if x1 <= x0 {
			continue
		}
		rect := vg.Rectangle{Min: vg.Point{X: x0, Y: c.Min.Y}, Max: vg.Point{X: x1, Y: c.Max.Y}}
		c.SetColor(phaseTints[i%len(phaseTints)])
		c.Fill(rect.Path())
		c.StrokeLine2(edge, x0, c.Min.Y, x0, c.Max.Y)
		if ph.Label != "" {
			c.FillText(style, vg.Point{X: x0 + vg.Points(3), Y: c.Max.Y - vg.Points(3)}, ph.Label)
		}
	}
}

// secondsTicker puts a labelled tick every 1, 2, 5, 10... seconds, about
// ten of them over the range, and unlabelled ones in between.
type secondsTicker struct{}

func (secondsTicker) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for _, s := range []float64{1, 2, 5, 10, 20, 30, 60, 120, 300} {
		step = s
		if (hi-lo)/s <= 12 {
			break
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		if mid := v + step/2; mid < hi {
			ticks = append(ticks, plot.Tick{Value: mid})
		}
	}
	return ticks
}
