package shipper

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/schemas"
)

// Tenant isolation under a misbehaving neighbour: a healthy tenant writes
// lines at a steady rate next to a tenant whose records cannot be delivered,
// and every healthy line's delay from its write to its arrival in Kafka is
// measured. The tests assert completeness and a p99 bound; the benchmark
// reports the figures against the goal.

const (
	goodTopic  = "logs.raw.good"
	stuckTopic = "logs.raw.stuck"
	lostTopic  = "logs.raw.lost"

	goodRate   = 200              // lines per second
	goodWindow = 10 * time.Second // how long the healthy tenant writes
	// goodSettle is how long after the last healthy write the test waits
	// for lines still missing. It bounds the test, not the delay: a line
	// still missing then counts as never delivered.
	goodSettle = 15 * time.Second

	// isolationGoal is the delay the shipper aims at for a healthy tenant;
	// isolationBound is what the tests assert, with room for a loaded
	// 2-core machine under -race.
	isolationGoal  = time.Second
	isolationBound = 3 * time.Second
)

// isolationKind is the misbehaving neighbour of a scenario.
type isolationKind int

const (
	// isolationBaseline has no neighbour: the healthy tenant alone.
	isolationBaseline isolationKind = iota
	// isolationMissingTopic: tenant "lost", whose topic does not exist,
	// has 200,000 lines already written in four containers.
	isolationMissingTopic
	// isolationStuck: tenant "stuck" writes 2,000 lines/s alongside the
	// healthy tenant; the broker answers every produce to its topic with
	// NOT_ENOUGH_REPLICAS, forever.
	isolationStuck
	// isolationStuckBacklog: as isolationStuck, but the stuck tenant has
	// 60,000 lines already written (far more than any shared buffer holds)
	// before the healthy tenant starts.
	isolationStuckBacklog
	// isolationUnanswered: as isolationStuck, but the broker leading the
	// stuck tenant's partitions never answers a produce request (a hung
	// or unreachable leader); the healthy tenant's partitions are led by
	// the other broker.
	isolationUnanswered
)

func (k isolationKind) String() string {
	return [...]string{"baseline", "missing-topic", "stuck-partition", "stuck-backlog", "unanswered"}[k]
}

// isolationResult is what one run measured for the healthy tenant.
type isolationResult struct {
	written    int
	missing    int // lines that never arrived before the measurement ended
	duplicates int // extra copies of lines that arrived
	// delays holds one delay per written line, sorted. A line that never
	// arrived counts with the time it had waited when the measurement
	// ended: a lower bound.
	delays []time.Duration
	// stuckRefused counts produce requests the broker refused or held for
	// the stuck tenant (stuck scenarios only).
	stuckRefused int
}

func (r isolationResult) percentile(q float64) time.Duration {
	if len(r.delays) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(r.delays)))) - 1
	return r.delays[min(max(i, 0), len(r.delays)-1)]
}

func (r isolationResult) String() string {
	return fmt.Sprintf("%d healthy lines written, %d delivered (%d never, %d duplicates); write-to-Kafka delay p50 %v p99 %v max %v (goal %v)",
		r.written, r.written-r.missing, r.missing, r.duplicates,
		r.percentile(0.50).Round(time.Millisecond), r.percentile(0.99).Round(time.Millisecond),
		r.percentile(1).Round(time.Millisecond), isolationGoal)
}

// check fails tb unless every healthy line arrived and the p99 delay is
// within isolationBound.
func (r isolationResult) check(tb testing.TB) {
	tb.Helper()
	tb.Log(r)
	if r.missing > 0 {
		tb.Errorf("%d of %d healthy lines never reached Kafka (waited %v after the last write)", r.missing, r.written, goodSettle)
	}
	if p99 := r.percentile(0.99); p99 > isolationBound {
		tb.Errorf("healthy tenant's p99 write-to-Kafka delay is %v, over the %v bound (goal %v)", p99.Round(time.Millisecond), isolationBound, isolationGoal)
	}
}

// arrivals records when each healthy line is first seen in Kafka.
type arrivals struct {
	mu      sync.Mutex
	at      map[int]time.Time // sequence number -> first arrival
	written map[int]time.Time // sequence number -> write time, from the message
	dups    int
	bad     []string
}

// consumeArrivals reads topic from its start in the background until the
// returned stop is called (stop is idempotent and also runs at cleanup).
// A record's arrival is when the consumer receives it, so the delay
// measured is write to Kafka plus the consumer's (short) fetch wait.
func consumeArrivals(tb testing.TB, brokers []string, topic string) (*arrivals, func()) {
	tb.Helper()
	cl := rawConsumer(tb, brokers, topic)
	a := &arrivals{at: make(map[int]time.Time), written: make(map[int]time.Time)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		dec := schemas.NewDecoder()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				rec, _, err := dec.Decode(ctx, r.Value)
				if err != nil {
					a.note(fmt.Sprintf("undecodable record at %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err))
					return
				}
				seq, wrote, ok := parseProbe(rec.Log)
				if !ok {
					a.note(fmt.Sprintf("record without a write time: %.80q", rec.Log))
					return
				}
				a.mu.Lock()
				if _, seen := a.at[seq]; seen {
					a.dups++
				} else {
					a.at[seq] = now
					a.written[seq] = wrote
				}
				a.mu.Unlock()
			})
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			cl.Close()
		})
	}
	tb.Cleanup(stop)
	return a, stop
}

func (a *arrivals) note(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.bad) < 10 {
		a.bad = append(a.bad, s)
	}
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// probeMessage is a healthy line: its sequence number, its write time in
// Unix nanoseconds, padding to about 120 bytes.
func probeMessage(seq int, wrote time.Time) string {
	m := fmt.Sprintf("good#%d %d ", seq, wrote.UnixNano())
	return m + strings.Repeat("x", max(120-len(m), 0))
}

func parseProbe(msg string) (seq int, wrote time.Time, ok bool) {
	name, seq, ok := seqOf(msg)
	if !ok || name != "good" {
		return 0, time.Time{}, false
	}
	f := strings.Fields(msg)
	if len(f) < 2 {
		return 0, time.Time{}, false
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, time.Time{}, false
	}
	return seq, time.Unix(0, ns), true
}

// writeBacklog writes n lines of about size bytes to c in large chunks.
func writeBacklog(tb testing.TB, c *nodelog.Container, name string, n, size int) {
	tb.Helper()
	ts := time.Now()
	buf := make([]byte, 0, 1<<20)
	for i := range n {
		buf = append(buf, c.Encode(ts, "stdout", message(name, i, size))...)
		if len(buf) > 1<<20-4096 || i == n-1 {
			if err := c.WriteRaw(buf); err != nil {
				tb.Fatal(err)
			}
			buf = buf[:0]
		}
	}
}

// runIsolation runs one scenario and measures the healthy tenant. It stops
// everything it started before returning, so that benchmark iterations do
// not overlap.
func runIsolation(tb testing.TB, kind isolationKind) isolationResult {
	tb.Helper()
	var cluster *kfake.Cluster
	switch kind {
	case isolationStuck, isolationStuckBacklog:
		cluster = newCluster(tb, goodTopic, stuckTopic)
	case isolationUnanswered:
		cluster = newSplitCluster(tb)
	default:
		cluster = newCluster(tb, goodTopic)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	// Every produce to the stuck tenant's topic, on every partition, is
	// answered NOT_ENOUGH_REPLICAS: retriable, so a producer retries it for
	// as long as it is allowed to. The fault answers only those partitions:
	// the healthy topic's partitions in the same produce request go
	// through kfake's real produce path.
	var refused *kfake.FaultHandle
	if kind == isolationStuck || kind == isolationStuckBacklog {
		refused = cluster.Fault(kfake.Fault{
			Keys:  []kmsg.Key{kmsg.Produce},
			Topic: stuckTopic,
			Err:   kerr.NotEnoughReplicas,
			Count: -1,
		})
	}
	// Every produce request that reaches the stuck tenant's broker is held
	// unanswered until the scenario ends. The control passes every other
	// produce request on to kfake's real produce path.
	var held atomic.Int64
	if kind == isolationUnanswered {
		release := make(chan struct{})
		defer close(release) // before cluster.Close, which also wakes what sleeps
		cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			if cluster.CurrentNode() != unansweredNode {
				return nil, nil, false
			}
			cluster.KeepControl()
			held.Add(1)
			cluster.SleepControl(func() { <-release })
			return nil, nil, true // handled, and no response is ever written
		})
	}

	node := &nodelog.Node{Root: tb.TempDir()}
	addContainer := func(ns, pod string) *nodelog.Container {
		c, err := node.AddContainer(ns, pod, "app", nodelog.CRI)
		if err != nil {
			tb.Fatal(err)
		}
		return c
	}
	good := []*nodelog.Container{addContainer("good", "web-0"), addContainer("good", "web-1")}
	var stuck []*nodelog.Container
	switch kind {
	case isolationMissingTopic:
		for i := range 4 {
			writeBacklog(tb, addContainer("lost", fmt.Sprintf("batch-%d", i)), fmt.Sprintf("lost-%d", i), 50_000, 100)
		}
	case isolationStuck, isolationUnanswered:
		stuck = []*nodelog.Container{addContainer("stuck", "api-0"), addContainer("stuck", "api-1")}
	case isolationStuckBacklog:
		for i := range 2 {
			writeBacklog(tb, addContainer("stuck", fmt.Sprintf("api-%d", i)), fmt.Sprintf("stuck-%d", i), 30_000, 150)
		}
	}

	cfg := testConfig(tb, node, brokers, map[string]string{
		"SLUICE_SHIPPER_SHUTDOWN_TIMEOUT": "3s", // what is stuck is not delivered at shutdown either
		// A record unacknowledged for 2s is failed and retried with
		// backoff: the tests see the retries within their run.
		"SLUICE_SHIPPER_DELIVERY_TIMEOUT": "2s",
	})
	if _, bench := tb.(*testing.B); bench {
		// The benchmark reports the figure of a shipper at its defaults:
		// only where to read, write and save, and a short shutdown (which
		// does not change what is measured).
		cfg = defaultConfig(tb, node, brokers)
		cfg.ShutdownTimeout = 3 * time.Second
	}
	arr, stopConsumer := consumeArrivals(tb, brokers, goodTopic)
	defer stopConsumer()
	r := startShipper(tb, cfg, Options{})
	defer r.stop(tb)

	start := time.Now()
	windowEnd := start.Add(goodWindow)
	var wg sync.WaitGroup
	var stuckWritten atomic.Int64
	for i, c := range stuck {
		// 1,000 lines/s per container, 20 lines every 20ms.
		wg.Go(func() {
			name := fmt.Sprintf("stuck-%d", i)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for n := 0; time.Now().Before(windowEnd); {
				var buf []byte
				for range 20 {
					buf = append(buf, c.Encode(time.Now(), "stdout", message(name, n, 150))...)
					n++
				}
				if err := c.WriteRaw(buf); err != nil {
					tb.Error(err)
					return
				}
				stuckWritten.Add(20)
				<-tick.C
			}
		})
	}

	// The healthy tenant: goodRate lines/s for goodWindow, alternating
	// between its two containers, each line written at its own time.
	total := int(goodWindow.Seconds() * goodRate)
	interval := time.Second / goodRate
	for seq := range total {
		if d := time.Until(start.Add(time.Duration(seq) * interval)); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		if err := good[seq%len(good)].Write(now, "stdout", probeMessage(seq, now)); err != nil {
			tb.Fatal(err)
		}
	}
	lastWrite := time.Now()
	wg.Wait()

	for deadline := lastWrite.Add(goodSettle); arr.count() < total && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	end := time.Now()
	stopConsumer()

	res := isolationResult{written: total}
	arr.mu.Lock()
	for _, s := range arr.bad {
		tb.Error(s)
	}
	res.duplicates = arr.dups
	// Write times come from the messages; a line that never arrived has
	// its write time estimated from the schedule (never later than its
	// real write), so its delay is a lower bound.
	for seq := range total {
		at, ok := arr.at[seq]
		switch {
		case ok:
			res.delays = append(res.delays, at.Sub(arr.written[seq]))
		default:
			res.missing++
			res.delays = append(res.delays, end.Sub(start.Add(time.Duration(seq)*interval)))
		}
	}
	arr.mu.Unlock()
	slices.Sort(res.delays)

	switch {
	case refused != nil:
		res.stuckRefused = refused.Hits()
	case kind == isolationUnanswered:
		res.stuckRefused = int(held.Load())
	}
	switch kind {
	case isolationMissingTopic:
		checkTopicMissing(tb, brokers, lostTopic)
	case isolationStuck, isolationStuckBacklog, isolationUnanswered:
		checkStuckHeldBack(tb, brokers, res.stuckRefused, stuckWritten.Load())
	}
	return res
}

// unansweredNode is the broker of newSplitCluster that leads the stuck
// tenant's partitions; node 0 leads the healthy tenant's.
const unansweredNode = 1

// newSplitCluster is an in-process Kafka of two brokers with the healthy
// tenant's topic led by node 0 and the stuck tenant's by node 1.
func newSplitCluster(tb testing.TB) *kfake.Cluster {
	tb.Helper()
	const partitions = 3
	c := kafkatest.Cluster(tb, kafkatest.With(kfake.NumBrokers(2)), kafkatest.Topics(partitions, goodTopic, stuckTopic))
	for p := range int32(partitions) {
		if err := c.MoveTopicPartition(goodTopic, p, 1-unansweredNode); err != nil {
			tb.Fatal(err)
		}
		if err := c.MoveTopicPartition(stuckTopic, p, unansweredNode); err != nil {
			tb.Fatal(err)
		}
	}
	return c
}

// checkTopicMissing checks that the missing tenant's topic is still missing
// (nothing created it on the way), so that the scenario tested what it
// claims.
func checkTopicMissing(tb testing.TB, brokers []string, topic string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(kafkatest.ClientAt(tb, brokers)).ListTopics(ctx)
	if err != nil {
		tb.Errorf("list topics: %v", err)
		return
	}
	if topics.Has(topic) {
		tb.Errorf("topic %s exists: the missing-topic tenant was not missing its topic (the test did not test)", topic)
	}
}

// checkStuckHeldBack checks that the scenario tested what it claims: the
// shipper did try the stuck tenant's topic, and none of its records got
// through.
func checkStuckHeldBack(tb testing.TB, brokers []string, refused int, written int64) {
	tb.Helper()
	if refused == 0 {
		tb.Errorf("no produce request to %s was refused or held: the stuck tenant was never tried (the test did not test)", stuckTopic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(kafkatest.ClientAt(tb, brokers)).ListEndOffsets(ctx, stuckTopic)
	if err != nil {
		tb.Errorf("end offsets of %s: %v", stuckTopic, err)
		return
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			tb.Errorf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		} else if o.Offset != 0 {
			tb.Errorf("%s/%d holds %d records: the fault let the stuck tenant through", o.Topic, o.Partition, o.Offset)
		}
	})
	if testing.Verbose() {
		tb.Logf("stuck tenant: %d produce requests refused or held; %d lines written during the window", refused, written)
	}
}

// TestTenantIsolationMissingTopic: tenant "lost" has 200,000 lines waiting
// and no topic; tenant "good" writes 200 lines/s for 10s. Every healthy
// line arrives, with a p99 delay within isolationBound.
func TestTenantIsolationMissingTopic(t *testing.T) {
	runIsolation(t, isolationMissingTopic).check(t)
}

// TestTenantIsolationStuckPartition: the broker never acknowledges tenant
// "stuck" (NOT_ENOUGH_REPLICAS on every produce to its topic, forever)
// while it writes 2,000 lines/s next to tenant "good" at 200 lines/s.
// Every healthy line arrives, with a p99 delay within isolationBound.
func TestTenantIsolationStuckPartition(t *testing.T) {
	runIsolation(t, isolationStuck).check(t)
}

// TestTenantIsolationUnansweredPartition: the broker leading tenant
// "stuck" never answers its produce requests while it writes 2,000 lines/s;
// tenant "good", led by the other broker, writes 200 lines/s. Every healthy
// line arrives, with a p99 delay within isolationBound.
func TestTenantIsolationUnansweredPartition(t *testing.T) {
	runIsolation(t, isolationUnanswered).check(t)
}

// TestTenantIsolationStuckBacklog: as TestTenantIsolationStuckPartition,
// but the stuck tenant has 60,000 lines already written, enough to fill
// any shared buffer, before the healthy tenant starts.
func TestTenantIsolationStuckBacklog(t *testing.T) {
	runIsolation(t, isolationStuckBacklog).check(t)
}

// BenchmarkTenantIsolation runs each scenario once per iteration and
// reports the healthy tenant's write-to-Kafka delay (p50, p99, max, in ms,
// over every line of every iteration) against the 1s goal, and how many
// healthy lines never arrived. A line that never arrived counts with the
// time it had waited when its iteration ended. "baseline" is the healthy
// tenant alone, for comparison.
//
//	go test -run '^$' -bench TenantIsolation ./shipper/
func BenchmarkTenantIsolation(b *testing.B) {
	for _, kind := range []isolationKind{isolationBaseline, isolationMissingTopic, isolationStuck, isolationStuckBacklog, isolationUnanswered} {
		b.Run(kind.String(), func(b *testing.B) {
			var all isolationResult
			for range b.N {
				r := runIsolation(b, kind)
				all.written += r.written
				all.missing += r.missing
				all.duplicates += r.duplicates
				all.delays = append(all.delays, r.delays...)
			}
			slices.Sort(all.delays)
			b.Log(all)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(all.percentile(0.50)), "p50-ms")
			b.ReportMetric(ms(all.percentile(0.99)), "p99-ms")
			b.ReportMetric(ms(all.percentile(1)), "max-ms")
			b.ReportMetric(float64(all.missing)/float64(max(all.written, 1)), "undelivered-frac")
		})
	}
}
