package report

import (
	"fmt"
	"image/color"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Panel is one bar chart of the figure: a group of bars per category, one
// bar per series.
type Panel struct {
	Title  string
	YLabel string
	// LogY draws the values on a logarithmic axis, for figures that span
	// orders of magnitude (milliseconds against seconds). A logarithmic
	// axis has no zero: bars start at LogFloor (default 0.1), and values
	// below it are drawn as no bar.
	LogY     bool
	LogFloor float64
	// Groups label the categories along the X axis.
	Groups []string
	// Series hold one value per group; NaN leaves a gap (not measured).
	Series []Series
	// Lines are horizontal reference lines, such as goals.
	Lines []Line
	// LegendLeft puts the legend in the top left corner instead of the
	// top right one: on the side of the shorter bars.
	LegendLeft bool
}

// Series is one set of bars.
type Series struct {
	Name   string
	Values []float64
}

// Line is a horizontal reference line.
type Line struct {
	Label string
	Y     float64
}

// WriteChart draws the panels, two per row, into a PNG file at path.
func WriteChart(path, title string, panels []Panel) error {
	if len(panels) == 0 {
		return fmt.Errorf("chart %s: no panels", path)
	}
	const cols = 2
	rows := (len(panels) + cols - 1) / cols
	width, height := 16*vg.Inch, vg.Length(rows)*5*vg.Inch+0.6*vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)

	// The title above the tiles.
	dc.FillText(text.Style{
		Color:   color.Black,
		Font:    font.From(plot.DefaultFont, vg.Points(16)),
		XAlign:  draw.XCenter,
		YAlign:  draw.YTop,
		Handler: plot.DefaultTextHandler,
	}, vg.Point{X: width / 2, Y: height - 0.15*vg.Inch}, title)

	tiles := draw.Tiles{Rows: rows, Cols: cols, PadTop: 0.6 * vg.Inch, PadX: 0.3 * vg.Inch, PadY: 0.3 * vg.Inch,
		PadLeft: 0.1 * vg.Inch, PadRight: 0.2 * vg.Inch, PadBottom: 0.1 * vg.Inch}
	for i, p := range panels {
		pl, err := p.plot()
		if err != nil {
			return fmt.Errorf("chart %s: panel %q: %w", path, p.Title, err)
		}
		pl.Draw(tiles.At(dc, i%cols, i/cols))
	}

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("chart %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chart %s: %w", path, err)
	}
	return nil
}

func (p Panel) plot() (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Title.TextStyle.Font.Size = vg.Points(13)
	pl.Y.Label.Text = p.YLabel
	pl.Legend.Top = true
	pl.Legend.Left = p.LegendLeft
	pl.Y.Tick.Marker = plot.DefaultTicks{}
	if p.LogY {
		pl.Y.Scale = plot.LogScale{}
		pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	pl.Add(plotter.NewGrid())

	logFloor := p.LogFloor
	if logFloor <= 0 {
		logFloor = 0.1
	}
	n := len(p.Series)
	barWidth := vg.Points(min(36, 220/float64(max(1, n*len(p.Groups)))*2))
	maxY, minY := math.Inf(-1), math.Inf(1)
	for si, s := range p.Series {
		if len(s.Values) != len(p.Groups) {
			return nil, fmt.Errorf("series %q has %d values for %d groups", s.Name, len(s.Values), len(p.Groups))
		}
		vals := make(plotter.Values, len(s.Values))
		for i, v := range s.Values {
			switch {
			case math.IsNaN(v):
				vals[i] = 0 // not measured: no bar
			case p.LogY:
				vals[i] = math.Max(v, logFloor) - logFloor
				maxY, minY = max(maxY, v), min(minY, math.Max(v, logFloor))
			default:
				vals[i] = v
				maxY, minY = max(maxY, v), min(minY, v)
			}
		}
		bars, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return nil, err
		}
		bars.Color = plotutil.Color(si)
		bars.LineStyle.Width = vg.Length(0)
		bars.Offset = vg.Length(float64(si)-float64(n-1)/2) * barWidth
		if p.LogY {
			// A logarithmic axis has no zero to start a bar from: stack the
			// bars on an invisible base of logFloor, so each bar spans
			// [logFloor, value].
			base, err := plotter.NewBarChart(constValues(len(vals), logFloor), barWidth)
			if err != nil {
				return nil, err
			}
			base.Offset = bars.Offset // StackOn copies the base's offset
			bars.StackOn(base)
		}
		pl.Add(bars)
		if s.Name != "" {
			pl.Legend.Add(s.Name, bars)
		}
	}
	for i, l := range p.Lines {
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: l.Y}, {X: float64(len(p.Groups)) - 0.5, Y: l.Y}})
		if err != nil {
			return nil, err
		}
		line.LineStyle.Width = vg.Points(1.5)
		line.LineStyle.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
		line.LineStyle.Color = plotutil.DarkColors[(i+2)%len(plotutil.DarkColors)]
		pl.Add(line)
		pl.Legend.Add(l.Label, line)
		maxY, minY = max(maxY, l.Y), min(minY, l.Y)
	}
	pl.NominalX(p.Groups...)
	pl.X.Min, pl.X.Max = -0.6, float64(len(p.Groups))-0.4
	if !math.IsInf(maxY, 0) {
		if p.LogY {
			// A decade below the smallest value, so that its bar shows.
			pl.Y.Min = math.Max(logFloor, math.Pow(10, math.Floor(math.Log10(minY))-1))
			pl.Y.Max = math.Pow(10, math.Ceil(math.Log10(maxY*1.5)))
		} else {
			pl.Y.Min = 0
			pl.Y.Max = maxY * 1.25 // room for the legend
		}
	} else if p.LogY {
		// Nothing measured (a run of other cases): an empty panel, on an
		// axis a logarithmic scale can draw.
		pl.Y.Min, pl.Y.Max = logFloor, 10*logFloor
	}
	return pl, nil
}

func constValues(n int, v float64) plotter.Values {
	out := make(plotter.Values, n)
	for i := range out {
		out[i] = v
	}
	return out
}
