package shipbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// Workload describes what a Generator writes. Standard() is the workload
// the benchmarks use; tests change a field or two.
type Workload struct {
	Containers int // number of containers
	Lines      int // messages WriteAll writes (a long message is one, however many pieces)

	MeanBytes  int     // mean message size in bytes (lognormal)
	Sigma      float64 // lognormal sigma of the message size
	JSONFrac   float64 // fraction of JSON application log messages; the rest is plain text
	BigFrac    float64 // fraction of messages longer than 16 KiB (written as P pieces and an F)
	BigMax     int     // longest long message, in bytes
	StderrFrac float64 // fraction of messages on stderr
	// Skew makes container volumes uneven: container i gets a share
	// proportional to 1/(i+1)^Skew (0: all the same).
	Skew float64

	Seed uint64
	// Start is the timestamp of the first message WriteAll writes; the
	// next ones follow 50µs apart. Live uses the wall clock.
	Start time.Time
}

// Standard is the node workload shippers are compared on.
func Standard() Workload {
	return Workload{
		Containers: 40,
		Lines:      2_000_000,
		MeanBytes:  300,
		Sigma:      0.6,
		JSONFrac:   0.45,
		BigFrac:    0.0005,
		BigMax:     64 << 10,
		StderrFrac: 0.1,
		Skew:       1,
		Seed:       1,
		Start:      time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
	}
}

const (
	// splitAt is the most content one CRI line carries: containerd and
	// CRI-O split longer messages into 16 KiB partial lines.
	splitAt = 16 << 10
	// minBytes and maxBytes bound an ordinary message's size.
	minBytes, maxBytes = 60, 12000
	// flushAt is the size at which a container's buffered lines are
	// written to its file.
	flushAt = 256 << 10
	// writeGap is the time between two messages' timestamps in WriteAll.
	writeGap = 50 * time.Microsecond
)

func (w *Workload) validate() error {
	switch {
	case w.Containers < 1:
		return errors.New("shipbench: need at least one container")
	case w.MeanBytes < minBytes:
		return fmt.Errorf("shipbench: mean message size %d is below %d", w.MeanBytes, minBytes)
	case w.BigFrac < 0 || w.BigFrac > 1 || w.JSONFrac < 0 || w.JSONFrac > 1 || w.StderrFrac < 0 || w.StderrFrac > 1:
		return errors.New("shipbench: a fraction is outside [0, 1]")
	case w.BigFrac > 0 && w.BigMax <= splitAt:
		return fmt.Errorf("shipbench: BigMax %d is not longer than %d", w.BigMax, splitAt)
	case w.Sigma < 0 || w.Skew < 0:
		return errors.New("shipbench: negative sigma or skew")
	}
	return nil
}

// Stats is what a Generator wrote so far.
type Stats struct {
	Lines    int64 // messages (seq 0 to Lines-1)
	CRILines int64 // physical lines: a long message is several
	BigLines int64 // messages longer than 16 KiB
	Stderr   int64 // messages on stderr
	Bytes    int64 // bytes written, CRI framing included
	// ContentBytes is the size of the messages alone.
	ContentBytes int64
	// PerContainer is the number of messages of each container, in the
	// order of Generator.Containers.
	PerContainer []int64
}

// Generator writes a Workload into a node's log tree. It is not safe for
// concurrent use.
type Generator struct {
	w    Workload
	node *nodelog.Node
	cs   []*container
	cum  []float64 // cumulative container weights, for pick
	rng  *rand.Rand
	mu   float64 // lognormal mu of the message size
	msg  []byte  // the message being built
	tail []byte  // the fields after a JSON message's msg
	ts   stamps
	st   Stats
	seq  int
}

type container struct {
	c   *nodelog.Container
	buf []byte
}

// New creates the node's log tree under root (root/var/log/...) with the
// workload's containers, their log files empty.
func New(root string, w Workload) (*Generator, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		w:    w,
		node: &nodelog.Node{Root: root},
		rng:  rand.New(rand.NewPCG(w.Seed, w.Seed^0x73686970)), // "ship"
		mu:   math.Log(float64(w.MeanBytes)) - w.Sigma*w.Sigma/2,
		msg:  make([]byte, 0, 1024),
	}
	if err := g.addContainers(); err != nil {
		g.Close()
		return nil, err
	}
	g.st.PerContainer = make([]int64, len(g.cs))
	return g, nil
}

var (
	namespaces = []string{"default", "payments", "checkout", "kube-system", "search", "ingress", "observability", "accounts"}
	apps       = []string{"frontend", "orders", "cart", "checkout", "catalog", "inventory", "billing", "auth",
		"search-api", "indexer", "recommendations", "notifications", "coredns", "ingress-controller", "metrics-agent", "profile"}
	sidecars = []string{"envoy", "log-forwarder", "worker"}
)

// addContainers makes the pods: one or two containers each, the first
// named after the app, spread over the namespaces.
func (g *Generator) addContainers() error {
	for i := 0; len(g.cs) < g.w.Containers; i++ {
		ns, app := namespaces[i%len(namespaces)], apps[i%len(apps)]
		pod := app + "-" + g.randString(hexDigits, 10) + "-" + g.randString(podAlphabet, 5)
		for j := range 1 + g.rng.IntN(2) {
			if len(g.cs) == g.w.Containers {
				break
			}
			name := app
			if j > 0 {
				name = sidecars[g.rng.IntN(len(sidecars))]
			}
			c, err := g.node.AddContainer(ns, pod, name, nodelog.CRI)
			if err != nil {
				return fmt.Errorf("shipbench: %w", err)
			}
			c.SplitAt = splitAt
			g.cs = append(g.cs, &container{c: c, buf: make([]byte, 0, flushAt+splitAt+512)})
		}
	}
	total := 0.0
	g.cum = make([]float64, len(g.cs))
	for i := range g.cs {
		total += 1 / math.Pow(float64(i+1), g.w.Skew)
		g.cum[i] = total
	}
	return nil
}

const (
	hexDigits   = "0123456789abcdef"
	podAlphabet = "bcdfghjklmnpqrstvwxz2456789" // generated Kubernetes names
)

func (g *Generator) randString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[g.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// Node is the log tree: a shipper tails Node().ContainersGlob().
func (g *Generator) Node() *nodelog.Node { return g.node }

// Containers are the node's containers, the busiest first.
func (g *Generator) Containers() []*nodelog.Container {
	out := make([]*nodelog.Container, len(g.cs))
	for i, c := range g.cs {
		out[i] = c.c
	}
	return out
}

// Stats is what was written so far.
func (g *Generator) Stats() Stats {
	st := g.st
	st.PerContainer = append([]int64(nil), g.st.PerContainer...)
	return st
}

// WriteAll writes the workload's Lines messages as fast as it can and
// leaves every byte in the files.
func (g *Generator) WriteAll() error {
	for n := 0; n < g.w.Lines; n++ {
		if err := g.emit(g.w.Start.Add(time.Duration(g.seq) * writeGap)); err != nil {
			return err
		}
	}
	return g.flushAll()
}

// Live appends messages at rate messages per second in total, with the
// wall clock's timestamps, writing what is due and flushing every file each
// tick, until lines messages are written (0: no limit) or ctx is done. It
// returns nil once lines messages are in the files, else ctx's error.
func (g *Generator) Live(ctx context.Context, rate float64, lines int, tick time.Duration) error {
	if rate <= 0 || tick <= 0 {
		return errors.New("shipbench: live mode needs a positive rate and tick")
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	start, written := time.Now(), 0
	for {
		now := time.Now()
		due := int(now.Sub(start).Seconds() * rate)
		if lines > 0 {
			due = min(due, lines)
		}
		for ; written < due; written++ {
			if err := g.emit(now); err != nil {
				return err
			}
		}
		if err := g.flushAll(); err != nil {
			return err
		}
		if lines > 0 && written >= lines {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pick chooses a container by weight.
func (g *Generator) pick() int {
	x := g.rng.Float64() * g.cum[len(g.cum)-1]
	lo, hi := 0, len(g.cum)-1
	for lo < hi {
		m := (lo + hi) / 2
		if g.cum[m] < x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// emit writes the next message, with timestamp t, to a container picked
// by weight.
func (g *Generator) emit(t time.Time) error {
	i := g.pick()
	c := g.cs[i]
	g.ts.set(t)
	msg, big := g.message(g.seq)
	stream := "stdout"
	if g.rng.Float64() < g.w.StderrFrac {
		stream = "stderr"
		g.st.Stderr++
	}
	before := len(c.buf)
	for first := true; first || len(msg) > 0; first = false {
		piece, tag := msg, " F "
		if len(piece) > splitAt {
			piece, tag = msg[:splitAt], " P "
		}
		msg = msg[len(piece):]
		c.buf = append(c.buf, g.ts.cri[:]...)
		c.buf = append(c.buf, ' ')
		c.buf = append(c.buf, stream...)
		c.buf = append(c.buf, tag...)
		c.buf = append(c.buf, piece...)
		c.buf = append(c.buf, '\n')
		g.st.CRILines++
		g.st.ContentBytes += int64(len(piece))
	}
	g.st.Bytes += int64(len(c.buf) - before)
	if big {
		g.st.BigLines++
	}
	g.st.Lines++
	g.st.PerContainer[i]++
	g.seq++
	if len(c.buf) >= flushAt {
		return g.flush(c)
	}
	return nil
}

func (g *Generator) flush(c *container) error {
	if len(c.buf) == 0 {
		return nil
	}
	err := c.c.WriteRaw(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		return fmt.Errorf("shipbench: %s: %w", c.c.FilePath(), err)
	}
	return nil
}

func (g *Generator) flushAll() error {
	for _, c := range g.cs {
		if err := g.flush(c); err != nil {
			return err
		}
	}
	return nil
}

// Close writes what is buffered and closes the files; the log tree stays.
func (g *Generator) Close() error {
	errs := []error{g.flushAll()}
	for _, c := range g.cs {
		errs = append(errs, c.c.Close())
	}
	return errors.Join(errs...)
}

// size draws an ordinary message's size.
func (g *Generator) size() int {
	s := int(math.Exp(g.mu + g.w.Sigma*g.rng.NormFloat64()))
	return min(max(s, minBytes), maxBytes)
}

// stamps are the renderings of one second's timestamp the messages use,
// computed again only when the second changes.
type stamps struct {
	sec    int64
	nsec   int
	cri    [30]byte // 2026-11-21T10:00:00.123456789Z
	iso    []byte   // 2026-11-21T10:00:00. (milliseconds follow)
	klog   []byte   // 1121 10:00:00. (microseconds follow)
	access []byte   // 21/Nov/2026:10:00:00 +0000
	java   []byte   // 2026-11-21 10:00:00. (milliseconds follow)
}

func (s *stamps) set(t time.Time) {
	t = t.UTC()
	if sec := t.Unix(); sec != s.sec || s.iso == nil {
		s.sec = sec
		s.iso = t.AppendFormat(s.iso[:0], "2006-01-02T15:04:05.")
		s.klog = t.AppendFormat(s.klog[:0], "0102 15:04:05.")
		s.access = t.AppendFormat(s.access[:0], "02/Jan/2006:15:04:05 -0700")
		s.java = t.AppendFormat(s.java[:0], "2006-01-02 15:04:05.")
		copy(s.cri[:], s.iso)
	}
	s.nsec = t.Nanosecond()
	putDigits(s.cri[20:29], s.nsec)
	s.cri[29] = 'Z'
}

// putDigits writes v into b as len(b) decimal digits, zero-padded.
func putDigits(b []byte, v int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// appendFrac appends the first n digits of the nanoseconds.
func (s *stamps) appendFrac(b []byte, n int) []byte {
	var d [9]byte
	putDigits(d[:], s.nsec)
	return append(b, d[:n]...)
}
