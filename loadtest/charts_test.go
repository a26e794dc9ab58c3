package loadtest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// throughputChart is a two-minute run: lines written, shipped and indexed
// per second, with a Kafka outage from 40 s to 60 s and the indexer killed
// at 90 s.
func throughputChart() Chart {
	names := []string{"written", "shipped", "indexed"}
	series := make([]Series, len(names))
	for i, name := range names {
		series[i].Name = name
		for s := range 120 {
			v := 5000 + 300*math.Sin(float64(s+i*7)/9)
			switch {
			case i > 0 && s >= 40 && s < 60:
				v = 0 // the outage stops everything past the shipper
			case i > 0 && s >= 60 && s < 75:
				v *= 1.8 // catching up
			case i == 2 && s >= 90 && s < 95:
				v = 0 // the indexer is down
			}
			series[i].Points = append(series[i].Points, Point{T: time.Duration(s) * time.Second, V: v})
		}
	}
	return Chart{
		Title:  "Throughput",
		YLabel: "lines/s",
		Series: series,
		Marks: []Mark{
			{Label: "Kafka outage", At: 40 * time.Second, For: 20 * time.Second},
			{Label: "SIGKILL indexer-0", At: 90 * time.Second},
		},
	}
}

func latencyChart() Chart {
	var p50, p99 Series
	p50.Name, p99.Name = "p50", "p99"
	for s := range 120 {
		t := time.Duration(s) * time.Second
		p50.Points = append(p50.Points, Point{T: t, V: 0.2 + 0.05*math.Cos(float64(s)/5)})
		p99.Points = append(p99.Points, Point{T: t, V: 1.1 + 0.4*math.Sin(float64(s)/7)})
	}
	// Gaps: no sample for these seconds.
	p99.Points[10].V = math.NaN()
	p99.Points[11].V = math.Inf(1)
	p50.Points[30].V = math.Inf(-1)
	return Chart{
		Title:  "End-to-end latency",
		YLabel: "seconds",
		Series: []Series{p50, p99},
	}
}

// checkSVG reads the SVG at path, checks that it is well-formed XML with
// an <svg> root, and returns its bytes.
func checkSVG(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("%s: root element is %q, want svg", path, root)
	}
	return data
}

// writeChart writes c twice and checks that both files are identical,
// valid SVG, and hold every text of the chart.
func writeChart(t *testing.T, c Chart, want ...string) []byte {
	t.Helper()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.svg"), filepath.Join(dir, "b.svg")
	if err := c.WriteSVG(a); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteSVG(b); err != nil {
		t.Fatal(err)
	}
	da, db := checkSVG(t, a), checkSVG(t, b)
	if !bytes.Equal(da, db) {
		t.Fatal("two writes of the same chart differ")
	}
	for _, w := range want {
		if !bytes.Contains(da, []byte(">"+html.EscapeString(w)+"<")) {
			t.Errorf("SVG has no text %q", w)
		}
	}
	return da
}

func TestChartThroughput(t *testing.T) {
	c := throughputChart()
	want := []string{c.Title, c.YLabel, "time since start (s)"}
	for _, s := range c.Series {
		want = append(want, s.Name)
	}
	for _, m := range c.Marks {
		want = append(want, m.Label)
	}
	data := writeChart(t, c, want...)
	if !bytes.Contains(data, []byte(`width="576pt" height="288pt"`)) {
		t.Error("SVG is not 8x4 inches")
	}
	if bytes.Contains(data, []byte("no data")) {
		t.Error(`chart with data has a "no data" note`)
	}
	if p := os.Getenv("LOADTEST_CHART_EXAMPLE"); p != "" {
		if err := c.WriteSVG(p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChartLatency(t *testing.T) {
	c := latencyChart()
	data := writeChart(t, c, c.Title, c.YLabel, "p50", "p99")
	for _, bad := range []string{"NaN", "Inf"} {
		if bytes.Contains(data, []byte(bad)) {
			t.Errorf("SVG contains %q", bad)
		}
	}
}

// TestChartDistinctStyles checks that the first 35 series all differ in
// colour or dash pattern.
func TestChartDistinctStyles(t *testing.T) {
	n := len(seriesColors) * len(seriesDashes)
	if n < 35 {
		t.Fatalf("only %d distinct styles", n)
	}
	same := func(i, j int) bool {
		ri, gi, bi, ai := seriesColors[i%len(seriesColors)].RGBA()
		rj, gj, bj, aj := seriesColors[j%len(seriesColors)].RGBA()
		return ri == rj && gi == gj && bi == bj && ai == aj &&
			slices.Equal(seriesDashes[i%len(seriesDashes)], seriesDashes[j%len(seriesDashes)])
	}
	for i := range n {
		for j := range i {
			if same(i, j) {
				t.Fatalf("series %d and %d share a style", j, i)
			}
		}
	}
}

func TestChartEmpty(t *testing.T) {
	cases := map[string]Chart{
		"zero":         {},
		"titled":       {Title: "Throughput", YLabel: "lines/s"},
		"empty series": {Title: "Latency", Series: []Series{{Name: "p50"}, {Name: "p99", Points: []Point{}}}},
		"only NaN": {Title: "Latency", Series: []Series{{Name: "p50", Points: []Point{
			{T: time.Second, V: math.NaN()}, {T: 2 * time.Second, V: math.Inf(1)},
		}}}},
		"only marks": {Title: "Faults", Marks: []Mark{{Label: "burst", At: 5 * time.Second, For: 10 * time.Second}, {Label: "kill", At: 20 * time.Second}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			want := []string{"no data"}
			if c.Title != "" {
				want = append(want, c.Title)
			}
			for _, s := range c.Series {
				want = append(want, s.Name+" (no data)")
			}
			writeChart(t, c, want...)
		})
	}
}

func TestChartOddInput(t *testing.T) {
	c := Chart{
		Title:  "a <b> & \"c\"\n\x00\xff",
		YLabel: "lines/s",
		Series: []Series{
			{Name: "one point", Points: []Point{{T: 3 * time.Second, V: 7}}},
			{Name: "", Points: []Point{{T: 2 * time.Second, V: 0}, {T: time.Second, V: 0}}},
			{Name: "negative", Points: []Point{{T: -time.Second, V: -4}, {T: time.Second, V: 2}}},
			{Name: strings.Repeat("x", 200), Points: []Point{{V: 1e7}, {T: time.Minute, V: 3e7}}},
		},
		Marks: []Mark{{Label: "late", At: 10 * time.Minute}, {At: time.Second, For: -time.Second}},
	}
	writeChart(t, c, "a <b> & \"c\"  \uFFFD", "one point", "series 2", "negative")
}

func TestChartWriteError(t *testing.T) {
	c := throughputChart()
	if err := c.WriteSVG(filepath.Join(t.TempDir(), "missing", "x.svg")); err == nil {
		t.Fatal("WriteSVG into a missing directory succeeded")
	}
}

func TestChartTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		target int
		want   string
	}{
		{0, 10500, 6, "0 2k 4k 6k 8k 10k"},
		{0, 120, 10, "0 20 40 60 80 100 120"},
		{0, 1.3, 6, "0 0.25 0.5 0.75 1 1.25"},
		{-2.5e6, 2.5e6, 5, "-2M -1M 0 1M 2M"},
		{0, 3e9, 3, "0 1G 2G 3G"},
		{0, 10500, 5, "0 2.5k 5k 7.5k 10k"},
	} {
		var labels []string
		for _, tk := range (niceTicks{target: tc.target}).Ticks(tc.lo, tc.hi) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if got := strings.Join(labels, " "); got != tc.want {
			t.Errorf("ticks(%v, %v, %d) = %q, want %q", tc.lo, tc.hi, tc.target, got, tc.want)
		}
	}
}
