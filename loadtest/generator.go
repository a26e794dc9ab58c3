package loadtest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// Expectation is what the pipeline must do with a line.
type Expectation uint8

const (
	// Indexed lines must be found exactly once in Elasticsearch.
	Indexed Expectation = iota
	// DeadLettered lines (malformed: they start with '#') must be in their
	// tenant's dead-letter topic.
	DeadLettered
)

func (e Expectation) String() string {
	switch e {
	case Indexed:
		return "indexed"
	case DeadLettered:
		return "dead-lettered"
	}
	return "Expectation(" + strconv.Itoa(int(e)) + ")"
}

// The kinds of message a container writes.
type lineKind uint8

const (
	kindJSON lineKind = iota
	kindStack
	kindLarge
	kindMalformed
	kindText
	numKinds
)

var kindNames = [numKinds]string{"json", "stack_trace", "large", "malformed", "text"}

const (
	// splitAt is the longest content of one physical line: containerd and
	// docker split messages at 16 KiB.
	splitAt = 16 << 10
	// largeMin and largeMax bound the length of a large line.
	largeMin, largeMax = splitAt + 1, 40 << 10
	// flushAt is the size of the buffer of encoded lines written to a
	// container's file at once.
	flushAt = 64 << 10
	// A stack trace is a header line, 3 to 8 frames and, one time in
	// three, a "Caused by:" line with 1 to 3 frames of its own.
	stackFramesMin, stackFramesMax = 3, 8
	causeFramesMin, causeFramesMax = 1, 3
	causeOneIn                     = 3
	// stackMeanLines is the mean number of lines of a stack trace.
	stackMeanLines = 1 + float64(stackFramesMin+stackFramesMax)/2 +
		(1+float64(causeFramesMin+causeFramesMax)/2)/causeOneIn
)

// NodeWriter writes the containers of one simulated node: Scenario.Containers
// containers spread over the tenants, writing the Scenario.Mix of lines, each
// with its marker (Marker(node, seq) for seq 0, 1, 2, ...), rotated
// kubelet-style at Scenario.RotateBytes. It remembers each line's tenant and
// expectation in a byte or two per line.
//
// Its methods are safe for concurrent use; Write calls are serialized.
type NodeWriter struct {
	// Sample, if set, is called with the marker and write time of every
	// line whose seq is a multiple of Scenario.LatencySampleEvery, after
	// the line is in its file. It is called by Write, outside the writer's
	// lock. Set it before the first Write.
	Sample func(marker string, written time.Time)

	node        int
	s           *Scenario
	tree        *nodelog.Node
	sampleEvery int
	containers  []*genContainer
	filler      string
	// cum are the cumulative weights of the kinds per message.
	cum [numKinds]float64

	mu     sync.RWMutex
	r      *rand.Rand
	next   int // the container the next Write starts with
	lines  int
	meta8  []uint8  // per line: tenant index | deadBit8 (up to 127 tenants)
	meta16 []uint16 // per line: tenant index | deadBit16 (more tenants)
	msg    []byte   // the message being built
	buf    []byte   // encoded lines not yet written
	sample []int    // seqs to pass to Sample at the end of Write
	kinds  [numKinds]int
	closed bool
}

const (
	deadBit8  = 1 << 7
	deadBit16 = 1 << 15
)

type genContainer struct {
	c      *nodelog.Container
	tenant int
}

// NewNodeWriter creates the log tree of node under root (root/var/log/...)
// and its containers. Everything it writes, the container formats and the
// pod names are a function of seed and node.
func NewNodeWriter(root string, node int, s *Scenario, seed uint64) (*NodeWriter, error) {
	switch {
	case node < 0 || node > MaxMarkerNode:
		return nil, fmt.Errorf("loadtest: node %d out of range", node)
	case len(s.Tenants) == 0 || s.Containers < 1:
		return nil, errors.New("loadtest: scenario without tenants or containers")
	case s.RotateBytes <= 0:
		return nil, errors.New("loadtest: rotate_bytes must be positive")
	}
	w := &NodeWriter{
		node:        node,
		s:           s,
		tree:        &nodelog.Node{Root: root},
		sampleEvery: max(s.LatencySampleEvery, 1),
		filler:      fillerText(),
		r:           rand.New(rand.NewPCG(seed, uint64(node)^0x6c746e)), // "ltn"
	}
	if err := w.setMix(s.Mix); err != nil {
		return nil, err
	}
	// Which containers write docker json-file logs: round(Docker *
	// Containers) of them, at least one when Docker > 0, picked at random.
	docker := make([]bool, s.Containers)
	nd := int(math.Round(s.Mix.Docker * float64(s.Containers)))
	if s.Mix.Docker > 0 {
		nd = max(nd, 1)
	}
	for _, i := range w.r.Perm(s.Containers)[:min(nd, s.Containers)] {
		docker[i] = true
	}
	for i := range s.Containers {
		tenant := i % len(s.Tenants)
		format := nodelog.CRI
		if docker[i] {
			format = nodelog.Docker
		}
		pod := s.Tenants[tenant] + "-app-" + strconv.Itoa(i) + "-" + podHash(w.r)
		c, err := w.tree.AddContainer(s.Tenants[tenant], pod, "app", format)
		if err != nil {
			w.closeContainers()
			return nil, fmt.Errorf("loadtest: node %d: container %d: %w", node, i, err)
		}
		c.SplitAt = splitAt
		w.containers = append(w.containers, &genContainer{c: c, tenant: tenant})
	}
	if len(s.Tenants) > deadBit8 {
		w.meta16 = make([]uint16, 0, 1<<16)
	} else {
		w.meta8 = make([]uint8, 0, 1<<16)
	}
	w.msg = make([]byte, 0, 1024)
	w.buf = make([]byte, 0, flushAt+largeMax*2)
	return w, nil
}

// setMix sets the weights of the kinds of message so that the fractions of
// lines (not messages: a stack trace is stackMeanLines lines on average)
// are the mix's.
func (w *NodeWriter) setMix(m Mix) error {
	text := 1 - m.JSON - m.StackTrace - m.Large - m.Malformed
	if m.JSON < 0 || m.StackTrace < 0 || m.Large < 0 || m.Malformed < 0 || text < -1e-9 {
		return fmt.Errorf("loadtest: bad mix %+v", m)
	}
	weights := [numKinds]float64{
		kindJSON:      m.JSON,
		kindStack:     m.StackTrace / stackMeanLines,
		kindLarge:     m.Large,
		kindMalformed: m.Malformed,
		kindText:      max(text, 0),
	}
	var sum float64
	for k, f := range weights {
		sum += f
		w.cum[k] = sum
	}
	if sum <= 0 {
		return errors.New("loadtest: empty mix")
	}
	for k := range w.cum {
		w.cum[k] /= sum
	}
	w.cum[numKinds-1] = 1
	return nil
}

// Node is the node's log tree; a shipper tails Node().ContainersGlob().
func (w *NodeWriter) Node() *nodelog.Node { return w.tree }

// Containers are the node's containers.
func (w *NodeWriter) Containers() []*nodelog.Container {
	out := make([]*nodelog.Container, len(w.containers))
	for i, c := range w.containers {
		out[i] = c.c
	}
	return out
}

// Lines is the number of lines written so far: they carry the markers of
// seqs 0 to Lines()-1 of this node.
func (w *NodeWriter) Lines() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.lines
}

// Kinds is the number of lines written so far by kind ("json",
// "stack_trace", "large", "malformed", "text").
func (w *NodeWriter) Kinds() map[string]int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := make(map[string]int, numKinds)
	for k, n := range w.kinds {
		out[kindNames[k]] = n
	}
	return out
}

// Tenant is the tenant of line seq (seq < Lines()).
func (w *NodeWriter) Tenant(seq int) string {
	t, _ := w.line(seq)
	return w.s.Tenants[t]
}

// Expect is what must become of line seq (seq < Lines()).
func (w *NodeWriter) Expect(seq int) Expectation {
	_, e := w.line(seq)
	return e
}

func (w *NodeWriter) line(seq int) (tenant int, e Expectation) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.meta16 != nil {
		m := w.meta16[seq]
		if m&deadBit16 != 0 {
			e = DeadLettered
		}
		return int(m &^ deadBit16), e
	}
	m := w.meta8[seq]
	if m&deadBit8 != 0 {
		e = DeadLettered
	}
	return int(m &^ deadBit8), e
}

// Write writes at least n lines, with event time now, spread round robin
// over the containers. A stack trace is written whole, so Write may write
// a few lines more than n: Lines tells. A container whose file reached
// Scenario.RotateBytes is rotated. After an error the writer is unusable.
func (w *NodeWriter) Write(n int, now time.Time) error {
	if n <= 0 {
		return nil
	}
	w.mu.Lock()
	err := w.write(n, now)
	sample := w.sample
	w.sample = nil // Sample runs outside the lock: the next Write needs its own slice
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if w.Sample != nil {
		for _, seq := range sample {
			w.Sample(Marker(w.node, seq), now)
		}
	}
	return nil
}

func (w *NodeWriter) write(n int, now time.Time) error {
	if w.closed {
		return errors.New("loadtest: write on a closed NodeWriter")
	}
	// Each container in turn writes its share of what remains, so that a
	// stack trace overshooting one container's share shortens the next
	// ones': the total exceeds n by less than one stack trace.
	nc := len(w.containers)
	remaining := n
	k := 0
	for ; k < nc && remaining > 0; k++ {
		gc := w.containers[(w.next+k)%nc]
		share := (remaining + nc - k - 1) / (nc - k)
		wrote := 0
		for wrote < share {
			wrote += w.message(gc, now)
			if len(w.buf) >= flushAt {
				if err := w.flush(gc); err != nil {
					return err
				}
			}
		}
		if err := w.flush(gc); err != nil {
			return err
		}
		remaining -= wrote
	}
	w.next = (w.next + k) % nc
	return nil
}

// flush writes the buffered lines of gc and rotates its file when it is
// large enough.
func (w *NodeWriter) flush(gc *genContainer) error {
	if len(w.buf) == 0 {
		return nil
	}
	err := gc.c.WriteRaw(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		return fmt.Errorf("loadtest: node %d: %s: %w", w.node, gc.c.Pod, err)
	}
	if gc.c.Size() >= w.s.RotateBytes {
		if _, err := gc.c.Rotate(); err != nil {
			return fmt.Errorf("loadtest: node %d: %s: rotate: %w", w.node, gc.c.Pod, err)
		}
	}
	return nil
}

// message appends one message of a random kind (several for a stack
// trace) to w.buf and returns the number of lines.
func (w *NodeWriter) message(gc *genContainer, now time.Time) int {
	x := w.r.Float64()
	kind := kindText
	for k, c := range w.cum {
		if x < c {
			kind = lineKind(k)
			break
		}
	}
	switch kind {
	case kindJSON:
		seq := w.newLine(gc, kind)
		stream := w.jsonLine(seq)
		w.emit(gc, now, stream)
		return 1
	case kindStack:
		return w.stackTrace(gc, now)
	case kindLarge:
		seq := w.newLine(gc, kind)
		w.msg = appendMarker(w.msg[:0], w.node, seq)
		w.msg = append(w.msg, " payload dump "...)
		size := largeMin + w.r.IntN(largeMax-largeMin+1)
		off := w.r.IntN(len(w.filler) - largeMax)
		w.msg = append(w.msg, w.filler[off:off+size-len(w.msg)]...)
		w.emit(gc, now, "stdout")
		return 1
	case kindMalformed:
		seq := w.newLine(gc, kind)
		w.msg = append(w.msg[:0], "#%% malformed "...)
		w.msg = appendMarker(w.msg, w.node, seq)
		w.msg = append(w.msg, malformedTails[w.r.IntN(len(malformedTails))]...)
		w.emit(gc, now, "stdout")
		return 1
	default:
		seq := w.newLine(gc, kindText)
		stream := w.textLine(seq)
		w.emit(gc, now, stream)
		return 1
	}
}

// newLine takes the next seq for a line of gc.
func (w *NodeWriter) newLine(gc *genContainer, kind lineKind) int {
	seq := w.lines
	w.lines++
	w.kinds[kind]++
	if w.meta16 != nil {
		m := uint16(gc.tenant)
		if kind == kindMalformed {
			m |= deadBit16
		}
		w.meta16 = append(w.meta16, m)
	} else {
		m := uint8(gc.tenant)
		if kind == kindMalformed {
			m |= deadBit8
		}
		w.meta8 = append(w.meta8, m)
	}
	if seq%w.sampleEvery == 0 {
		w.sample = append(w.sample, seq)
	}
	return seq
}

// emit encodes w.msg as one message of gc (partial lines when it is
// longer than 16 KiB) into w.buf.
func (w *NodeWriter) emit(gc *genContainer, now time.Time, stream string) {
	w.buf = append(w.buf, gc.c.Encode(now, stream, string(w.msg))...)
}

var (
	httpPaths   = []string{"/cart", "/cart/items", "/checkout", "/products/42", "/products/search", "/login", "/healthz", "/orders/7781"}
	httpMethods = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	httpStatus  = []int{200, 200, 200, 200, 201, 204, 304, 400, 404, 500, 503}
	users       = []string{"u-7", "u-12", "u-42", "u-105", "u-230", "u-999"}
	dbTables    = []string{"orders", "carts", "products", "users", "payments"}
	errReasons  = []string{"card expired", "insufficient funds", "upstream timeout", "invalid coupon", "stock exhausted"}
	cacheKeys   = []string{"product:42", "cart:u-7", "session:9f3a", "price:sku-1234", "user:105"}
	// malformedTails follow a malformed line's marker: a truncated JSON
	// object, a binary-looking dump, half a line.
	malformedTails = []string{
		` {"level":"info","msg":"truncated`,
		` \x00\x1b[31mgarbage\x1b[0m ???`,
		` <<< partial write >>> level=`,
		` }}}{{{ not a log line`,
	}
)

const hexDigits = "0123456789abcdef"

// jsonLine builds an application JSON log line into w.msg and returns its
// stream. Every shape types its fields alike (status and duration_ms are
// integers, seq a string) so that dynamic mappings never conflict.
func (w *NodeWriter) jsonLine(seq int) (stream string) {
	r := w.r
	b := w.msg[:0]
	stream = "stdout"
	switch r.IntN(4) {
	case 0, 1: // a request
		status := httpStatus[r.IntN(len(httpStatus))]
		level := "info"
		if status >= 500 {
			level, stream = "error", "stderr"
		} else if status >= 400 {
			level = "warn"
		}
		b = append(b, `{"level":"`...)
		b = append(b, level...)
		b = append(b, `","msg":"request served","seq":"`...)
		b = appendMarker(b, w.node, seq)
		b = append(b, `","http":{"method":"`...)
		b = append(b, httpMethods[r.IntN(len(httpMethods))]...)
		b = append(b, `","status":`...)
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, `,"path":"`...)
		b = append(b, httpPaths[r.IntN(len(httpPaths))]...)
		b = append(b, `"},"duration_ms":`...)
		b = strconv.AppendInt(b, int64(r.IntN(250)), 10)
		b = append(b, `,"user":"`...)
		b = append(b, users[r.IntN(len(users))]...)
		b = append(b, `"}`...)
	case 2: // a cache lookup
		b = append(b, `{"level":"debug","msg":"cache lookup","seq":"`...)
		b = appendMarker(b, w.node, seq)
		b = append(b, `","cache":{"hit":`...)
		b = strconv.AppendBool(b, r.IntN(4) != 0)
		b = append(b, `,"key":"`...)
		b = append(b, cacheKeys[r.IntN(len(cacheKeys))]...)
		b = append(b, `"},"duration_ms":`...)
		b = strconv.AppendInt(b, int64(r.IntN(5)), 10)
		b = append(b, '}')
	default: // a slow query or a failed payment
		if r.IntN(2) == 0 {
			b = append(b, `{"level":"warn","msg":"slow query","seq":"`...)
			b = appendMarker(b, w.node, seq)
			b = append(b, `","db":{"table":"`...)
			b = append(b, dbTables[r.IntN(len(dbTables))]...)
			b = append(b, `","rows":`...)
			b = strconv.AppendInt(b, int64(r.IntN(5000)), 10)
			b = append(b, `},"duration_ms":`...)
			b = strconv.AppendInt(b, int64(500+r.IntN(3000)), 10)
			b = append(b, `,"trace_id":"`...)
			for x, i := r.Uint64(), 0; i < 16; i, x = i+1, x>>4 {
				b = append(b, hexDigits[x&15])
			}
			b = append(b, `"}`...)
		} else {
			stream = "stderr"
			b = append(b, `{"level":"error","msg":"payment declined","seq":"`...)
			b = appendMarker(b, w.node, seq)
			b = append(b, `","error":"`...)
			b = append(b, errReasons[r.IntN(len(errReasons))]...)
			b = append(b, `","http":{"method":"POST","status":402,"path":"/checkout"},"duration_ms":`...)
			b = strconv.AppendInt(b, int64(10+r.IntN(90)), 10)
			b = append(b, `,"user":"`...)
			b = append(b, users[r.IntN(len(users))]...)
			b = append(b, `"}`...)
		}
	}
	w.msg = b
	return stream
}

// textLine builds a plain text line, level first, into w.msg and returns
// its stream.
func (w *NodeWriter) textLine(seq int) (stream string) {
	r := w.r
	b := w.msg[:0]
	stream = "stdout"
	switch r.IntN(4) {
	case 0, 1: // "INFO GET /cart 200 12ms ltn0x5"
		status := httpStatus[r.IntN(len(httpStatus))]
		b = append(b, "INFO "...)
		if status >= 500 {
			b, stream = append(b[:0], "ERROR "...), "stderr"
		}
		b = append(b, httpMethods[r.IntN(len(httpMethods))]...)
		b = append(b, ' ')
		b = append(b, httpPaths[r.IntN(len(httpPaths))]...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(status), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(r.IntN(250)), 10)
		b = append(b, "ms "...)
		b = appendMarker(b, w.node, seq)
	case 2: // "WARN slow request ..."
		stream = "stderr"
		b = append(b, "WARN slow request path="...)
		b = append(b, httpPaths[r.IntN(len(httpPaths))]...)
		b = append(b, " took="...)
		b = strconv.AppendInt(b, int64(1000+r.IntN(4000)), 10)
		b = append(b, "ms "...)
		b = appendMarker(b, w.node, seq)
		b = append(b, " retrying"...)
	default: // "INFO cache refreshed ..."
		b = append(b, "INFO cache refreshed table="...)
		b = append(b, dbTables[r.IntN(len(dbTables))]...)
		b = append(b, " entries="...)
		b = strconv.AppendInt(b, int64(r.IntN(20000)), 10)
		b = append(b, ' ')
		b = appendMarker(b, w.node, seq)
	}
	w.msg = b
	return stream
}

var (
	exceptions = []string{
		"java.lang.IllegalStateException: cart is locked",
		"java.lang.NullPointerException: Cannot invoke \"Order.total()\" because \"order\" is null",
		"java.util.concurrent.TimeoutException: lock wait 500ms",
		"org.springframework.dao.DataAccessResourceFailureException: connection refused",
		"java.io.UncheckedIOException: broken pipe",
	}
	causes = []string{
		"java.net.SocketTimeoutException: Read timed out",
		"java.sql.SQLTransientConnectionException: pool exhausted",
		"java.io.IOException: Connection reset by peer",
	}
	frames = []string{
		"com.example.cart.CartService.update(CartService.java:118)",
		"com.example.cart.CartController.put(CartController.java:64)",
		"com.example.checkout.CheckoutService.pay(CheckoutService.java:212)",
		"com.example.payments.Gateway.charge(Gateway.java:87)",
		"com.example.db.LockManager.acquire(LockManager.java:37)",
		"org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
		"jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
		"org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:166)",
		"java.base/java.lang.Thread.run(Thread.java:1583)",
	}
)

// stackTrace appends a Java stack trace of gc, one message per line, each
// with its marker, on stderr, and returns its number of lines.
func (w *NodeWriter) stackTrace(gc *genContainer, now time.Time) int {
	r := w.r
	lines := 0
	line := func(prefix, text string) {
		seq := w.newLine(gc, kindStack)
		w.msg = append(append(append(w.msg[:0], prefix...), text...), ' ')
		w.msg = appendMarker(w.msg, w.node, seq)
		w.emit(gc, now, "stderr")
		lines++
	}
	atFrames := func(n int) {
		for range n {
			line("\tat ", frames[r.IntN(len(frames))])
		}
	}
	line("ERROR request failed: ", exceptions[r.IntN(len(exceptions))])
	atFrames(stackFramesMin + r.IntN(stackFramesMax-stackFramesMin+1))
	if r.IntN(causeOneIn) == 0 {
		line("Caused by: ", causes[r.IntN(len(causes))])
		atFrames(causeFramesMin + r.IntN(causeFramesMax-causeFramesMin+1))
	}
	return lines
}

// fillerText is the text large lines are cut from: words of a small
// vocabulary, in an order fixed for all runs, twice as long as the
// longest large line. None of its words holds "ltn".
var fillerText = sync.OnceValue(func() string {
	words := []string{
		"lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
		"sed", "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore",
		"magna", "aliqua", "sku-1234", "item=42", "qty=3", "price=12.50", "warehouse-7",
		"status=ok", "region=eu-west-1", "cache", "miss", "retry", "batch", "payload",
	}
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, 2*largeMax+16)
	for len(b) < 2*largeMax {
		b = append(b, words[r.IntN(len(words))]...)
		b = append(b, ' ')
	}
	return string(b)
})

// podHash is the random suffix of a pod name, from the alphabet Kubernetes
// uses for generated names: "5d8f7b9c4-x2x9z"-like.
func podHash(r *rand.Rand) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 0, 16)
	for i := range 15 {
		if i == 10 {
			b = append(b, '-')
			continue
		}
		b = append(b, alphabet[r.IntN(len(alphabet))])
	}
	return string(b)
}

// Close closes the containers' files. The log tree stays.
func (w *NodeWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return w.closeContainers()
}

func (w *NodeWriter) closeContainers() error {
	var errs []error
	for _, gc := range w.containers {
		errs = append(errs, gc.c.Close())
	}
	return errors.Join(errs...)
}
