package loadtest

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Point is one sample of a series, at offset T from the start of the run.
type Point struct {
	T time.Duration
	V float64
}

// Series is a named line of a chart.
type Series struct {
	Name   string
	Points []Point
}

// Chart is one chart of the report.
type Chart struct {
	Title  string
	YLabel string // e.g. "lines/s", "seconds"
	Series []Series
	// Marks are shaded periods (faults: a Kafka outage, a burst) or
	// vertical lines (a kill: For == 0), labelled.
	Marks []Mark
}

// Mark is a labelled event of a run drawn over a chart: the period
// [At, At+For) shaded, or a vertical line at At when For is zero (or
// negative).
type Mark struct {
	Label   string
	At, For time.Duration
}

// Chart geometry and style. Everything is fixed so that the same Chart
// always renders to the same bytes.
const (
	chartWidth  = 8 * vg.Inch
	chartHeight = 4 * vg.Inch
	// maxLegendRunes caps a legend entry so that a long series name
	// cannot squeeze the plot area away.
	maxLegendRunes = 32
	// markLabelRows is how many rows mark labels are staggered over,
	// so that labels of nearby marks do not overprint each other.
	markLabelRows = 3
)

var (
	chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

	// seriesColors is the Okabe–Ito palette (readable by colour-blind
	// readers), without its yellow, which is too faint on white.
	seriesColors = []color.Color{
		color.RGBA{R: 0x00, G: 0x72, B: 0xb2, A: 0xff}, // blue
		color.RGBA{R: 0xd5, G: 0x5e, B: 0x00, A: 0xff}, // vermillion
		color.RGBA{R: 0x00, G: 0x9e, B: 0x73, A: 0xff}, // bluish green
		color.RGBA{R: 0xcc, G: 0x79, B: 0xa7, A: 0xff}, // reddish purple
		color.RGBA{R: 0xe6, G: 0x9f, B: 0x00, A: 0xff}, // orange
		color.RGBA{R: 0x56, G: 0xb4, B: 0xe9, A: 0xff}, // sky blue
		color.RGBA{R: 0x00, G: 0x00, B: 0x00, A: 0xff}, // black
	}
	// seriesDashes has a length prime to len(seriesColors), so that the
	// (colour, dash) pair repeats only after 35 series.
	seriesDashes = [][]vg.Length{
		nil,
		{vg.Points(6), vg.Points(3)},
		{vg.Points(2), vg.Points(2)},
		{vg.Points(8), vg.Points(3), vg.Points(2), vg.Points(3)},
		{vg.Points(12), vg.Points(4)},
	}

	shadeColor   = color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x40}
	shadeEdge    = color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x90}
	killColor    = color.RGBA{R: 0xb2, G: 0x00, B: 0x00, A: 0xff}
	markText     = color.RGBA{R: 0x33, G: 0x33, B: 0x33, A: 0xff}
	noDataColor  = color.RGBA{R: 0x70, G: 0x70, B: 0x70, A: 0xff}
	gridColor    = color.RGBA{R: 0xdd, G: 0xdd, B: 0xdd, A: 0xff}
	seriesWidth  = vg.Points(1.5)
	markWidth    = vg.Points(1.2)
	legendMargin = vg.Points(8)
)

// WriteSVG draws c as an SVG file of 8x4 inches at path: the x axis in
// seconds from the start of the run, the y axis from zero, one line per
// series (each with its own colour and dash), a legend to the right, and
// the marks as shaded periods or vertical lines with their labels.
//
// Non-finite values (NaN, ±Inf) are skipped. A chart without a single
// finite point still gives a valid SVG, with a "no data" note. The output
// depends only on c, so it can be golden-tested. The file is written
// whole or not at all.
func (c Chart) WriteSVG(path string) error {
	svg, err := c.renderSVG()
	if err != nil {
		return fmt.Errorf("chart %q: %w", c.Title, err)
	}
	if err := os.WriteFile(path, svg, 0o644); err != nil {
		return fmt.Errorf("chart %q: %w", c.Title, err)
	}
	return nil
}

// renderSVG returns the SVG document of c. gonum/plot reports some
// impossible layouts by panicking; that becomes an error here.
func (c Chart) renderSVG() (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("render: %v", r)
		}
	}()

	p := plot.New()
	styleChart(p)
	p.Title.Text = cleanText(c.Title)
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = cleanText(c.YLabel)
	p.X.Tick.Marker = niceTicks{target: 12}
	p.Y.Tick.Marker = niceTicks{target: 6}

	grid := plotter.NewGrid()
	grid.Vertical.Color = gridColor
	grid.Horizontal.Color = gridColor
	p.Add(grid)

	var marks []Mark
	for _, m := range c.Marks {
		m.Label = cleanText(m.Label)
		marks = append(marks, m)
	}
	// Shading goes under the lines, kill lines and labels over them.
	p.Add(markPlotter{marks: marks, shade: true})

	r := newRanges()
	for _, m := range marks {
		r.addX(m.At.Seconds())
		if m.For > 0 {
			r.addX((m.At + m.For).Seconds())
		}
	}

	legend := plot.NewLegend()
	legend.TextStyle.Font = font.From(chartFont, 10)
	legend.Left = true
	legend.Top = true
	legend.ThumbnailWidth = vg.Points(28)
	legend.Padding = vg.Points(3)

	hasData, entries := false, 0
	for i, s := range c.Series {
		xys := finitePoints(s.Points)
		style := draw.LineStyle{
			Color:  seriesColors[i%len(seriesColors)],
			Width:  seriesWidth,
			Dashes: seriesDashes[i%len(seriesDashes)],
		}
		line := &plotter.Line{XYs: xys, LineStyle: style}
		name := cleanText(s.Name)
		if name == "" {
			name = "series " + strconv.Itoa(i+1)
		}
		name = truncateRunes(name, maxLegendRunes)
		if len(xys) == 0 {
			legend.Add(name+" (no data)", line)
			entries++
			continue
		}
		hasData = true
		for _, xy := range xys {
			r.addX(xy.X)
			r.addY(xy.Y)
		}
		p.Add(line)
		if len(xys) == 1 {
			// A line through one point draws nothing: mark the point.
			p.Add(&plotter.Scatter{XYs: xys, GlyphStyle: draw.GlyphStyle{
				Color:  style.Color,
				Radius: vg.Points(2.5),
				Shape:  draw.CircleGlyph{},
			}})
		}
		legend.Add(name, line)
		entries++
	}
	p.Add(markPlotter{marks: marks})
	if !hasData {
		p.Add(noDataNote{})
	}

	// Both axes start at zero (or below it, for negative data): rates
	// and latencies read honestly only from zero. Room is left at the
	// top for the mark labels.
	p.X.Min, p.X.Max = r.xRange()
	ymin, ymax := r.yRange()
	head := 0.05
	if len(marks) > 0 {
		head += 0.08 * float64(min(len(marks), markLabelRows))
	}
	p.Y.Min, p.Y.Max = ymin, ymax+head*(ymax-ymin)

	canvas := vgsvg.New(chartWidth, chartHeight)
	dc := draw.New(canvas)
	dc.FillPolygon(color.White, []vg.Point{
		dc.Min, {X: dc.Max.X, Y: dc.Min.Y}, dc.Max, {X: dc.Min.X, Y: dc.Max.Y},
	})
	plotArea := dc
	if entries > 0 {
		box := legend.Rectangle(dc)
		w := box.Max.X - box.Min.X
		// Below the title, level with the top of the plot area.
		top := p.Title.TextStyle.Height(p.Title.Text) + p.Title.Padding + vg.Points(6)
		ld := draw.Crop(dc, dc.Max.X-dc.Min.X-w-legendMargin, -legendMargin, 0, -top)
		legend.Draw(ld)
		plotArea = draw.Crop(dc, 0, -(w + 2*legendMargin), 0, 0)
	}
	p.Draw(plotArea)

	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, err
	}
	// The text is laid out with Liberation Sans, which has the metrics of
	// Arial: name fonts that fit where Liberation is not installed,
	// rather than let a viewer fall back to its default (often a serif).
	// Text content is escaped, so only the style attributes match.
	return bytes.ReplaceAll(buf.Bytes(),
		[]byte(`style="font-family:Liberation Sans;`),
		[]byte(`style="font-family:'Liberation Sans',Arial,Helvetica,sans-serif;`)), nil
}

// styleChart sets the fonts and sizes of p's text.
func styleChart(p *plot.Plot) {
	p.Title.TextStyle.Font = font.From(chartFont, 13)
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(chartFont, 11)
		a.Tick.Label.Font = font.From(chartFont, 9)
		a.Padding = vg.Points(2)
	}
}

// finitePoints returns the finite samples of pts as plot coordinates
// (seconds, value), ordered by time (stable, so equal times keep their
// order).
func finitePoints(pts []Point) plotter.XYs {
	var xys plotter.XYs
	for _, pt := range pts {
		if math.IsNaN(pt.V) || math.IsInf(pt.V, 0) {
			continue
		}
		xys = append(xys, plotter.XY{X: pt.T.Seconds(), Y: pt.V})
	}
	slices.SortStableFunc(xys, func(a, b plotter.XY) int {
		switch {
		case a.X < b.X:
			return -1
		case a.X > b.X:
			return 1
		}
		return 0
	})
	return xys
}

// ranges accumulates the extent of what a chart shows.
type ranges struct {
	xmin, xmax, ymin, ymax float64
}

func newRanges() ranges {
	return ranges{xmin: math.Inf(1), xmax: math.Inf(-1), ymin: math.Inf(1), ymax: math.Inf(-1)}
}

func (r *ranges) addX(x float64) { r.xmin, r.xmax = math.Min(r.xmin, x), math.Max(r.xmax, x) }
func (r *ranges) addY(y float64) { r.ymin, r.ymax = math.Min(r.ymin, y), math.Max(r.ymax, y) }

// xRange is the x axis: from the start of the run (0, or the earliest
// sample if one is before it) to the last sample or mark.
func (r ranges) xRange() (lo, hi float64) {
	return zeroBased(r.xmin, r.xmax)
}

// yRange is the y axis, including zero.
func (r ranges) yRange() (lo, hi float64) {
	return zeroBased(r.ymin, r.ymax)
}

func zeroBased(lo, hi float64) (float64, float64) {
	if math.IsInf(lo, 1) { // nothing added
		return 0, 1
	}
	lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// markPlotter draws the marks: with shade, the shaded periods; without
// it, the vertical lines of the instant marks and all the labels.
type markPlotter struct {
	marks []Mark
	shade bool
}

func (m markPlotter) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	sty := draw.TextStyle{
		Color:   markText,
		Font:    font.From(chartFont, 8),
		XAlign:  draw.XLeft,
		YAlign:  draw.YTop,
		Handler: p.TextHandler,
	}
	rowHeight := sty.Height("Mg") + vg.Points(2)
	for i, mk := range m.marks {
		x0 := trX(mk.At.Seconds())
		if mk.For > 0 {
			x1 := trX((mk.At + mk.For).Seconds())
			if m.shade {
				c.FillPolygon(shadeColor, c.ClipPolygonX([]vg.Point{
					{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y},
					{X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y},
				}))
				edge := draw.LineStyle{Color: shadeEdge, Width: vg.Points(0.5)}
				c.StrokeLines(edge, c.ClipLinesX(
					[]vg.Point{{X: x0, Y: c.Min.Y}, {X: x0, Y: c.Max.Y}},
					[]vg.Point{{X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}},
				)...)
				continue
			}
		} else {
			if m.shade {
				continue
			}
			c.StrokeLines(draw.LineStyle{Color: killColor, Width: markWidth}, c.ClipLinesX(
				[]vg.Point{{X: x0, Y: c.Min.Y}, {X: x0, Y: c.Max.Y}},
			)...)
		}
		if mk.Label == "" || !c.ContainsX(x0) {
			continue
		}
		y := c.Max.Y - vg.Points(3) - vg.Length(i%markLabelRows)*rowHeight
		at, lsty := vg.Point{X: x0 + vg.Points(3), Y: y}, sty
		if at.X+sty.Width(mk.Label) > c.Max.X {
			// No room on the right of the mark: write the label on its left.
			at.X, lsty.XAlign = x0-vg.Points(3), draw.XRight
		}
		c.FillText(lsty, at, mk.Label)
	}
}

// noDataNote writes "no data" in the middle of an empty chart.
type noDataNote struct{}

func (noDataNote) Plot(c draw.Canvas, p *plot.Plot) {
	c.FillText(draw.TextStyle{
		Color:   noDataColor,
		Font:    font.From(chartFont, 16),
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: p.TextHandler,
	}, c.Center(), "no data")
}

// niceTicks labels round values (1, 2, 2.5 or 5 times a power of ten),
// the smallest such step that cuts the axis into at most target parts,
// with a minor tick halfway between
// them, and labels them compactly with one unit for the whole axis:
// 0, 5k, 10k, 15k.
type niceTicks struct{ target int }

func (n niceTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if !(span > 0) || math.IsInf(span, 0) || n.target < 1 {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := span / float64(n.target)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	first, last := math.Ceil(lo/step), math.Floor(hi/step)
	if !(last-first < 1000) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	div, unit := tickUnit(math.Max(math.Abs(first*step), math.Abs(last*step)))
	var ticks []plot.Tick
	for k := first; k <= last; k++ {
		v := k * step
		ticks = append(ticks, plot.Tick{Value: v, Label: tickLabel(v, div, unit)})
		if half := v + step/2; half <= hi {
			ticks = append(ticks, plot.Tick{Value: half})
		}
	}
	if half := first*step - step/2; half >= lo {
		ticks = append(ticks, plot.Tick{Value: half})
	}
	return ticks
}

// tickUnit is the divisor and suffix for the labels of an axis whose
// largest label is max.
func tickUnit(max float64) (float64, string) {
	switch {
	case max >= 1e9:
		return 1e9, "G"
	case max >= 1e6:
		return 1e6, "M"
	case max >= 1e4:
		return 1e3, "k"
	}
	return 1, ""
}

func tickLabel(v, div float64, unit string) string {
	if v == 0 || math.Abs(v/div) < 1e-9 {
		return "0"
	}
	return strconv.FormatFloat(v/div, 'g', 4, 64) + unit
}

// cleanText makes s safe to draw as one line of SVG text: invalid UTF-8
// becomes U+FFFD, and control characters (newlines included) and runes
// that XML does not allow become spaces. The SVG writer escapes markup
// characters itself.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, string(utf8.RuneError))
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == 0xfffe || r == 0xffff {
			return ' '
		}
		return r
	}, s))
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}
