package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Charts are laid out once against a small drawing surface (canvas) that
// has two implementations: SVG text, and an RGBA image encoded as PNG
// with a built-in 5x7 bitmap font (upper case only). Both are
// ChartWidth x ChartHeight.
const (
	ChartWidth  = 800
	ChartHeight = 450
)

type anchor int

const (
	anchorStart anchor = iota
	anchorMiddle
	anchorEnd
)

// canvas is what chart layouts draw on. Coordinates are pixels from the
// top left; text y is the baseline; vertical text reads bottom to top
// with (x, y) as its start.
type canvas interface {
	rect(x, y, w, h float64, c color.RGBA)
	line(x1, y1, x2, y2 float64, c color.RGBA)
	text(x, y float64, s string, size float64, a anchor, vertical bool, c color.RGBA)
}

var (
	colBlack = color.RGBA{0x20, 0x20, 0x20, 0xff}
	colGrid  = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	colMuted = color.RGBA{0x77, 0x77, 0x77, 0xff}
	colRed   = color.RGBA{0xcc, 0x33, 0x11, 0xff}
	// palette is colour-blind safe (Paul Tol's bright scheme).
	palette = []color.RGBA{
		{0x44, 0x77, 0xaa, 0xff}, {0xee, 0x66, 0x77, 0xff}, {0x22, 0x88, 0x33, 0xff},
		{0xcc, 0xbb, 0x44, 0xff}, {0x66, 0xcc, 0xee, 0xff}, {0xaa, 0x33, 0x77, 0xff},
	}
)

// svgCanvas accumulates SVG elements.
type svgCanvas struct{ b bytes.Buffer }

func newSVG() *svgCanvas {
	s := &svgCanvas{}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		ChartWidth, ChartHeight, ChartWidth, ChartHeight)
	fmt.Fprintf(&s.b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", ChartWidth, ChartHeight)
	return s
}

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func (s *svgCanvas) rect(x, y, w, h float64, c color.RGBA) {
	fmt.Fprintf(&s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y, w, h, hex(c))
}

func (s *svgCanvas) line(x1, y1, x2, y2 float64, c color.RGBA) {
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1"/>`+"\n", x1, y1, x2, y2, hex(c))
}

func (s *svgCanvas) text(x, y float64, str string, size float64, a anchor, vertical bool, c color.RGBA) {
	anchors := [...]string{"start", "middle", "end"}
	rot := ""
	if vertical {
		rot = fmt.Sprintf(` transform="rotate(-90 %.1f %.1f)"`, x, y)
	}
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" font-size="%.0f" text-anchor="%s" fill="%s"%s>`, x, y, size, anchors[a], hex(c), rot)
	xml.EscapeText(&s.b, []byte(str))
	s.b.WriteString("</text>\n")
}

func (s *svgCanvas) writeTo(w io.Writer) error {
	s.b.WriteString("</svg>\n")
	_, err := w.Write(s.b.Bytes())
	return err
}

// pngCanvas draws into an RGBA image.
type pngCanvas struct{ img *image.RGBA }

func newPNG() *pngCanvas {
	p := &pngCanvas{img: image.NewRGBA(image.Rect(0, 0, ChartWidth, ChartHeight))}
	draw.Draw(p.img, p.img.Bounds(), image.White, image.Point{}, draw.Src)
	return p
}

func (p *pngCanvas) rect(x, y, w, h float64, c color.RGBA) {
	r := image.Rect(int(math.Round(x)), int(math.Round(y)), int(math.Round(x+w)), int(math.Round(y+h)))
	draw.Draw(p.img, r.Intersect(p.img.Bounds()), &image.Uniform{c}, image.Point{}, draw.Src)
}

func (p *pngCanvas) line(x1, y1, x2, y2 float64, c color.RGBA) {
	// Bresenham, one pixel wide.
	ax, ay := int(math.Round(x1)), int(math.Round(y1))
	bx, by := int(math.Round(x2)), int(math.Round(y2))
	dx, dy := abs(bx-ax), -abs(by-ay)
	sx, sy := sign(bx-ax), sign(by-ay)
	e := dx + dy
	for {
		p.img.SetRGBA(ax, ay, c) // ignores points outside the image
		if ax == bx && ay == by {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			ax += sx
		} else {
			e += dx
			ay += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

func (p *pngCanvas) text(x, y float64, str string, size float64, a anchor, vertical bool, c color.RGBA) {
	s := max(1, int(math.Round(size/7)))
	adv := (glyphW + 1) * s
	width := len([]rune(str))*adv - s
	off := 0 // along the text direction, from (x, y)
	switch a {
	case anchorMiddle:
		off = -width / 2
	case anchorEnd:
		off = -width
	}
	ox, oy := int(math.Round(x)), int(math.Round(y))
	for i, r := range []rune(str) {
		g := glyph(r)
		for row := 0; row < glyphH; row++ {
			for col := 0; col < glyphW; col++ {
				if g[row]>>(glyphW-1-col)&1 == 0 {
					continue
				}
				along := off + i*adv + col*s // distance along the baseline
				across := -glyphH*s + row*s  // from the baseline, downwards
				for u := 0; u < s; u++ {
					for v := 0; v < s; v++ {
						if vertical {
							p.img.SetRGBA(ox+across+v, oy-along-u, c)
						} else {
							p.img.SetRGBA(ox+along+u, oy+across+v, c)
						}
					}
				}
			}
		}
	}
}

func (p *pngCanvas) writeTo(w io.Writer) error { return png.Encode(w, p.img) }

// niceScale picks an axis top and step (1, 2 or 5 times a power of ten)
// for values up to max, with about n steps.
func niceScale(max float64, n int) (top, step float64) {
	if !(max > 0) || math.IsInf(max, 0) {
		return 1, 0.2
	}
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch norm := raw / mag; {
	case norm <= 1:
		step = mag
	case norm <= 2:
		step = 2 * mag
	case norm <= 5:
		step = 5 * mag
	default:
		step = 10 * mag
	}
	top = math.Ceil(max/step-1e-9) * step
	return top, step
}

// tickLabel formats v with as many decimals as step needs.
func tickLabel(v, step float64) string {
	dec := 0
	if step < 1 {
		dec = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	return fmt.Sprintf("%.*f", dec, v)
}

// plot is the frame of a chart: title, axis labels, y grid, and the plot
// area's bounds.
type plot struct {
	x0, y0, x1, y1 float64 // plot area, y0 top
	top            float64 // value at y0
}

func drawFrame(c canvas, title, xLabel, yLabel string, ymax float64, bottom float64) plot {
	p := plot{x0: 80, y0: 50, x1: ChartWidth - 30, y1: ChartHeight - bottom}
	top, step := niceScale(ymax, 5)
	p.top = top
	c.text(ChartWidth/2, 28, title, 16, anchorMiddle, false, colBlack)
	for v := 0.0; v <= top+step/2; v += step {
		y := p.y(v)
		c.line(p.x0, y, p.x1, y, colGrid)
		c.text(p.x0-8, y+4, tickLabel(v, step), 12, anchorEnd, false, colBlack)
	}
	c.line(p.x0, p.y0, p.x0, p.y1, colBlack)
	c.line(p.x0, p.y1, p.x1, p.y1, colBlack)
	c.text(24, (p.y0+p.y1)/2, yLabel, 13, anchorMiddle, true, colBlack)
	c.text((p.x0+p.x1)/2, p.y1+42, xLabel, 13, anchorMiddle, false, colBlack)
	return p
}

// y maps a value to a pixel row.
func (p plot) y(v float64) float64 { return p.y1 - (p.y1-p.y0)*v/p.top }

// throughputChart draws the grouped bar chart of a frame size: a group
// per DUT, a bar per flow count.
func (r *Report) throughputChart(c canvas, frameSize int) {
	duts, _, flows := r.axes()
	ymax := 0.0
	for _, run := range r.Runs {
		if run.FrameSize == frameSize && run.OK() {
			ymax = max(ymax, run.Result.Mpps())
		}
	}
	title := fmt.Sprintf("Throughput, %d-byte frames", frameSize)
	p := drawFrame(c, title, "DUT", "Mpps delivered", ymax*1.08, 90)
	if len(duts) == 0 {
		return
	}
	gw := (p.x1 - p.x0) / float64(len(duts))
	bw := gw * 0.8 / float64(max(1, len(flows)))
	for g, d := range duts {
		gx := p.x0 + float64(g)*gw
		c.text(gx+gw/2, p.y1+20, d, 13, anchorMiddle, false, colBlack)
		for i, f := range flows {
			run, ok := r.Find(d, frameSize, f)
			x := gx + gw*0.1 + float64(i)*bw
			if !ok {
				continue
			}
			if !run.OK() {
				c.text(x+bw/2, p.y1-4, "n/a", 10, anchorMiddle, false, colRed)
				continue
			}
			v := run.Result.Mpps()
			y := p.y(v)
			c.rect(x+1, y, bw-2, p.y1-y, palette[i%len(palette)])
			label := fmt.Sprintf("%.2f", v)
			if float64(len(label))*6 <= bw { // fits even in the PNG font
				c.text(x+bw/2, y-4, label, 10, anchorMiddle, false, colBlack)
			}
		}
	}
	// Legend: a swatch and label per flow count, centred under the axis.
	const item = 120.0
	lx := ChartWidth/2 - item*float64(len(flows))/2
	for i, f := range flows {
		x := lx + float64(i)*item
		c.rect(x, ChartHeight-28, 14, 14, palette[i%len(palette)])
		c.text(x+20, ChartHeight-16, flowsLabel(f), 12, anchorStart, false, colBlack)
	}
}

// ThroughputSVG writes the throughput chart of a frame size as SVG.
func (r *Report) ThroughputSVG(w io.Writer, frameSize int) error {
	s := newSVG()
	r.throughputChart(s, frameSize)
	return s.writeTo(w)
}

// ThroughputPNG writes the throughput chart of a frame size as PNG.
func (r *Report) ThroughputPNG(w io.Writer, frameSize int) error {
	p := newPNG()
	r.throughputChart(p, frameSize)
	return p.writeTo(w)
}

// Sample is one time bucket of a receive-rate timeline (a failover
// measurement): the rate the receiver saw from T, measured from the
// start of the measurement, until the next sample's T (the last bucket
// is as long as the one before it).
type Sample struct {
	T   time.Duration
	PPS float64
}

// Mark is an event drawn on a timeline, such as the moment a link went
// down.
type Mark struct {
	T     time.Duration
	Label string
}

// Timeline is a loss timeline chart: received packets per second over
// time buckets, with marked events.
type Timeline struct {
	Title   string
	Samples []Sample // in increasing T
	Marks   []Mark
}

// Outage is the total length of the buckets whose rate is below frac of
// the median rate: with frac 0.5, roughly how long traffic was lost.
func (tl Timeline) Outage(frac float64) time.Duration {
	if len(tl.Samples) == 0 {
		return 0
	}
	rates := make([]float64, len(tl.Samples))
	for i, s := range tl.Samples {
		rates[i] = s.PPS
	}
	slices.Sort(rates)
	med := rates[len(rates)/2]
	var d time.Duration
	for i, s := range tl.Samples {
		if s.PPS < frac*med {
			d += tl.bucket(i)
		}
	}
	return d
}

// bucket is the length of sample i's bucket.
func (tl Timeline) bucket(i int) time.Duration {
	s := tl.Samples
	switch {
	case i+1 < len(s):
		return s[i+1].T - s[i].T
	case i > 0:
		return s[i].T - s[i-1].T
	}
	return 0
}

func (tl Timeline) draw(c canvas) {
	ymax, end := 0.0, time.Duration(0)
	for i, s := range tl.Samples {
		ymax = max(ymax, s.PPS)
		end = max(end, s.T+tl.bucket(i))
	}
	for _, m := range tl.Marks {
		end = max(end, m.T)
	}
	if end <= 0 {
		end = time.Second
	}
	unit, div := "pps", 1.0
	switch {
	case ymax >= 1e6:
		unit, div = "Mpps", 1e6
	case ymax >= 1e3:
		unit, div = "kpps", 1e3
	}
	tunit, tdiv := "s", float64(time.Second)
	if end < 2*time.Second {
		tunit, tdiv = "ms", float64(time.Millisecond)
	}
	title := tl.Title
	if title == "" {
		title = "Received rate"
	}
	if len(tl.Samples) > 1 {
		title += fmt.Sprintf(" (outage ~%v)", tl.Outage(0.5).Round(time.Millisecond))
	}
	p := drawFrame(c, title, "time ("+tunit+")", "received "+unit, ymax/div*1.08, 60)
	xOf := func(t time.Duration) float64 { return p.x0 + (p.x1-p.x0)*float64(t)/float64(end) }
	// Time ticks.
	_, tstep := niceScale(float64(end)/tdiv, 8)
	for v := 0.0; v*tdiv <= float64(end)+1; v += tstep {
		x := xOf(time.Duration(v * tdiv))
		c.line(x, p.y1, x, p.y1+5, colBlack)
		c.text(x, p.y1+20, tickLabel(v, tstep), 12, anchorMiddle, false, colBlack)
	}
	for i, s := range tl.Samples {
		x0, x1 := xOf(s.T), xOf(s.T+tl.bucket(i))
		y := p.y(s.PPS / div)
		c.rect(x0, y, max(x1-x0, 1), p.y1-y, palette[0])
	}
	for _, m := range tl.Marks {
		x := xOf(m.T)
		for y := p.y0; y < p.y1; y += 8 { // dashed
			c.line(x, y, x, min(y+4, p.y1), colRed)
		}
		c.text(x+4, p.y0+12, m.Label, 11, anchorStart, false, colRed)
	}
}

// SVG writes the timeline chart as SVG.
func (tl Timeline) SVG(w io.Writer) error {
	s := newSVG()
	tl.draw(s)
	return s.writeTo(w)
}

// PNG writes the timeline chart as PNG.
func (tl Timeline) PNG(w io.Writer) error {
	p := newPNG()
	tl.draw(p)
	return p.writeTo(w)
}

// WriteFailoverChart renders samples (a failover measurement's receive
// rate per time bucket) as <base>.svg and <base>.png in dir.
func WriteFailoverChart(dir, base, title string, samples []Sample, marks ...Mark) error {
	tl := Timeline{Title: title, Samples: samples, Marks: marks}
	for ext, render := range map[string]func(io.Writer) error{"svg": tl.SVG, "png": tl.PNG} {
		var buf bytes.Buffer
		if err := render(&buf); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, base+"."+ext), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
