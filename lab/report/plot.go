package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Colours of the page and its plots.
var (
	colExpected   = rgb(0x1a7f37)
	colUnexpected = rgb(0xcf222e)
	colUnknown    = rgb(0xbf8700)
	colIncomplete = rgb(0x6e7781)
	colInk        = rgb(0x24292f)
	colMuted      = rgb(0x57606a)
	colGrid       = rgb(0xd0d7de)
	colWindow     = color.NRGBA{0x1a, 0x7f, 0x37, 0x2e}
	colFault      = color.NRGBA{0x24, 0x29, 0x2f, 0x1a}
	colPinned     = color.NRGBA{0x24, 0x29, 0x2f, 0x55}
	colBudget     = rgb(0x8250df)
	colLadder     = rgb(0x0969da)
	colTimer      = color.NRGBA{0x09, 0x69, 0xda, 0x80}
	colServer     = rgb(0xbc4c00)
	colSpread     = rgb(0x8c959f)
)

func rgb(v uint32) color.NRGBA {
	return color.NRGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 0xff}
}

// statusColor is the colour of a status on the page and in plots.
func statusColor(s Status) color.NRGBA {
	switch s {
	case StatusExpected:
		return colExpected
	case StatusUnexpected:
		return colUnexpected
	case StatusUnknown:
		return colUnknown
	}
	return colIncomplete
}

// plotFont is the plots' typeface; the page's stylesheet maps it to the
// reader's sans-serif when Liberation Sans is not installed.
var plotFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// newPlot makes a plot with the report's typography and a light grid.
func newPlot() *plot.Plot {
	p := plot.New()
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(plotFont, 8.5)
		a.Label.TextStyle.Color = colInk
		a.Tick.Label.Font = font.From(plotFont, 7.5)
		a.Tick.Label.Color = colMuted
		a.LineStyle.Color, a.Tick.LineStyle.Color = colMuted, colMuted
		a.Padding = vg.Points(2)
	}
	p.Title.TextStyle.Font = font.From(plotFont, 9)
	p.BackgroundColor = color.Transparent
	return p
}

// svgOf renders the plots stacked top to bottom, the i-th heights[i] tall,
// with their data areas aligned, as an SVG element for inline use.
func svgOf(width vg.Length, heights []vg.Length, plots ...*plot.Plot) (string, error) {
	var total vg.Length
	for _, h := range heights {
		total += h
	}
	c := vgsvg.New(width, total)
	dc := draw.New(c)
	cans := make([]draw.Canvas, len(plots))
	top := total
	const pad = 4 // Points kept clear at the left and right edges.
	for i := range plots {
		cans[i] = draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: pad, Y: top - heights[i]}, Max: vg.Point{X: width - pad, Y: top}}}
		top -= heights[i]
	}
	// Align the data areas: the widest left margin and the narrowest right
	// end win.
	left, right := vg.Length(0), width
	for i, p := range plots {
		da := p.DataCanvas(cans[i])
		left, right = max(left, da.Min.X), min(right, da.Max.X)
	}
	for i, p := range plots {
		da := p.DataCanvas(cans[i])
		cans[i].Min.X += left - da.Min.X
		cans[i].Max.X -= da.Max.X - right
		p.Draw(cans[i])
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return "", fmt.Errorf("render plot: %w", err)
	}
	s := b.String()
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	return s, nil
}

// --- custom plotters: bands, lines and glyphs in data coordinates ---

// vband shades the plot's full height between x = lo and hi.
type vband struct {
	lo, hi float64
	fill   color.Color
}

// Plot implements plot.Plotter.
func (b vband) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	x0 := clampLen(trX(max(b.lo, p.X.Min)), c.Min.X, c.Max.X)
	x1 := clampLen(trX(min(b.hi, p.X.Max)), c.Min.X, c.Max.X)
	if x1 < x0 {
		return
	}
	if x1-x0 < 1 {
		m := (x0 + x1) / 2
		x0, x1 = m-0.5, m+0.5
	}
	c.FillPolygon(b.fill, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
}

// vline draws a vertical line across the plot at x.
type vline struct {
	x     float64
	style draw.LineStyle
}

// Plot implements plot.Plotter.
func (l vline) Plot(c draw.Canvas, p *plot.Plot) {
	if l.x < p.X.Min || l.x > p.X.Max {
		return
	}
	trX, _ := p.Transforms(&c)
	x := trX(l.x)
	c.StrokeLine2(l.style, x, c.Min.Y, x, c.Max.Y)
}

// rect fills a rectangle in data coordinates.
type rect struct {
	x0, x1, y0, y1 float64
	fill           color.Color
}

// Plot implements plot.Plotter.
func (r rect) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	x0 := clampLen(trX(max(r.x0, p.X.Min)), c.Min.X, c.Max.X)
	x1 := clampLen(trX(min(r.x1, p.X.Max)), c.Min.X, c.Max.X)
	if x1-x0 < 1.5 {
		m := (x0 + x1) / 2
		x0, x1 = m-0.75, m+0.75
	}
	y0, y1 := trY(r.y0), trY(r.y1)
	c.FillPolygon(r.fill, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
}

// seg is a line segment in data coordinates.
type seg struct {
	x0, y0, x1, y1 float64
	style          draw.LineStyle
}

// segs draws line segments, clipped to the plot's x range.
type segs []seg

// Plot implements plot.Plotter.
func (ss segs) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, s := range ss {
		if s.x1 < p.X.Min || s.x0 > p.X.Max {
			continue
		}
		x0, x1 := max(s.x0, p.X.Min), min(s.x1, p.X.Max)
		c.StrokeLine2(s.style, trX(x0), trY(s.y0), trX(x1), trY(s.y1))
	}
}

// glyph is a marker in data coordinates.
type glyph struct {
	x, y  float64
	style draw.GlyphStyle
}

// glyphs draws markers that lie within the plot's x range.
type glyphs []glyph

// Plot implements plot.Plotter.
func (gs glyphs) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, g := range gs {
		if g.x < p.X.Min || g.x > p.X.Max {
			continue
		}
		c.DrawGlyphNoClip(g.style, vg.Point{X: trX(g.x), Y: trY(g.y)})
	}
}

// label writes text at a point in data coordinates, offset in points.
type label struct {
	x, y   float64
	dx, dy vg.Length
	text   string
	color  color.Color
	xalign draw.XAlignment
}

// labels draws text labels within the plot's x range.
type labels []label

// Plot implements plot.Plotter.
func (ls labels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for _, l := range ls {
		if l.x < p.X.Min || l.x > p.X.Max {
			continue
		}
		sty := p.X.Tick.Label
		sty.Font = font.From(plotFont, 7)
		sty.Color, sty.XAlign, sty.YAlign = l.color, l.xalign, draw.YCenter
		x := trX(l.x) + l.dx
		if l.xalign == draw.XLeft && x+sty.Width(l.text) > c.Max.X {
			// No room on the right: put it on the left of its point.
			sty.XAlign, x = draw.XRight, trX(l.x)-l.dx
		}
		c.FillText(sty, vg.Point{X: x, Y: trY(l.y) + l.dy}, l.text)
	}
}

func clampLen(v, lo, hi vg.Length) vg.Length { return max(lo, min(hi, v)) }

func line(c color.Color, w float64, dashes ...vg.Length) draw.LineStyle {
	return draw.LineStyle{Color: c, Width: vg.Points(w), Dashes: dashes}
}

func mark(c color.Color, r float64, shape draw.GlyphDrawer) draw.GlyphStyle {
	return draw.GlyphStyle{Color: c, Radius: vg.Points(r), Shape: shape}
}

// --- the detection plot ---

// DetectionSVG draws a figure's detection plot: a lane per kernel, each
// run a dot (± its bound) coloured by status, the lane's min–max and
// median, the predicted window shaded and the nominal prediction ticked,
// the budget as a dashed line.
func DetectionSVG(d Detection) (string, error) {
	p := newPlot()
	p.X.Min, p.X.Max = d.XMin, d.XMax
	p.X.Label.Text = "detection, seconds after the fault"
	p.Y.Min, p.Y.Max = -0.5, float64(len(d.Lanes))-0.5+0.2 // Room on top for the budget's label.
	var ticks []plot.Tick
	for _, ln := range d.Lanes {
		ticks = append(ticks, plot.Tick{Value: ln.Y, Label: laneName(ln)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0
	p.X.Tick.Marker = gridTicks{}
	p.Add(xgrid{})
	var ss segs
	var gs glyphs
	var ls labels
	dotHalf := laneSpread / 2
	for _, ln := range d.Lanes {
		if n := len(ln.Dots); n > 1 {
			dotHalf = min(dotHalf, laneSpread/float64(n-1)*0.45)
		}
	}
	for _, ln := range d.Lanes {
		// Each run's own window and nominal, in its row.
		for _, dt := range ln.Dots {
			if w := dt.Window; w != nil {
				p.Add(rect{w.Lo, w.Hi, dt.Y - dotHalf, dt.Y + dotHalf, colWindow})
			}
			if n := dt.Nominal; n != nil {
				ss = append(ss, seg{*n, dt.Y - dotHalf*1.3, *n, dt.Y + dotHalf*1.3, line(colExpected, 1.2)})
			}
		}
		if ln.Min != nil {
			ss = append(ss, seg{*ln.Min, ln.Y, *ln.Max, ln.Y, line(colSpread, 0.8, 2, 2)})
			ss = append(ss, seg{*ln.Median, ln.Y - laneHalf, *ln.Median, ln.Y + laneHalf, line(colInk, 1.4)})
		}
		for _, dt := range ln.Dots {
			col := statusColor(dt.Status)
			if dt.Uncert > 0 {
				ss = append(ss, seg{dt.T - dt.Uncert, dt.Y, dt.T + dt.Uncert, dt.Y, line(col, 0.9)})
			}
			gs = append(gs, glyph{dt.T, dt.Y, mark(col, 2.8, draw.CircleGlyph{})})
		}
		if ln.Undetected > 0 {
			ls = append(ls, label{d.XMax, ln.Y - laneHalf, -2, 4, fmt.Sprintf("%d without detection", ln.Undetected), colMuted, draw.XRight})
		}
	}
	p.Add(ss, gs, ls)
	if d.Budget != nil {
		if *d.Budget <= d.XMax {
			p.Add(vline{*d.Budget, line(colBudget, 1.2, 4, 3)})
			p.Add(labels{{*d.Budget, p.Y.Max, 2, -4, "budget " + secs(*d.Budget), colBudget, draw.XLeft}})
		} else {
			p.Add(labels{{d.XMax, p.Y.Max, -2, -5, "budget " + secs(*d.Budget) + " →", colBudget, draw.XRight}})
		}
	}
	rows := 0
	for _, ln := range d.Lanes {
		rows += min(max(len(ln.Dots), 2), 10) // Many runs share the rows.
	}
	h := vg.Points(44 + 11*float64(rows) + 8*float64(len(d.Lanes)))
	return svgOf(vg.Points(560), []vg.Length{h}, p)
}

func laneName(ln Lane) string {
	if ln.Release != "" && ln.Release != ln.Kernel {
		return ln.Kernel + "\n" + ln.Release
	}
	return ln.Kernel
}

// gridTicks are "nice" ticks for a linear axis.
type gridTicks struct{}

func (gridTicks) Ticks(lo, hi float64) []plot.Tick {
	step := niceStep((hi - lo) / 6)
	var out []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
		if half := v + step/2; half < hi {
			out = append(out, plot.Tick{Value: half})
		}
	}
	return out
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return round6(m * p)
		}
	}
	return 10 * p
}

// xgrid draws light vertical lines at the x axis's major ticks.
type xgrid struct{}

func (xgrid) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, t := range p.X.Tick.Marker.Ticks(p.X.Min, p.X.Max) {
		if t.IsMinor() {
			continue
		}
		x := trX(t.Value)
		c.StrokeLine2(line(colGrid, 0.5), x, c.Min.Y, x, c.Max.Y)
	}
}

// secs formats seconds for labels.
func secs(s float64) string {
	switch a := math.Abs(s); {
	case a >= 100:
		return fmt.Sprintf("%.0f s", s)
	case a >= 10:
		return fmt.Sprintf("%.1f s", s)
	}
	return fmt.Sprintf("%.2f s", s)
}

// --- the run timeline ---

// Lanes of the timeline's event strip, top to bottom.
const (
	laneClient   = 3
	laneSent     = 2
	laneReceived = 1
	laneServer   = 0
)

// TimelineSVG draws a run's timeline: on top, when the run has one, the
// retransmission ladder (each retransmission at the RTO armed after it,
// with that timer drawn running until it fires); below, the client's
// writes, reads and errors, what it sent and received, and the server's
// steps. Both share the time axis, shaded with the fault call, the pinned
// fault instant and the predicted window, and marked with the nominal
// prediction, the moment the client learnt and the budget.
func TimelineSVG(tl Timeline, status Status) (string, error) {
	overlay := func(p *plot.Plot) {
		if tl.Fault != nil {
			p.Add(vband{tl.Fault.Lo, tl.Fault.Hi, colFault})
		}
		if w := tl.Window; w != nil {
			p.Add(vband{w.Lo, w.Hi, colWindow})
		}
		if tl.Pinned != nil {
			p.Add(vband{tl.Pinned.Lo, tl.Pinned.Hi, colPinned})
		}
		if tl.Origin != "start" {
			p.Add(vline{0, line(colInk, 1)})
		}
		if tl.Nominal != nil {
			p.Add(vline{*tl.Nominal, line(colExpected, 1.2, 3, 2)})
		}
		if tl.Budget != nil {
			p.Add(vline{*tl.Budget, line(colBudget, 1.2, 4, 3)})
		}
		if tl.Learnt != nil {
			p.Add(vline{tl.Learnt.T, line(statusColor(status), 1.6)})
		}
	}
	bottom := newPlot()
	bottom.X.Min, bottom.X.Max = tl.XMin, tl.XMax
	bottom.X.Label.Text = "seconds after the fault"
	if tl.Origin == "start" {
		bottom.X.Label.Text = "seconds after the run's start (no fault recorded)"
	}
	bottom.X.Tick.Marker = gridTicks{}
	bottom.Y.Min, bottom.Y.Max = -0.6, 3.6
	bottom.Y.Tick.Marker = plot.ConstantTicks{
		{Value: laneClient, Label: "client"}, {Value: laneSent, Label: "sent"},
		{Value: laneReceived, Label: "received"}, {Value: laneServer, Label: "server"}}
	bottom.Y.Tick.Length = 0
	bottom.Add(xgrid{})
	overlay(bottom)
	var gs glyphs
	var ls labels
	for _, t := range tl.Writes {
		gs = append(gs, glyph{t, laneClient, mark(colMuted, 2.4, draw.TriangleGlyph{})})
	}
	for _, t := range tl.Reads {
		gs = append(gs, glyph{t, laneClient, mark(colMuted, 2.2, draw.RingGlyph{})})
	}
	for _, m := range tl.ClientErrors {
		gs = append(gs, glyph{m.T, laneClient, mark(statusColor(status), 3, draw.CrossGlyph{})})
	}
	if tl.Learnt != nil {
		ls = append(ls, label{tl.Learnt.T, laneClient + 0.45, 3, 0, tl.Learnt.Label, statusColor(status), draw.XLeft})
	}
	if tl.Sent != nil {
		gs = append(gs, glyph{*tl.Sent, laneSent, mark(colLadder, 2.2, draw.RingGlyph{})})
	}
	for _, t := range tl.TLP {
		gs = append(gs, glyph{t, laneSent, mark(colLadder, 2.6, draw.PyramidGlyph{})})
	}
	for _, r := range tl.Rungs {
		gs = append(gs, glyph{r.T, laneSent, mark(colLadder, 2.4, draw.CircleGlyph{})})
	}
	for _, t := range tl.Retrans {
		gs = append(gs, glyph{t, laneSent, mark(colLadder, 2.4, draw.CircleGlyph{})})
	}
	for _, t := range tl.Keepalive {
		gs = append(gs, glyph{t, laneSent, mark(colLadder, 2.6, draw.SquareGlyph{})})
	}
	for i, m := range tl.FromServer {
		gs = append(gs, glyph{m.T, laneReceived, mark(colServer, 2.6, draw.BoxGlyph{})})
		if i == 0 || m.Label != tl.FromServer[i-1].Label {
			ls = append(ls, label{m.T, laneReceived + 0.4, 3, 0, m.Label, colServer, draw.XLeft})
		}
	}
	for i, m := range tl.Server {
		gs = append(gs, glyph{m.T, laneServer, mark(colServer, 2.6, draw.PlusGlyph{})})
		dy := vg.Length(0)
		if i%2 == 1 {
			dy = -8
		}
		ls = append(ls, label{m.T, laneServer + 0.4, 3, dy, strings.ReplaceAll(m.Label, "_", " "), colServer, draw.XLeft})
	}
	if tl.Beyond != "" {
		ls = append(ls, label{tl.XMax, laneClient + 0.45, -2, 0, tl.Beyond, colExpected, draw.XRight})
	}
	bottom.Add(gs, ls)
	width := vg.Points(560)
	if len(tl.Rungs) == 0 {
		return svgOf(width, []vg.Length{vg.Points(118)}, bottom)
	}
	top := newPlot()
	top.HideX()
	top.X.Min, top.X.Max = tl.XMin, tl.XMax
	top.Y.Label.Text = "RTO armed (s)"
	top.Y.Scale = plot.LogScale{}
	lo, hi := math.Inf(1), 0.0
	for _, r := range tl.Rungs {
		lo, hi = min(lo, r.RTO), max(hi, r.RTO)
	}
	if tl.BaseRTO > 0 {
		lo = min(lo, tl.BaseRTO)
	}
	top.Y.Min, top.Y.Max = lo/1.5, hi*1.6
	top.Y.Tick.Marker = pow2Ticks{}
	top.Add(xgrid{})
	overlay(top)
	var ts segs
	var tg glyphs
	var tls labels
	base := tl.BaseRTO
	if base <= 0 {
		base = lo
	}
	if tl.Sent != nil {
		tg = append(tg, glyph{*tl.Sent, base, mark(colLadder, 2.2, draw.RingGlyph{})})
		ts = append(ts, seg{*tl.Sent, base, *tl.Sent + base, base, line(colTimer, 1.4)})
	}
	for _, t := range tl.TLP {
		tg = append(tg, glyph{t, base, mark(colLadder, 2.6, draw.PyramidGlyph{})})
	}
	for i, r := range tl.Rungs {
		ts = append(ts, seg{r.T, r.RTO, r.T + r.RTO, r.RTO, line(colTimer, 1.4)})
		if i > 0 {
			prev := tl.Rungs[i-1]
			ts = append(ts, seg{r.T, prev.RTO, r.T, r.RTO, line(colTimer, 0.6, 1, 1.5)})
		}
		tg = append(tg, glyph{r.T, r.RTO, mark(colLadder, 2.6, draw.CircleGlyph{})})
		if i == len(tl.Rungs)-1 || len(tl.Rungs) <= 8 {
			tls = append(tls, label{r.T, r.RTO, 0, 7, secs(r.RTO), colLadder, draw.XLeft})
		}
	}
	top.Add(ts, tg, tls)
	return svgOf(width, []vg.Length{vg.Points(120), vg.Points(118)}, top, bottom)
}

// pow2Ticks are ticks at powers of two, for RTOs that double.
type pow2Ticks struct{}

func (pow2Ticks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	e0, e1 := math.Floor(math.Log2(lo)), math.Ceil(math.Log2(hi))
	step := math.Max(1, math.Ceil((e1-e0)/5))
	for e := e0; e <= e1; e++ {
		v := math.Exp2(e)
		if v < lo || v > hi {
			continue
		}
		t := plot.Tick{Value: v}
		if math.Mod(e-e0, step) == 0 {
			t.Label = strconv.FormatFloat(v, 'f', -1, 64)
		}
		out = append(out, t)
	}
	return out
}
