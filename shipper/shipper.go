package shipper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/schemas"
)

// Options are the shipper's collaborators and modes, set by the command.
type Options struct {
	// Logger receives lifecycle events; nil discards them.
	Logger *slog.Logger
	// Registerer receives the shipper's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Stdout, when set, replaces Kafka: each record is written to it as one
	// JSON object per line (--output stdout).
	Stdout io.Writer
	// Once reads every matched file to its end, waits for every
	// acknowledgement, saves checkpoints and returns (--once).
	Once bool
	// Version is written into every record's source.shipper.
	Version string
	// Ready, when set, is called with true once the shipper is reading and
	// with false when it stops.
	Ready func(bool)
}

// Shipper tails container log files on one node and produces every line to
// its tenant's raw topic. See the package documentation.
type Shipper struct {
	cfg     Config
	log     *slog.Logger
	reg     prometheus.Registerer
	m       *metrics
	mapper  *TenantMapper
	topics  kafka.Topics
	node    string
	version string
	once    bool
	stdout  io.Writer
	ready   func(bool)
	limiter *telemetry.Limiter

	budget *semaphore.Weighted
	sink   sink

	onceFailed atomic.Bool // once mode: a record failed and was not sent again

	mu      sync.Mutex
	streams map[string]*stream
	gates   map[string]*backoffGate
	skipped map[string]bool
	// pending are saved positions of streams not started yet (their path
	// did not resolve or open on the first try); they are kept, and saved
	// again, until their stream starts or their path disappears.
	pending map[string]streamPosition
}

// New checks cfg and prepares a shipper. It starts nothing and touches no
// file or network.
func New(cfg Config, o Options) (*Shipper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("shipper config: %w", err)
	}
	rules, _ := ParseTenantMap(cfg.TenantMap) // checked by Validate
	excludes, _ := ParseExclude(cfg.Exclude)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Ready == nil {
		o.Ready = func(bool) {}
	}
	return &Shipper{
		cfg:     cfg,
		log:     o.Logger,
		reg:     o.Registerer,
		m:       newMetrics(o.Registerer),
		mapper:  NewTenantMapper(rules, excludes),
		topics:  kafka.Topics{Prefix: cfg.Kafka.TopicPrefix},
		node:    cfg.nodeName(),
		version: o.Version,
		once:    o.Once,
		stdout:  o.Stdout,
		ready:   o.Ready,
		limiter: telemetry.NewLimiter(30 * time.Second),
		budget:  semaphore.NewWeighted(cfg.MaxBufferedBytes),
		streams: make(map[string]*stream),
		gates:   make(map[string]*backoffGate),
		skipped: make(map[string]bool),
	}, nil
}

// Run ships until ctx is cancelled (or, in once mode, until every file is
// read and delivered). On cancellation it stops reading, waits up to
// SLUICE_SHIPPER_SHUTDOWN_TIMEOUT for the output to acknowledge what was
// read, saves checkpoints and returns nil. It returns an error only when it
// cannot start.
func (sh *Shipper) Run(ctx context.Context) error {
	store := checkpointStore{dir: sh.cfg.CheckpointDir}
	_, statErr := os.Stat(store.path())
	_, prevErr := os.Stat(store.path() + ".prev")
	firstRun := statErr != nil && prevErr != nil // no checkpoint was ever saved here
	saved, err := store.load()
	if err != nil {
		firstRun = false
		sh.m.checkpointErrors.WithLabelValues("corrupt").Inc()
		sh.log.Error("checkpoint unusable; continuing without skipping unread data", "dir", sh.cfg.CheckpointDir, "err", err)
	}
	if err := store.save(sh.node, mapValues(saved)); err != nil {
		return fmt.Errorf("checkpoint dir %s is not writable: %w", sh.cfg.CheckpointDir, err)
	}

	switch {
	case sh.sink != nil: // set by a test
	case sh.stdout != nil:
		sh.sink = newStdoutSink(sh.stdout)
	default:
		k, err := newKafkaSink(sh.cfg, sh.log, sh.reg)
		if err != nil {
			return err
		}
		sh.sink = k
	}
	defer sh.sink.close()

	// Reading stops when ctx ends; delivery and the final checkpoint get
	// their own deadline after that.
	readCtx, stopReading := context.WithCancel(context.Background())
	defer stopReading()
	stop := context.AfterFunc(ctx, stopReading)
	defer stop()

	sh.log.Info("shipper starting", "node", sh.node, "paths", sh.cfg.Paths, "output", sh.sink.name(),
		"checkpoints", len(saved), "once", sh.once, "version", sh.version)
	// On a node's very first run only the current files are read; later,
	// a container seen for the first time has all its data unread, so its
	// uncompressed rotations are read too.
	sh.mu.Lock()
	sh.pending = saved
	sh.mu.Unlock()
	sh.scan(readCtx, !firstRun)
	sh.ready(true)
	defer sh.ready(false)

	var wg sync.WaitGroup
	if !sh.once {
		wg.Go(func() { sh.rescanLoop(readCtx) })
		wg.Go(func() { sh.followLoop(readCtx) })
	}
	cpDone := make(chan struct{})
	cpCtx, stopCheckpoints := context.WithCancel(context.Background())
	go func() {
		defer close(cpDone)
		sh.checkpointLoop(cpCtx, store)
	}()

	var runErr error
	if sh.once {
		sh.waitStreams()
		stopReading()
		if sh.onceFailed.Load() {
			runErr = errors.New("some records could not be delivered (see the log); the checkpoints stop before them, run again")
		}
	} else {
		<-readCtx.Done()
		sh.log.Info("shipper stopping: reading stopped, delivering what was read", "timeout", sh.cfg.ShutdownTimeout)
	}
	wg.Wait()
	sh.waitStreams()

	flushCtx, cancel := context.WithTimeout(context.Background(), sh.cfg.ShutdownTimeout)
	ferr := sh.sink.flush(flushCtx)
	cancel()
	if ferr != nil {
		sh.log.Warn("not everything read was acknowledged before the deadline; it is shipped again after restart", "err", ferr)
	}
	stopCheckpoints()
	<-cpDone
	if err := sh.saveCheckpoints(store); err != nil {
		sh.log.Error("final checkpoint failed", "err", err)
	}
	sh.closeStreams()
	sh.log.Info("shipper stopped")
	return runErr
}

func mapValues(m map[string]streamPosition) []streamPosition {
	out := make([]streamPosition, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

func (sh *Shipper) rescanLoop(ctx context.Context) {
	every(ctx, sh.cfg.RescanInterval, func() { sh.scan(ctx, true) })
}

// followLoop opens new rotations of every stream as they appear, whether or
// not its reader is busy (see stream.follow).
func (sh *Shipper) followLoop(ctx context.Context) {
	every(ctx, sh.cfg.PollInterval, func() {
		sh.mu.Lock()
		streams := make([]*stream, 0, len(sh.streams))
		for _, st := range sh.streams {
			streams = append(streams, st)
		}
		sh.mu.Unlock()
		for _, st := range streams {
			st.follow()
		}
	})
}

// scan matches the globs, starts a stream for every new file and marks
// streams whose path disappeared. withRotated says whether a stream without
// a checkpoint starts at its oldest uncompressed rotation rather than at its
// current file.
func (sh *Shipper) scan(ctx context.Context, withRotated bool) {
	seen := make(map[string]bool)
	for _, pattern := range sh.cfg.Paths {
		matches, _ := filepath.Glob(pattern) // patterns are checked by Validate
		for _, path := range matches {
			if strings.HasSuffix(path, ".gz") {
				continue
			}
			seen[path] = true
			sh.mu.Lock()
			_, running := sh.streams[path]
			skipped := sh.skipped[path]
			sh.mu.Unlock()
			if running || skipped {
				continue
			}
			sh.start(ctx, path, withRotated)
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for path, st := range sh.streams {
		if !seen[path] {
			st.gone.Store(true)
		}
	}
	for path := range sh.skipped {
		if !seen[path] {
			delete(sh.skipped, path)
		}
	}
	for path := range sh.pending {
		if !seen[path] {
			delete(sh.pending, path)
		}
	}
}

// start begins shipping one file, or records why it is skipped.
func (sh *Shipper) start(ctx context.Context, path string, withRotated bool) {
	skip := func(reason, msg string, args ...any) {
		sh.mu.Lock()
		sh.skipped[path] = true
		sh.mu.Unlock()
		sh.m.filesSkipped.WithLabelValues(reason).Inc()
		if msg != "" {
			sh.log.Warn(msg, append([]any{"path", path}, args...)...)
		}
	}
	meta, _, err := ResolveLogPath(path)
	if err != nil {
		if errors.Is(err, ErrUnknownLayout) {
			skip("layout", "file does not follow the kubelet log layout; not shipped", "err", err)
		} else {
			sh.logLimited("resolve:"+path, "cannot resolve log file; will retry", "path", path, "err", err)
		}
		return
	}
	tenant, ok, err := sh.mapper.Tenant(meta.Namespace, meta.Pod)
	if err != nil {
		skip("tenant", "no valid tenant for this namespace; not shipped (add a SLUICE_SHIPPER_TENANT_MAP rule)", "namespace", meta.Namespace, "err", err)
		return
	}
	if !ok {
		skip("excluded", "")
		return
	}
	key := meta.ContainerID
	if key == "" {
		key = meta.PodUID + "/" + meta.Container
	}
	// What a record costs beyond its message: the metadata it carries
	// (the source path twice over: link and target are of a size), the
	// key, the fixed fields.
	overhead := recordOverhead + 2*len(path) + len(key) + len(tenant) + len(sh.node) + len(sh.version) +
		len(meta.Namespace) + len(meta.Pod) + len(meta.PodUID) + len(meta.Container) + len(meta.ContainerID)
	st := &stream{
		sh:       sh,
		key:      path,
		meta:     meta,
		tenant:   tenant,
		topic:    sh.topics.Raw(tenant),
		gate:     sh.gate(tenant),
		recKey:   []byte(key),
		done:     make(chan struct{}),
		lineCap:  sh.cfg.MaxLineBytes,
		c:        sh.counters(tenant),
		overhead: int64(overhead),
		retry:    backoffGate{max: sh.cfg.TenantRetryMax},
		k8s: schemas.Kubernetes{
			NamespaceName: meta.Namespace,
			PodName:       meta.Pod,
			PodID:         meta.PodUID,
			ContainerName: meta.Container,
			DockerID:      meta.ContainerID,
			Host:          sh.node,
		},
	}
	sh.mu.Lock()
	var cp *streamPosition
	if p, ok := sh.pending[path]; ok {
		cp = &p
	}
	sh.mu.Unlock()
	if err := st.open(cp, withRotated); err != nil {
		sh.logLimited("open:"+path, "cannot open log file; will retry", "path", path, "err", err)
		return
	}
	sh.mu.Lock()
	delete(sh.pending, path)
	sh.streams[path] = st
	sh.m.filesTracked.Set(float64(len(sh.streams)))
	sh.mu.Unlock()
	sh.log.Debug("tailing", "path", path, "tenant", tenant, "topic", st.topic)
	go func() {
		st.run(ctx)
		if st.gone.Load() && ctx.Err() == nil {
			// Fully delivered and gone: forget it.
			st.close()
			sh.mu.Lock()
			delete(sh.streams, path)
			sh.m.filesTracked.Set(float64(len(sh.streams)))
			sh.mu.Unlock()
		}
	}()
}

// waitStreams waits until every stream's reader has returned.
func (sh *Shipper) waitStreams() {
	sh.mu.Lock()
	dones := make([]chan struct{}, 0, len(sh.streams))
	for _, st := range sh.streams {
		dones = append(dones, st.done)
	}
	sh.mu.Unlock()
	for _, d := range dones {
		<-d
	}
}

func (sh *Shipper) closeStreams() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, st := range sh.streams {
		st.close()
	}
}

func (sh *Shipper) checkpointLoop(ctx context.Context, store checkpointStore) {
	t := time.NewTicker(sh.cfg.CheckpointInterval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := sh.saveCheckpoints(store); err != nil {
			sh.m.checkpointErrors.WithLabelValues("save").Inc()
			sh.logLimited("checkpoint", "saving checkpoints failed; will retry", "err", err)
		} else {
			last = time.Now()
		}
		sh.m.checkpointAge.Set(time.Since(last).Seconds())
	}
}

// saveCheckpoints writes the acknowledged position of every stream.
func (sh *Shipper) saveCheckpoints(store checkpointStore) error {
	sh.mu.Lock()
	streams := make([]*stream, 0, len(sh.streams))
	for _, st := range sh.streams {
		streams = append(streams, st)
	}
	positions := make([]streamPosition, 0, len(streams)+len(sh.pending))
	for _, p := range sh.pending {
		positions = append(positions, p)
	}
	paused := 0
	for _, g := range sh.gates {
		if g.paused() {
			paused++
		}
	}
	sh.mu.Unlock()
	sh.m.tenantsPaused.Set(float64(paused))

	var unshipped int64
	for _, st := range streams {
		p, u := st.position()
		positions = append(positions, p)
		unshipped += u
	}
	sh.m.unshippedBytes.Set(float64(unshipped))
	// What was acknowledged must be durable in the output before the
	// checkpoint says so (stdout is buffered; Kafka acknowledged already).
	if err := sh.sink.sync(); err != nil {
		return err
	}
	if err := store.save(sh.node, positions); err != nil {
		return err
	}
	sh.m.checkpointSaveAt.SetToCurrentTime()
	sh.m.checkpointAge.Set(0)
	return nil
}

// acquire takes cost bytes of the buffer budget, blocking (in FIFO order,
// so a chatty container cannot starve the others) until they are free.
func (sh *Shipper) acquire(ctx context.Context, cost int64) error {
	if err := sh.budget.Acquire(ctx, cost); err != nil {
		return err
	}
	sh.m.bufferedBytes.Add(float64(cost))
	return nil
}

func (sh *Shipper) release(cost int64) {
	sh.budget.Release(cost)
	sh.m.bufferedBytes.Sub(float64(cost))
}

func (sh *Shipper) logLimited(key, msg string, args ...any) {
	if suppressed, ok := sh.limiter.Allow(key); ok {
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		sh.log.Warn(msg, args...)
	}
}

// tenantCounters are one tenant's counters, looked up once per stream.
type tenantCounters struct {
	lines, bytes, produced prometheus.Counter
}

func (sh *Shipper) counters(tenant string) tenantCounters {
	return tenantCounters{
		lines:    sh.m.linesRead.WithLabelValues(tenant),
		bytes:    sh.m.bytesRead.WithLabelValues(tenant),
		produced: sh.m.recordsProduced.WithLabelValues(tenant),
	}
}

func (sh *Shipper) gate(tenant string) *backoffGate {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g, ok := sh.gates[tenant]
	if !ok {
		g = &backoffGate{max: sh.cfg.TenantRetryMax}
		sh.gates[tenant] = g
	}
	return g
}
