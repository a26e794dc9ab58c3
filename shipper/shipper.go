package shipper

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	linger  time.Duration
	kcs     kubeAPI   // the API server, when a test gives one; otherwise the configuration's
	kube    *kubeMeta // the metadata cache; nil when off

	budget   *budget
	slots    *semaphore.Weighted // reader slots: each holds one read buffer
	sink     sink
	batchMax sync.Map // topic -> int32: producer batch size
	watch    *watcher
	readCtx  context.Context

	// rotations lists the rotations of a log file: listRotations, which a
	// test wraps to rotate the file in the middle of a look.
	rotations func(target string) ([]rotation, error)

	// Followers at work: a run goroutine each. stopping refuses new ones.
	runMu    sync.Mutex
	runs     sync.WaitGroup
	stopping bool

	// Descriptors: files held open, and the bound on them.
	fdsOpen   atomic.Int64
	fdLimit   int64
	fdMu      sync.Mutex
	fdWaiters []*follower // followers waiting for a descriptor, first come first served
	idleMu    sync.Mutex
	idleList  list.List // followers idle with files open, least recently active first

	onceMu   sync.Mutex
	onceErrs []error

	rescanNow   chan struct{}
	rescanTimer atomic.Bool

	mu        sync.Mutex
	followers map[string]*follower
	tenants   map[string]*tenant
	skipped   map[string]bool
	// resolveFails counts failed resolutions of links not started yet.
	resolveFails map[string]int
	// pending are saved positions of followers not started yet; they are
	// kept, and saved again, until their follower starts or their path is
	// confirmed gone.
	pending map[string]followerPosition
	// lastSaved is what the checkpoint file holds, to save only changes.
	lastSaved map[string]followerPosition
}

// idleEntry is a follower's place in the idle list.
type idleEntry struct{ e *list.Element }

// New checks cfg and prepares a shipper. It starts nothing and touches no
// file or network.
func New(cfg Config, o Options) (*Shipper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("shipper config: %w", err)
	}
	rules, _ := ParseTenantMap(cfg.TenantMap) // checked by Validate
	excludes, _ := ParseExclude(cfg.Exclude)
	o.Logger, o.Registerer, o.Ready = telemetry.StageDefaults(o.Logger, o.Registerer, o.Ready)
	if o.Version == "" {
		o.Version = "dev"
	}
	return &Shipper{
		cfg:       cfg,
		log:       o.Logger,
		reg:       o.Registerer,
		m:         newMetrics(o.Registerer),
		mapper:    NewTenantMapper(rules, excludes),
		topics:    kafka.Topics{Prefix: cfg.Kafka.TopicPrefix},
		node:      cfg.nodeName(),
		version:   o.Version,
		once:      o.Once,
		stdout:    o.Stdout,
		ready:     o.Ready,
		limiter:   telemetry.NewLimiter(30 * time.Second),
		linger:    min(cfg.PollInterval, 100*time.Millisecond),
		budget:    newBudget(cfg.MaxBufferedBytes, cfg.tenantMaxBuffered()),
		slots:     semaphore.NewWeighted(int64(max(4, 2*runtime.GOMAXPROCS(0)))),
		rotations: listRotations,
		fdLimit:   fileLimit(),
		rescanNow: make(chan struct{}, 1),
		followers: make(map[string]*follower),
		tenants:   make(map[string]*tenant),
		skipped:   make(map[string]bool),

		resolveFails: make(map[string]int),
	}, nil
}

// fileLimit is how many log files may be open at once: the process's
// descriptor limit less room for sockets, the watcher and checkpoints.
func fileLimit() int64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 20
	}
	n := int64(rl.Cur)
	return max(n-min(64, n/4), 8)
}

// Run ships until ctx is cancelled (or, in once mode, until every file is
// read and delivered). On cancellation it stops reading, waits up to
// SLUICE_SHIPPER_SHUTDOWN_TIMEOUT for the output to acknowledge what was
// read, saves checkpoints and returns nil. It returns an error when it
// cannot start, or, in once mode, when something could not be delivered.
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
	if err := store.save(sh.node, slices.Collect(maps.Values(saved))); err != nil {
		return fmt.Errorf("checkpoint dir %s is not writable: %w", sh.cfg.CheckpointDir, err)
	}
	sh.lastSaved = saved

	switch {
	case sh.sink != nil: // set by a test
	case sh.stdout != nil:
		sh.sink = newStdoutSink(sh.stdout)
	default:
		k, err := newKafkaSink(sh.cfg, sh.log, sh.reg, sh.m, sh.node, &sh.batchMax)
		if err != nil {
			return err
		}
		sh.sink = k
		// Routers older than this shipper find the schema versions it
		// writes there. Never waited for: a stuck topic must not keep the
		// shipper from shipping.
		kafka.PublishSchemasInBackground(ctx, k.cl, sh.cfg.Kafka.Topics(), sh.log)
	}
	defer sh.sink.close()

	// Reading stops when ctx ends; delivery and the final checkpoint get
	// their own deadline after that.
	readCtx, stopReading := context.WithCancel(context.Background())
	defer stopReading()
	stop := context.AfterFunc(ctx, stopReading)
	defer stop()
	sh.readCtx = readCtx

	if !sh.once {
		w, err := newWatcher(sh)
		if err != nil {
			sh.log.Warn("cannot watch files (inotify); polling every SLUICE_SHIPPER_POLL_INTERVAL instead", "err", err)
		} else {
			sh.watch = w
			defer w.close()
		}
	}

	if sh.cfg.kubernetesEnabled(sh.kcs != nil) {
		sh.startKube(readCtx)
	}

	sh.log.Info("shipper starting", "node", sh.node, "paths", sh.cfg.Paths, "output", sh.sink.name(),
		"checkpoints", len(saved), "once", sh.once, "watch", sh.watch != nil, "max_open_files", sh.fdLimit, "version", sh.version)
	// On a node's very first run the current files are read (from their
	// start, or with SLUICE_SHIPPER_READ_FROM=tail from their end); later,
	// a container seen for the first time has all its data unread, so its
	// rotations are read too.
	start := startRotations
	if firstRun {
		start = startHead
		if sh.cfg.ReadFrom == "tail" {
			start = startTail
		}
	}
	sh.mu.Lock()
	sh.pending = saved
	sh.mu.Unlock()
	sh.scan(start)
	sh.ready(true)
	defer sh.ready(false)

	var wg sync.WaitGroup
	if !sh.once {
		wg.Go(func() { sh.rescanLoop(readCtx) })
		wg.Go(func() { sh.pollLoop(readCtx) })
		if sh.watch != nil {
			wg.Go(func() { sh.watch.run(readCtx) })
		}
	}
	cpDone := make(chan struct{})
	cpCtx, stopCheckpoints := context.WithCancel(context.Background())
	go func() {
		defer close(cpDone)
		sh.checkpointLoop(cpCtx, store)
	}()

	var runErr error
	if sh.once {
		sh.waitFollowers(readCtx)
		stopReading()
		if err := sh.onceErr(); err != nil {
			runErr = fmt.Errorf("some records could not be delivered; the checkpoints stop before them, run again: %w", err)
		}
	} else {
		<-readCtx.Done()
		sh.log.Info("shipper stopping: reading stopped, delivering what was read", "timeout", sh.cfg.ShutdownTimeout)
	}
	wg.Wait()
	sh.stopRuns()

	flushCtx, cancel := context.WithTimeout(context.Background(), sh.cfg.ShutdownTimeout)
	ferr := sh.sink.flush(flushCtx)
	cancel()
	if ferr != nil {
		sh.log.Warn("not everything read was acknowledged before the deadline; it is shipped again after restart", "err", ferr)
	}
	stopCheckpoints()
	<-cpDone
	if err := sh.saveCheckpoints(store, true); err != nil {
		sh.log.Error("final checkpoint failed", "err", err)
	}
	sh.closeFollowers()
	sh.log.Info("shipper stopped")
	return runErr
}

// startRun accounts for a run goroutine about to start; it refuses once the
// shipper is stopping.
func (sh *Shipper) startRun(*follower) bool {
	sh.runMu.Lock()
	defer sh.runMu.Unlock()
	if sh.stopping {
		return false
	}
	sh.runs.Add(1)
	return true
}

func (sh *Shipper) runDone() { sh.runs.Done() }

// stopRuns refuses new run goroutines and waits for the running ones (they
// see the read context ended).
func (sh *Shipper) stopRuns() {
	sh.runMu.Lock()
	sh.stopping = true
	sh.runMu.Unlock()
	sh.runs.Wait()
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

// rescanLoop matches the globs every SLUICE_SHIPPER_RESCAN_INTERVAL, and at
// once when the watcher saw a file come or go in a glob's directory.
func (sh *Shipper) rescanLoop(ctx context.Context) {
	t := time.NewTicker(sh.cfg.RescanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-sh.rescanNow:
		}
		sh.scan(startRotations)
	}
}

// rescanSoon asks for a scan in half a second (once, however often it is
// asked meanwhile).
func (sh *Shipper) rescanSoon() {
	if sh.rescanTimer.CompareAndSwap(false, true) {
		time.AfterFunc(500*time.Millisecond, func() {
			sh.rescanTimer.Store(false)
			sh.requestRescan()
		})
	}
}

func (sh *Shipper) requestRescan() {
	select {
	case sh.rescanNow <- struct{}{}:
	default:
	}
}

// pollLoop wakes followers that are due for a poll: every follower now and then
// (a safety net beside the watcher), and followers whose directory is not
// watched every SLUICE_SHIPPER_POLL_INTERVAL, backing off while idle.
func (sh *Shipper) pollLoop(ctx context.Context) {
	every(ctx, sh.cfg.PollInterval, func() {
		now := time.Now().UnixNano()
		polled := 0
		for _, s := range sh.followerList() {
			if !s.watched.Load() {
				polled++
			}
			if next := s.nextPoll.Load(); next != 0 && now < next {
				continue
			}
			if !s.watched.Load() {
				s.follow()
			}
			s.nextPoll.Store(0)
			s.wake()
		}
		sh.m.filesPolled.Set(float64(polled))
	})
}

func (sh *Shipper) followerList() []*follower {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	out := make([]*follower, 0, len(sh.followers))
	for _, s := range sh.followers {
		out = append(out, s)
	}
	return out
}

// scan matches the globs and starts a follower for every new file. A follower
// whose path is no longer matched is marked gone only once its path is
// confirmed missing: a failed directory read (out of descriptors, say)
// proves nothing. start says where a follower without a checkpoint starts.
func (sh *Shipper) scan(start startMode) {
	seen := make(map[string]bool)
	complete := true
	for _, pattern := range sh.cfg.Paths {
		matches, err := globStrict(pattern)
		if err != nil {
			complete = false
			sh.m.openErrors.WithLabelValues(openErrorReason(err)).Inc()
			sh.logLimited("glob:"+pattern, "cannot list log files; will retry", "pattern", pattern, "err", err)
		}
		for _, path := range matches {
			if strings.HasSuffix(path, ".gz") {
				continue
			}
			seen[path] = true
			sh.mu.Lock()
			_, running := sh.followers[path]
			skipped := sh.skipped[path]
			sh.mu.Unlock()
			if running || skipped {
				continue
			}
			sh.start(path, start)
		}
	}
	for _, s := range sh.followerList() {
		if !seen[s.key] && !s.gone.Load() && confirmedGone(s.key) {
			s.gone.Store(true)
			s.wake()
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for path := range sh.skipped {
		if !seen[path] && (complete || confirmedGone(path)) {
			delete(sh.skipped, path)
		}
	}
	for path := range sh.pending {
		if !seen[path] && confirmedGone(path) {
			delete(sh.pending, path)
		}
	}
	for path := range sh.resolveFails {
		if !seen[path] && confirmedGone(path) {
			delete(sh.resolveFails, path)
		}
	}
}

// confirmedGone reports whether path certainly does not exist.
func confirmedGone(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// globStrict is filepath.Glob that reports the errors Glob ignores: a
// directory that cannot be read must not look like an empty one.
func globStrict(pattern string) ([]string, error) {
	dir, file := filepath.Split(pattern)
	dir = filepath.Clean(dir)
	dirs := []string{dir}
	if hasMeta(dir) {
		var err error
		if dirs, err = filepath.Glob(dir); err != nil {
			return nil, err
		}
	}
	var out []string
	var errs []error
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		for _, e := range entries {
			if ok, _ := filepath.Match(file, e.Name()); ok {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out, errors.Join(errs...)
}

func hasMeta(path string) bool { return strings.ContainsAny(path, `*?[\`) }

// start begins shipping one file, or records why it is skipped.
func (sh *Shipper) start(path string, start startMode) {
	skip := func(reason, msg string, args ...any) {
		sh.mu.Lock()
		sh.skipped[path] = true
		sh.mu.Unlock()
		sh.m.filesSkipped.WithLabelValues(reason).Inc()
		if msg != "" {
			sh.log.Warn(msg, append([]any{"path", path}, args...)...)
		}
	}
	meta, target, err := ResolveLogPath(path)
	if err != nil {
		if errors.Is(err, ErrUnknownLayout) {
			skip("layout", "file does not follow the kubelet log layout; not shipped", "err", err)
			return
		}
		// A link whose target is not there yet (or cannot be reached):
		// counted, and looked at again soon rather than at the next
		// rescan, for a few seconds; a link that stays dangling is left
		// to the rescans.
		sh.m.openErrors.WithLabelValues(openErrorReason(err)).Inc()
		sh.logLimited("resolve:"+path, "cannot resolve log file; will retry", "path", path, "err", err)
		sh.mu.Lock()
		sh.resolveFails[path]++
		soon := sh.resolveFails[path] <= 10
		sh.mu.Unlock()
		if soon {
			sh.rescanSoon()
		}
		return
	}
	sh.mu.Lock()
	delete(sh.resolveFails, path)
	sh.mu.Unlock()
	tenantName, ok, err := sh.tenantFor(meta.Namespace, meta.Pod)
	if err != nil && sh.kube != nil && sh.kube.namespace(meta.Namespace) == nil {
		// The namespace's tenant label may say: looked at again at the
		// next rescan, once the namespace is known.
		sh.logLimited("tenant:"+meta.Namespace, "no tenant for this namespace yet; waiting for its labels", "namespace", meta.Namespace, "err", err)
		return
	}
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
	t := sh.tenant(tenantName)
	s := &follower{
		sh:      sh,
		key:     path,
		meta:    meta,
		t:       t,
		recKey:  []byte(key),
		done:    make(chan struct{}),
		lineCap: sh.cfg.MaxLineBytes,
		retry:   backoffGate{max: sh.cfg.TenantRetryMax},
		start:   start,
		pollGap: sh.cfg.PollInterval,
		k8s: schemas.Kubernetes{
			NamespaceName: meta.Namespace,
			PodName:       meta.Pod,
			PodID:         meta.PodUID,
			ContainerName: meta.Container,
			DockerID:      meta.ContainerID,
			Host:          sh.node,
		},
	}
	s.k8s.CacheEncoding() // the same for every line until setMeta
	s.overhead = s.costBeyondMessage()
	if sh.kube != nil {
		s.metaState = metaWaiting
		s.metaSince = time.Now()
		s.metaWait.Store(true)
	}
	sh.mu.Lock()
	if p, ok := sh.pending[path]; ok {
		s.parked = &p
		delete(sh.pending, path)
	}
	if s.parked == nil {
		s.markStart(target)
	}
	sh.followers[path] = s
	sh.m.filesTracked.Set(float64(len(sh.followers)))
	sh.mu.Unlock()
	sh.log.Debug("tailing", "path", path, "tenant", tenantName, "topic", t.topic)
	s.wake()
}

// followerEnded forgets a follower that ended.
func (sh *Shipper) followerEnded(s *follower) {
	if sh.once && !s.gone.Load() {
		return // kept for the final checkpoint
	}
	sh.closeFollower(s)
}

// closeFollower forgets a follower that is gone and delivered.
func (sh *Shipper) closeFollower(s *follower) {
	sh.mu.Lock()
	if sh.followers[s.key] != s {
		sh.mu.Unlock()
		return
	}
	delete(sh.followers, s.key)
	sh.m.filesTracked.Set(float64(len(sh.followers)))
	sh.mu.Unlock()
	sh.notIdle(s)
	if sh.watch != nil {
		sh.watch.forget(s)
	}
	s.close()
}

// waitFollowers waits until every follower ended (once mode).
func (sh *Shipper) waitFollowers(ctx context.Context) {
	for _, s := range sh.followerList() {
		select {
		case <-s.done:
		case <-ctx.Done():
			return
		}
	}
}

// onceGiveUp records why a once-mode run cannot deliver everything.
func (sh *Shipper) onceGiveUp(err error) {
	sh.onceMu.Lock()
	defer sh.onceMu.Unlock()
	for _, e := range sh.onceErrs {
		if e.Error() == err.Error() {
			return
		}
	}
	sh.log.Error("giving up", "err", err)
	sh.onceErrs = append(sh.onceErrs, err)
}

func (sh *Shipper) onceErr() error {
	sh.onceMu.Lock()
	defer sh.onceMu.Unlock()
	return errors.Join(sh.onceErrs...)
}

func (sh *Shipper) closeFollowers() {
	for _, s := range sh.followerList() {
		s.close()
	}
}

// openFile opens a log file within the descriptor bound.
func (sh *Shipper) openFile(path string) (*tailFile, error) {
	if sh.fdsOpen.Add(1) > sh.fdLimit {
		sh.fdsOpen.Add(-1)
		return nil, fmt.Errorf("open %s: %w (%d open)", path, errNoFD, sh.fdLimit)
	}
	f, err := openTailFile(path)
	if err != nil {
		sh.fdsOpen.Add(-1)
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	sh.m.filesOpen.Set(float64(sh.fdsOpen.Load()))
	return f, nil
}

func (sh *Shipper) closeFiles(files ...*tailFile) {
	for _, f := range files {
		if f != nil && f.f != nil {
			f.close()
			f.f = nil
			sh.fileClosed()
		}
	}
}

func (sh *Shipper) fileClosed() {
	sh.m.filesOpen.Set(float64(sh.fdsOpen.Add(-1)))
	sh.fdMu.Lock()
	var next *follower
	if len(sh.fdWaiters) > 0 {
		next = sh.fdWaiters[0]
		sh.fdWaiters = sh.fdWaiters[1:]
	}
	sh.fdMu.Unlock()
	if next != nil {
		next.wake()
	}
}

// waitForFD queues s to be woken when a descriptor is freed.
func (sh *Shipper) waitForFD(s *follower) {
	sh.fdMu.Lock()
	defer sh.fdMu.Unlock()
	if !slices.Contains(sh.fdWaiters, s) {
		sh.fdWaiters = append(sh.fdWaiters, s)
	}
}

// fdsShort reports whether descriptors are running short: followers waiting
// for one, or three quarters in use. Idle followers then close their files
// as soon as they are idle.
func (sh *Shipper) fdsShort() bool {
	sh.fdMu.Lock()
	waiting := len(sh.fdWaiters) > 0
	sh.fdMu.Unlock()
	return waiting || sh.fdsOpen.Load() > sh.fdLimit*3/4
}

// idle records a follower that went idle with its files open; notIdle
// removes it. The list is in order of going idle, so its front is the
// follower idle the longest.
func (sh *Shipper) idle(s *follower) {
	sh.idleMu.Lock()
	defer sh.idleMu.Unlock()
	if s.idleElem.e != nil {
		sh.idleList.MoveToBack(s.idleElem.e)
		return
	}
	s.idleElem.e = sh.idleList.PushBack(idleFollower{s, time.Now()})
}

type idleFollower struct {
	s     *follower
	since time.Time
}

func (sh *Shipper) notIdle(s *follower) {
	sh.idleMu.Lock()
	defer sh.idleMu.Unlock()
	if s.idleElem.e != nil {
		sh.idleList.Remove(s.idleElem.e)
		s.idleElem.e = nil
	}
}

// evictIdle asks the n followers idle the longest to close their files.
func (sh *Shipper) evictIdle(n int) {
	sh.evictWhere(func(int, time.Time) bool { return n > 0 }, &n)
}

// evictInactive asks followers idle for longer than SLUICE_SHIPPER_CLOSE_INACTIVE
// to close their files.
func (sh *Shipper) evictInactive() {
	cutoff := time.Now().Add(-sh.cfg.CloseInactive)
	n := 0
	sh.evictWhere(func(_ int, since time.Time) bool { return since.Before(cutoff) }, &n)
}

func (sh *Shipper) evictWhere(want func(int, time.Time) bool, n *int) {
	var evict []*follower
	sh.idleMu.Lock()
	for e := sh.idleList.Front(); e != nil; {
		is := e.Value.(idleFollower)
		if !want(*n, is.since) {
			break
		}
		next := e.Next()
		sh.idleList.Remove(e)
		is.s.idleElem.e = nil
		evict = append(evict, is.s)
		*n--
		e = next
	}
	sh.idleMu.Unlock()
	for _, s := range evict {
		s.evict.Store(true)
		s.wake()
	}
}

// watchDir watches dir for s (the directory of its log file).
func (sh *Shipper) watchDir(dir string, s *follower) {
	if sh.watch == nil {
		return
	}
	s.watched.Store(sh.watch.add(dir, s))
}

func (sh *Shipper) setBatchMax(topic string, n int32) { sh.batchMax.Store(topic, n) }

// lost counts lines that could not be shipped.
func (sh *Shipper) lost(t *tenant, reason string, lines, bytes int64) {
	sh.m.lostLines.WithLabelValues(t.name, reason).Add(float64(lines))
	sh.m.lostBytes.WithLabelValues(t.name, reason).Add(float64(bytes))
}

// fileUnreadable reports a compressed rotation that ended early.
func (sh *Shipper) fileUnreadable(s *follower, f *tailFile, err error) {
	// The lines past the damage cannot be counted; the compressed bytes
	// left unread can.
	sh.m.damagedFiles.WithLabelValues(s.t.name).Inc()
	sh.m.lostBytes.WithLabelValues(s.t.name, "unreadable").Add(float64(f.gz.unread()))
	sh.log.Warn("compressed rotation cannot be read to its end; the rest of it is lost", "stream", s.key, "file", f.path, "err", err)
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
		if err := sh.saveCheckpoints(store, false); err != nil {
			sh.m.checkpointErrors.WithLabelValues("save").Inc()
			sh.logLimited("checkpoint", "saving checkpoints failed; will retry", "err", err)
		} else {
			last = time.Now()
		}
		sh.m.checkpointAge.Set(time.Since(last).Seconds())
		sh.enforceHeldFiles()
		sh.evictInactive()
	}
}

// saveCheckpoints writes the acknowledged position of every follower, when
// one changed (or always, with force), and updates the per-tenant gauges.
func (sh *Shipper) saveCheckpoints(store checkpointStore, force bool) error {
	sh.mu.Lock()
	followers := make([]*follower, 0, len(sh.followers))
	for _, st := range sh.followers {
		followers = append(followers, st)
	}
	positions := make(map[string]followerPosition, len(followers)+len(sh.pending))
	for k, p := range sh.pending {
		positions[k] = p
	}
	tenants := make([]*tenant, 0, len(sh.tenants))
	paused := 0
	for _, t := range sh.tenants {
		tenants = append(tenants, t)
		if t.gate.paused() {
			paused++
		}
	}
	sh.mu.Unlock()
	sh.m.tenantsPaused.Set(float64(paused))

	type usage struct {
		unshipped int64
		since     time.Time
	}
	use := make(map[*tenant]*usage, len(tenants))
	for _, t := range tenants {
		use[t] = &usage{}
	}
	now := time.Now()
	for _, st := range followers {
		p, t, unshipped, since, ok := st.position()
		if !ok {
			continue
		}
		positions[p.Key] = p
		u := use[t]
		if u == nil {
			u = &usage{}
			use[t] = u
		}
		u.unshipped += unshipped
		if !since.IsZero() && (u.since.IsZero() || since.Before(u.since)) {
			u.since = since
		}
	}
	for t, u := range use {
		sh.m.unshippedBytes.WithLabelValues(t.name).Set(float64(u.unshipped))
		age := 0.0
		if !u.since.IsZero() {
			age = now.Sub(u.since).Seconds()
		}
		sh.m.unshippedAge.WithLabelValues(t.name).Set(age)
		sh.m.bufferedBytes.WithLabelValues(t.name).Set(float64(t.share.usedSeen.Load()))
	}
	if !force && maps.Equal(positions, sh.lastSaved) {
		return nil
	}
	// What was acknowledged must be durable in the output before the
	// checkpoint says so (stdout is buffered; Kafka acknowledged already).
	if err := sh.sink.sync(); err != nil {
		return err
	}
	if err := store.save(sh.node, slices.Collect(maps.Values(positions))); err != nil {
		return err
	}
	sh.lastSaved = positions
	sh.m.checkpointSaveAt.SetToCurrentTime()
	sh.m.checkpointAge.Set(0)
	return nil
}

// heldFile is a deleted file a follower still holds open.
type heldFile struct {
	s     *follower
	f     *tailFile
	bytes int64
	since time.Time
}

// enforceHeldFiles applies SLUICE_SHIPPER_HELD_FILES_MAX_AGE and _MAX_BYTES
// to deleted files held open (rotations kubelet removed before they were
// read to their end, typically while a tenant is held back): the oldest are
// released first.
func (sh *Shipper) enforceHeldFiles() {
	now := time.Now()
	var held []heldFile
	var total int64
	for _, s := range sh.followerList() {
		for _, h := range s.heldFiles(now) {
			held = append(held, h)
			total += h.bytes
		}
	}
	slices.SortFunc(held, func(a, b heldFile) int { return a.since.Compare(b.since) })
	for _, h := range held {
		if now.Sub(h.since) <= sh.cfg.HeldFilesMaxAge && total <= sh.cfg.HeldFilesMaxBytes {
			break
		}
		h.s.mu.Lock()
		h.f.released = true
		h.s.mu.Unlock()
		total -= h.bytes
		h.s.release.Store(true)
		h.s.wake()
	}
	n := 0
	for _, h := range held {
		if !h.f.released {
			n++
		}
	}
	sh.m.heldFiles.Set(float64(n))
	sh.m.heldBytes.Set(float64(max(total, 0)))
}

func (sh *Shipper) logLimited(key, msg string, args ...any) {
	if suppressed, ok := sh.limiter.Allow(key); ok {
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		sh.log.Warn(msg, args...)
	}
}

// deleted reports whether an open file's last name was removed.
func deleted(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink == 0
}
