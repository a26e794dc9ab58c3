package shipper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicelogs/sluice/schemas"
)

// A follower follows the log of one container: the file a
// /var/log/containers entry points at, and the files it was rotated to.
//
// Scheduling. A follower has no goroutine of its own while it has nothing to
// do: wake starts one (run), which reads what there is and returns when the
// follower is idle again. Wakes come from the file watcher (a write, create or
// rename in the file's directory), from the poller (a slow safety check, or
// the only check where the directory cannot be watched), from timers the
// follower sets for itself (a partial message's quiet period, a backoff), and
// from acknowledgements it waits for. So an idle container costs no
// goroutine, no timer and no read buffer.
//
// Positions and acknowledgement. Every record is queued with the position
// just after its last byte. Acknowledgements advance the watermark over the
// longest acknowledged prefix of the queue, so the watermark is the first
// byte not yet delivered. The checkpoint is the watermark, or the start of a
// partial message still being joined if that is earlier. When a record
// fails, the follower waits for everything in flight, rewinds to its
// checkpoint and reads again: lines may be sent twice (with the same record
// id) but never skipped.
type follower struct {
	sh         *Shipper
	key        string // the matched path
	meta       PathMeta
	t          *tenant // written by run with mu held: others read it with mu
	k8s        schemas.Kubernetes
	recKey     []byte
	overhead   int64       // what a record costs beyond its message: its metadata, encoded, and the output's per-record memory
	retry      backoffGate // this follower's own delivery failures (timeouts, unexpected errors)
	start      startMode   // where a follower without a checkpoint starts
	startInode uint64      // without a checkpoint: the file the scan found (with startTail, tailAt is its end then)
	tailAt     int64
	done       chan struct{}

	state       atomic.Int32 // runIdle, runRunning, runWoken, runEnded
	gone        atomic.Bool  // the matched path was removed
	evict       atomic.Bool  // asked to close its files (descriptor pressure, inactivity)
	release     atomic.Bool  // the held-files policy released one of its files
	lingerUntil atomic.Int64 // unix ns: watcher wakes before it wait for it
	lingerArmed atomic.Bool
	nextPoll    atomic.Int64 // unix ns of the next poll
	watched     atomic.Bool  // its directory is watched
	idleElem    idleEntry    // place in the shipper's idle list, guarded by sh.idleMu

	timerMu sync.Mutex
	timer   *time.Timer
	timerAt time.Time

	// Reader state, owned by run.
	cur         int // index in files of the file being read
	rb          []byte
	rbStart     int
	rbEnd       int
	rbOff       int64 // file offset of rb[rbStart]
	overlong    *overlongLine
	groups      [2]*group // partial messages being joined: stdout, stderr
	credit      int64     // budget bytes held for the next lines
	lineNeed    int64     // the budget of the line being handled (taken from credit)
	needCredit  int64     // budget the next line waits for
	probing     bool      // sending a probe: one record, then wait for its result
	probeSent   bool
	lastData    time.Time     // when a read last found data
	tailPending bool          // the newest file ends in a line without its newline
	pollGap     time.Duration // between polls of a follower whose directory is not watched
	foundData   bool          // a read found data since the follower last went idle
	openFails   int
	lineCap     int
	rec         schemas.Record // reused for every record
	idBuf       [32]byte

	// Kubernetes metadata (see kube.go), owned by run.
	metaState metaState
	metaSince time.Time   // when the follower began waiting for its pod
	metaGen   uint64      // the cache's generation last looked at
	metaFlag  string      // Record.Metadata: "" or schemas.MetadataPartial
	switchTo  string      // the tenant the next lines go to, when not t's
	metaWait  atomic.Bool // waiting for its pod: the cache wakes it when it changes

	openMu sync.Mutex // serializes opening files (follow, open) and close
	closed bool       // guarded by openMu

	mu        sync.Mutex // guards what follows
	files     []*tailFile
	parked    *followerPosition // where to resume while files is nil
	nextSeq   int
	q         []ackEntry // records in flight, in produce order
	qHead     int
	qBase     uint64 // sequence number of q[0]
	seq       uint64 // next sequence number
	inflight  int
	watermark position
	groupAt   [2]*position // start of each pending partial message
	failed    error
	wantAck   bool      // woken when nothing is in flight any more
	behind    time.Time // since when the follower has had unshipped bytes (zero: none)
	lastAck   time.Time // when position() last saw acks grow
	acks      uint64    // records acknowledged
	acksSeen  uint64    // acks at lastAck
}

const (
	runIdle int32 = iota
	runRunning
	runWoken // woken while running: run again
	runEnded
)

// startMode says where a follower without a checkpoint starts.
type startMode int

const (
	startHead      startMode = iota // the current file from its start
	startRotations                  // the oldest rotation, plain or compressed, then the rest
	startTail                       // the end of the current file
)

// position is a byte offset in one of a follower's files.
type position struct {
	f   *tailFile
	off int64
}

func (p position) before(q position) bool {
	if p.f.seq != q.f.seq {
		return p.f.seq < q.f.seq
	}
	return p.off < q.off
}

type ackEntry struct {
	start, end position
	state      uint8 // 0 in flight, 1 delivered (or given up), 2 failed
}

// group is a message being joined from partial lines.
type group struct {
	start     position
	time      time.Time
	stream    string
	format    string
	buf       []byte
	size      int64
	parts     int
	truncated bool
	charge    int64 // budget held for buf
}

// overlongLine is a physical line longer than the read buffer can grow to:
// its head is kept, the rest is counted and skipped.
type overlongLine struct {
	off   int64
	head  []byte
	extra int64
}

const (
	readBufSize = 64 << 10
	batchLines  = 4096 // lines read in one turn before other followers get theirs
	// recordOverhead approximates what a record costs in memory beyond its
	// message and metadata strings: the encoded fixed fields, the pooled
	// kgo.Record, the queue entry.
	recordOverhead = 384
	// safetyPoll is how often a watched, idle file is checked anyway.
	safetyPoll = 10 * time.Second
	// rotateGrace is how long a renamed file is still read after the file
	// that replaced it appeared: the runtime may write to it for a moment.
	rotateGrace = 200 * time.Millisecond
)

var readBufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// errNoFD says a file could not be opened for want of a descriptor.
var errNoFD = errors.New("no file descriptor available")

// maxPhysLine is the longest physical line kept in the buffer; docker
// json-file escaping can make a line several times longer than its message.
func (s *follower) maxPhysLine() int { return maxPhysLine(s.sh.cfg.MaxLineBytes) }

func maxPhysLine(maxLine int) int { return max(2*maxLine, readBufSize) + 4096 }

// wake makes the follower look at its files: it starts run unless it is
// running, in which case run goes round once more.
func (s *follower) wake() {
	for {
		switch st := s.state.Load(); st {
		case runIdle:
			if !s.sh.startRun(s) {
				return
			}
			if s.state.CompareAndSwap(runIdle, runRunning) {
				go s.run()
				return
			}
			s.sh.runDone()
		case runRunning:
			if s.state.CompareAndSwap(runRunning, runWoken) {
				return
			}
		default: // woken already, or ended
			return
		}
	}
}

// notify is the watcher's wake: right after a read that found data, wakes
// wait for the linger period, so that a busy file is read in batches rather
// than once per write.
func (s *follower) notify() {
	if until := s.lingerUntil.Load(); until != 0 {
		if d := time.Duration(until - time.Now().UnixNano()); d > 0 {
			if s.lingerArmed.CompareAndSwap(false, true) {
				time.AfterFunc(d, func() {
					s.lingerArmed.Store(false)
					s.wake()
				})
			}
			return
		}
	}
	s.wake()
}

// wakeAt wakes the follower at t (or earlier, if already due sooner).
func (s *follower) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	d := time.Until(t)
	if d <= 0 {
		s.wake()
		return
	}
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if s.timer != nil && !s.timerAt.IsZero() && !t.Before(s.timerAt) {
		return // an earlier wake is set
	}
	s.timerAt = t
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.timerFired)
		return
	}
	s.timer.Reset(d)
}

func (s *follower) timerFired() {
	s.timerMu.Lock()
	s.timerAt = time.Time{}
	s.timerMu.Unlock()
	s.wake()
}

// run works until the follower is idle, then returns; a wake during the work
// makes it go round again.
func (s *follower) run() {
	defer s.sh.runDone()
	s.sh.notIdle(s)
	for {
		ended := s.step(s.sh.readCtx)
		if ended {
			s.end()
			return
		}
		// Done while still the follower's only goroutine: once the state is
		// idle, a wake may start another.
		s.wentIdle()
		if s.state.CompareAndSwap(runRunning, runIdle) {
			return
		}
		s.state.Store(runRunning) // woken meanwhile
		s.sh.notIdle(s)
	}
}

// end marks the follower finished: gone and delivered, or, in once mode, read
// to its end and delivered.
func (s *follower) end() {
	s.state.Store(runEnded)
	s.t.gate.drop(s)
	s.releaseCredit(0)
	s.sh.followerEnded(s)
	close(s.done)
}

// wentIdle records an idle follower: its next poll, its place among idle
// followers whose descriptors may be taken back, and its unused budget.
func (s *follower) wentIdle() {
	keep := int64(0)
	if s.overlong != nil {
		keep = int64(len(s.overlong.head)) + s.overhead
	}
	s.releaseCredit(keep)
	now := time.Now()
	switch {
	case s.watched.Load():
		s.nextPoll.Store(now.Add(safetyPoll).UnixNano())
	default:
		// Polled: every SLUICE_SHIPPER_POLL_INTERVAL while data comes,
		// backing off to 8x while it does not.
		if s.foundData {
			s.pollGap = s.sh.cfg.PollInterval
		} else {
			s.pollGap = min(2*s.pollGap, 8*s.sh.cfg.PollInterval)
		}
		s.nextPoll.Store(now.Add(s.pollGap).UnixNano())
	}
	s.foundData = false
	s.mu.Lock()
	open := s.files != nil
	s.mu.Unlock()
	if !open {
		return
	}
	if s.sh.fdsShort() && s.park() {
		return // descriptors are short: an idle file gives its back at once
	}
	s.sh.idle(s)
}

func (s *follower) releaseCredit(keep int64) {
	if s.credit > keep {
		s.t.share.release(s.credit - keep)
		s.credit = keep
	}
}

// step does what there is to do. It reports true when the follower ended.
func (s *follower) step(ctx context.Context) bool {
	for ctx.Err() == nil {
		if err := s.failure(); err != nil {
			if !s.idleForAcks() {
				return false // the last acknowledgement wakes the follower
			}
			s.recover(err)
			continue
		}
		if s.probing {
			if !s.idleForAcks() {
				return false
			}
			s.probing, s.probeSent = false, false
			continue // the probe's result is known: look at the gates again
		}
		if s.release.Swap(false) {
			s.releaseFiles()
		}
		if s.sh.kube != nil {
			if until := s.refreshMeta(); !until.IsZero() {
				s.wakeAt(until) // or the cache wakes it when its pod comes
				return false
			}
			if s.switchTo != "" {
				if switched, wait := s.switchTenant(); wait {
					return false // the last acknowledgement wakes the follower
				} else if switched {
					continue
				}
			}
		}
		if s.evict.Swap(false) && s.park() {
			return false
		}
		if !s.isOpen() {
			if s.gone.Load() {
				s.sh.log.Info("log file removed before it could be opened; nothing of it was read", "stream", s.key)
				return true
			}
			if err := s.open(); err != nil {
				if s.sh.once {
					s.sh.onceGiveUp(fmt.Errorf("stream %s: %w", s.key, err))
					return true
				}
				s.openFailed(err)
				return false
			}
			s.openFails = 0
		}
		if !s.t.isReady() {
			s.t.whenReady(s)
			return false
		}
		if s.needCredit > 0 {
			if err := s.t.share.acquire(ctx, s.needCredit-s.credit); err != nil {
				return false
			}
			s.credit, s.needCredit = s.needCredit, 0
		}
		if s.atNewestEnd() && !s.gone.Load() && s.quietCheck() {
			// Nothing new since the last read, and no rotation: no reader
			// slot or buffer was needed to find out.
			if ended, idle := s.atEnd(ctx, 0); ended || idle {
				return ended
			}
			continue
		}
		if err := s.sh.slots.Acquire(ctx, 1); err != nil {
			return false
		}
		n, stop, err := s.readSome(false)
		s.dropBuffer()
		s.sh.slots.Release(1)
		if err != nil {
			s.sh.logLimited("read:"+s.key, "read failed; retrying", "stream", s.key, "err", err)
			s.wakeAt(time.Now().Add(s.sh.cfg.PollInterval))
			return false
		}
		if n > 0 {
			s.lastData = time.Now()
			s.foundData = true
		}
		switch stop {
		case stopBatch, stopBudget, stopProbe:
			continue
		case stopGate:
			return s.heldBack()
		}
		// The end of the file being read.
		if next := s.fileAfterCur(); next != nil {
			if wait := rotateGrace - time.Since(next.opened); wait > 0 {
				s.wakeAt(time.Now().Add(wait))
				return false
			}
			if !s.finishFile() {
				continue // waiting for budget or the gate
			}
			s.mu.Lock()
			s.cur++
			s.rbOff = 0
			s.mu.Unlock()
			s.compact()
			continue
		}
		s.compact()
		switch s.check() {
		case fileRotated:
			if !s.follow() {
				return false
			}
			continue
		case fileTruncated:
			// Truncated in place (copytruncate), or replaced on the same
			// inode: what was not read yet is gone; the new content is read
			// from its start. The old handle shows the new content too.
			s.sh.m.rotations.WithLabelValues("truncate").Inc()
			if !s.flushGroups(ctx) {
				return false
			}
			s.overlong, s.tailPending = nil, false
			s.openMu.Lock()
			appended := s.openNext(false)
			s.openMu.Unlock()
			if appended {
				s.mu.Lock()
				s.cur = len(s.files) - 1
				s.rbOff = 0
				s.mu.Unlock()
			}
			continue
		}
		if ended, idle := s.atEnd(ctx, n); ended || idle {
			return ended
		}
	}
	return false
}

// atEnd handles the end of the newest file; n is how many lines the last
// read found. It reports whether the follower ended, or is idle (woken by an
// event, a timer or an acknowledgement); neither means more to do now.
func (s *follower) atEnd(ctx context.Context, n int) (ended, idle bool) {
	if s.gone.Load() {
		// The container is gone: ship what is left, wait for delivery.
		if !s.finishFile() || !s.flushGroups(ctx) {
			return false, false // held back: the next round waits for budget or the gate
		}
		if !s.idleForAcks() {
			return false, true
		}
		return s.failure() == nil, false
	}
	if s.sh.once {
		// Read to the end: done once everything is delivered. A message
		// whose end has not come stays for the next run.
		if !s.idleForAcks() {
			return false, true
		}
		return s.failure() == nil, false
	}
	if s.tailPending || s.groups[0] != nil || s.groups[1] != nil || s.overlong != nil {
		// A message whose end has not come: shipped as it is, flagged
		// partial, once the file has been quiet for the flush timeout.
		due := s.lastData.Add(s.sh.cfg.PartialFlushTimeout)
		if time.Now().Before(due) {
			s.wakeAt(due)
			return false, true
		}
		s.sh.m.partialFlushes.WithLabelValues(s.t.name).Inc()
		s.finishFile()
		s.flushGroups(ctx)
		return false, false // look again: the flush moved the position
	}
	if n > 0 {
		// A busy file: let writes gather before the next read.
		s.lingerUntil.Store(time.Now().Add(s.sh.linger).UnixNano())
	}
	return false, true
}

// heldBack is called when the tenant's or the follower's gate held a line
// back; the gate wakes the follower. In once mode, a tenant whose topic stays
// missing or denied ends the run with an error. It reports whether the
// follower ended.
func (s *follower) heldBack() bool {
	if s.sh.once {
		if d := s.t.gate.failingFor(); d > s.sh.cfg.TenantRetryMax {
			s.sh.onceGiveUp(fmt.Errorf("topic %s: %w", s.t.topic, s.t.lastErr()))
			return true
		}
		s.wakeAt(time.Now().Add(s.sh.cfg.TenantRetryMax / 4))
	}
	return false
}

// idleForAcks reports whether nothing is in flight; when something is, the
// last acknowledgement wakes the follower.
func (s *follower) idleForAcks() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight == 0 {
		s.wantAck = false
		return true
	}
	s.wantAck = true
	return false
}

func (s *follower) openFailed(err error) {
	s.openFails++
	reason := openErrorReason(err)
	s.sh.m.openErrors.WithLabelValues(reason).Inc()
	if reason == "fd_limit" {
		// Out of descriptors: wait in line for one, and ask the follower
		// idle the longest to give its back. The timer is a safety net.
		s.sh.logLimited("open:fd_limit", "out of file descriptors; idle files are closed to make room, waiting streams are served in turn",
			"open", s.sh.fdsOpen.Load(), "limit", s.sh.fdLimit, "err", err)
		s.sh.waitForFD(s)
		s.sh.evictIdle(1)
		s.wakeAt(time.Now().Add(time.Second))
		return
	}
	// 100ms doubling to 10s: a rotation racing the open resolves at once,
	// a missing permission takes longer.
	d := min(100*time.Millisecond<<min(s.openFails-1, 7), 10*time.Second)
	s.sh.logLimited("open:"+s.key, "cannot open log file; will retry", "stream", s.key, "reason", reason, "retry_in", d, "err", err)
	s.wakeAt(time.Now().Add(d))
}

func openErrorReason(err error) string {
	switch {
	case errors.Is(err, errNoFD), errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "fd_limit"
	case errors.Is(err, os.ErrNotExist):
		return "not_found"
	case errors.Is(err, os.ErrPermission):
		return "permission"
	default:
		return "other"
	}
}

func (s *follower) isOpen() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files != nil
}

// open opens the follower's files from its parked position (or, without one,
// as its start mode says).
func (s *follower) open() error {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	s.mu.Lock()
	cp := s.parked
	s.mu.Unlock()
	files, off, err := s.locate(cp)
	if err != nil {
		return err
	}
	for i, f := range files {
		f.seq = i
		s.fingerprint(f)
	}
	s.mu.Lock()
	s.files = files
	s.nextSeq = len(files)
	s.cur = 0
	s.rbOff = off
	s.watermark = position{files[0], off}
	s.parked = nil
	s.mu.Unlock()
	s.tailPending = false
	return nil
}

// locate finds the files to read from position cp on: the file cp names,
// found by identity among the current file and its rotations (plain or
// compressed), then every rotation after it and the current file.
func (s *follower) locate(cp *followerPosition) ([]*tailFile, int64, error) {
	target, err := filepath.EvalSymlinks(s.key)
	if err != nil {
		return nil, 0, fmt.Errorf("resolve %s: %w", s.key, err)
	}
	s.sh.watchDir(filepath.Dir(target), s)
	cur, err := s.sh.openFile(target)
	if err != nil {
		return nil, 0, err
	}
	if cp == nil {
		return s.locateNew(target, cur)
	}
	if cur.matches(cp.fileIdentity) {
		off := cp.Offset
		if cur.size.Load() < off {
			off = 0 // truncated while we were away
		}
		return []*tailFile{cur}, off, nil
	}
	rots, err := s.sh.rotations(target)
	if err != nil {
		cur.close()
		s.sh.fileClosed()
		return nil, 0, fmt.Errorf("list rotations of %s: %w", target, err)
	}
	rots = olderThan(rots, cur)
	for i, r := range rots {
		if !r.gz && r.inode != cp.Inode {
			continue
		}
		f, err := s.sh.openFile(r.path)
		if err != nil {
			s.sh.closeFiles(cur)
			return nil, 0, err
		}
		if !f.matches(cp.fileIdentity) {
			s.sh.closeFiles(f)
			continue
		}
		files, err := s.openAll(rots[i+1:], f)
		if err != nil {
			s.sh.closeFiles(cur)
			return nil, 0, err
		}
		files = append(files, cur)
		s.sh.log.Info("resuming a rotated file", "stream", s.key, "file", r.path, "offset", cp.Offset, "files", len(files))
		return files, cp.Offset, nil
	}
	// The checkpointed file is gone: deleted (beyond the rotations kubelet
	// keeps) before it could be read. Which rotations came after it cannot
	// be told, so all of them are read: a line read twice keeps its record
	// id and is harmless downstream, a line skipped is lost.
	s.sh.m.checkpointMisses.WithLabelValues(s.t.name).Inc()
	lostBytes := max(cp.Size-cp.Offset, 0) // at least: the file may have grown after it was last seen
	s.sh.lost(s.t, "deleted", 0, lostBytes)
	s.sh.log.Warn("checkpointed file is gone (deleted before it was read to its end); its unread lines are lost, the remaining rotations are read again",
		"stream", s.key, "file", cp.Path, "offset", cp.Offset, "unread_bytes_at_least", lostBytes)
	files, err := s.openAll(rots, nil)
	if err != nil {
		s.sh.closeFiles(cur)
		return nil, 0, err
	}
	return append(files, cur), 0, nil
}

// markStart fixes where a follower without a checkpoint starts, as the scan
// finds its file: the file itself, because kubelet may rotate it before the
// follower opens it (a new follower first waits for its pod's metadata), and
// then its lines are in the rotation; and, when the follower starts at the
// end of its file (SLUICE_SHIPPER_READ_FROM=tail, or a file older than
// SLUICE_SHIPPER_IGNORE_OLDER), that end, so that lines written between
// the scan and the open are not skipped.
func (s *follower) markStart(target string) {
	fi, err := os.Stat(target)
	if err != nil {
		return
	}
	if s.sh.cfg.IgnoreOlder > 0 && time.Since(fi.ModTime()) > s.sh.cfg.IgnoreOlder {
		s.sh.m.filesSkipped.WithLabelValues("older").Inc()
		s.start = startTail
	}
	_, s.startInode, _ = statIdentity(fi)
	s.tailAt = fi.Size()
}

// locateNew opens the files of a follower seen for the first time.
func (s *follower) locateNew(target string, cur *tailFile) ([]*tailFile, int64, error) {
	off := int64(0)
	if s.start == startTail && s.startInode != 0 {
		off = s.tailAt
	}
	if s.start != startRotations && (s.startInode == 0 || cur.id.Inode == s.startInode) {
		if cur.size.Load() < off {
			off = 0 // truncated since
		}
		return []*tailFile{cur}, off, nil
	}
	rots, err := s.sh.rotations(target)
	if err != nil {
		s.sh.closeFiles(cur)
		return nil, 0, fmt.Errorf("list rotations of %s: %w", target, err)
	}
	rots = olderThan(rots, cur)
	if s.start != startRotations {
		// The file the scan found was rotated before it was opened: it is
		// read from where it was to be read, then every rotation after it.
		// Gone already (or compressed, which takes a second rotation), it
		// cannot be told among the rotations: the current file is read.
		i := slices.IndexFunc(rots, func(r rotation) bool { return !r.gz && r.inode == s.startInode })
		if i < 0 {
			return []*tailFile{cur}, 0, nil
		}
		rots = rots[i:]
	}
	files, err := s.openAll(rots, nil)
	if err != nil {
		s.sh.closeFiles(cur)
		return nil, 0, err
	}
	if len(files) > 0 && files[0].size.Load() < off {
		off = 0 // truncated since
	}
	return append(files, cur), off, nil
}

// openAll opens rotations after first (which is already open, or nil). A
// failure closes everything: the caller retries rather than skip a file.
func (s *follower) openAll(rots []rotation, first *tailFile) ([]*tailFile, error) {
	var files []*tailFile
	if first != nil {
		files = append(files, first)
	}
	for _, r := range rots {
		f, err := s.sh.openFile(r.path)
		if err != nil {
			s.sh.closeFiles(files...)
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// park closes the files of an idle follower and keeps its position; the next
// wake opens them again. It reports whether it did.
func (s *follower) park() bool {
	if s.overlong != nil || s.groups[0] != nil || s.groups[1] != nil || s.tailPending || s.gone.Load() {
		return false
	}
	s.openMu.Lock()
	defer s.openMu.Unlock()
	s.mu.Lock()
	if s.files == nil || s.inflight > 0 || s.failed != nil || s.cur != len(s.files)-1 {
		s.mu.Unlock()
		return false
	}
	cp := s.checkpointLocked()
	if cp.f.idPrefix == nil {
		s.mu.Unlock()
		return false // nothing identifies the file yet
	}
	pos := followerPosition{Key: s.key, Path: cp.f.path, fileIdentity: cp.f.id, Offset: cp.off, Size: max(cp.f.size.Load(), cp.off)}
	files := s.files
	s.files, s.parked = nil, &pos
	s.watermark = position{}
	s.mu.Unlock()
	s.sh.closeFiles(files...)
	return true
}

// fingerprint computes t's fingerprint once its first line is complete. It
// reports whether the fingerprint is known. It updates t.id under s.mu
// because checkpoints read it.
func (s *follower) fingerprint(t *tailFile) bool {
	if t.idPrefix != nil {
		return true
	}
	n, fp, err := readFingerprint(t, t.final())
	if err != nil || n == 0 {
		return false
	}
	s.setFingerprint(t, n, fp)
	return true
}

// setFingerprint records t's fingerprint and the record-id prefix. The id
// hashes node, container, fingerprint and offset; not the inode, so that a
// line read from a rotation after kubelet compressed it keeps the id it had
// when read from the plain file.
func (s *follower) setFingerprint(t *tailFile, n int, fp uint64) {
	node := s.sh.node
	p := make([]byte, 0, len(node)+1+len(s.recKey)+1+8)
	p = append(p, node...)
	p = append(p, 0)
	p = append(p, s.recKey...)
	p = append(p, 0)
	p = binary.BigEndian.AppendUint64(p, fp)
	s.mu.Lock()
	t.id.FPLen, t.id.FP = n, fp
	t.idPrefix = p
	s.mu.Unlock()
}

// recordID is the deterministic id of the line starting at p: 128 bits of
// SHA-256 over (node, container, fingerprint, offset), hex. The string
// aliases s.idBuf and is valid until the next call.
func (s *follower) recordID(p position) string {
	var buf [512]byte // node names are at most 253 bytes, keys ~100: no allocation
	in := append(append(buf[:0], p.f.idPrefix...), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint64(in[len(in)-8:], uint64(p.off))
	sum := sha256.Sum256(in)
	hex.Encode(s.idBuf[:], sum[:16])
	return unsafe.String(&s.idBuf[0], len(s.idBuf))
}

// curFile is the file being read.
func (s *follower) curFile() *tailFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[s.cur]
}

type fileState int

const (
	fileUnchanged fileState = iota
	fileRotated
	fileTruncated
	fileMissing
)

// fileAfterCur is the file after the one being read, or nil.
func (s *follower) fileAfterCur() *tailFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur < len(s.files)-1 {
		return s.files[s.cur+1]
	}
	return nil
}

// newest is the newest open file. The follower may append files at any
// time, so s.files is read under s.mu.
func (s *follower) newest() *tailFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[len(s.files)-1]
}

// atNewestEnd reports whether the reader is at the last known size of the
// newest file with nothing pending in between.
func (s *follower) atNewestEnd() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	size := s.files[s.cur].size.Load()
	return s.cur == len(s.files)-1 && s.rbOff >= size && size >= 0
}

// quietCheck looks at the newest file without reading it. It reports true
// when nothing changed (the follower is at the end), false when there is
// something to read or a rotation or truncation to handle.
func (s *follower) quietCheck() bool {
	f := s.curFile()
	fi, err := f.f.Stat()
	if err != nil {
		return false
	}
	if fi.Size() != f.size.Load() || fi.Size() != s.rbOff {
		s.setSize(f, fi.Size())
		return false
	}
	pfi, err := os.Stat(s.key)
	if err != nil {
		return true // gone or racing a rotation: the scan or the next event decides
	}
	if _, ino, _ := statIdentity(pfi); ino != f.id.Inode {
		return false
	}
	return true
}

func (s *follower) setSize(f *tailFile, n int64) { f.size.Store(n) }

// follow opens the files kubelet rotated to since the last look, as soon as
// they appear: held open, they stay readable when kubelet later compresses
// or deletes them, however long a backlog takes to read. The watcher calls
// it when a file is created or renamed in the follower's directory, also
// while the reader is held back; the reader calls it at the end of its
// newest file. It reports whether the file the path points at is open now
// (false: the caller waits for the next wake).
func (s *follower) follow() bool {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.closed {
		return false
	}
	s.mu.Lock()
	if s.files == nil {
		s.mu.Unlock()
		return false
	}
	newest := s.files[len(s.files)-1]
	s.mu.Unlock()
	fi, err := os.Stat(s.key)
	if err != nil {
		return false // between rename and reopen: the create wakes the follower
	}
	if _, ino, _ := statIdentity(fi); ino == newest.id.Inode {
		return true
	}
	if !s.openNext(true) {
		return false // a file could not be opened yet; openNext set a retry
	}
	s.sh.m.rotations.WithLabelValues("rename").Inc()
	return true
}

// check looks at the follower's path after the newest file was read to its
// end. Only the reader calls it.
func (s *follower) check() fileState {
	cur := s.newest()
	fi, err := os.Stat(s.key)
	if err != nil {
		return fileMissing
	}
	_, ino, _ := statIdentity(fi)
	if ino != cur.id.Inode {
		return fileRotated
	}
	if fi.Size() < s.rbOff {
		return fileTruncated
	}
	if !s.fingerprint(cur) {
		return fileUnchanged
	}
	if ok, err := fingerprintMatches(cur, cur.id); err == nil && !ok {
		return fileTruncated
	}
	return fileUnchanged
}

// openNext appends the file the follower's path now points at. After a
// rotation it first appends every rotation newer than the newest open file:
// kubelet may have rotated more than once since the last look. A file that
// cannot be opened stops the appending, so no file is skipped: the next look
// tries again. It reports whether the file the path points at was appended.
// s.openMu must be held.
func (s *follower) openNext(rotated bool) bool {
	target, err := filepath.EvalSymlinks(s.key)
	if err != nil {
		return false // gone between check and open; the next check sees it
	}
	// The file at the path is opened before the rotations are listed. The
	// other way round, kubelet rotating in between would lose a file: the
	// one it renamed is neither in the listing nor at the path any more.
	// This way round, the file opened is in the listing under its new name,
	// and the listing is cut there.
	cur, err := s.sh.openFile(target)
	if err != nil {
		s.openLater(target, err)
		return false
	}
	if rotated {
		paths, err := s.rotatedAfter(target, s.newest(), cur)
		if err != nil {
			s.sh.closeFiles(cur)
			s.openLater(target, err)
			return false
		}
		for _, p := range paths {
			f, err := s.sh.openFile(p)
			if err != nil {
				s.sh.closeFiles(cur)
				s.openLater(p, err)
				return false
			}
			s.appendFile(f, true)
		}
	}
	return s.appendFile(cur, rotated)
}

// openLater counts a file of the follower that could not be opened (or
// listed) and looks again in a second.
func (s *follower) openLater(path string, err error) {
	s.sh.m.openErrors.WithLabelValues(openErrorReason(err)).Inc()
	s.sh.logLimited("open:"+path, "cannot open a rotation yet; will retry", "stream", s.key, "file", path, "err", err)
	if openErrorReason(err) == "fd_limit" {
		s.sh.evictIdle(1)
	}
	s.wakeAt(time.Now().Add(time.Second))
}

// appendFile appends f to the follower's files, unless, after a rotation, it
// is one of them already (the same inode; after a truncation the same inode
// is a new file). It reports whether f was appended.
func (s *follower) appendFile(f *tailFile, rotated bool) bool {
	s.mu.Lock()
	known := false
	for _, g := range s.files {
		known = known || (rotated && f.gz == nil && g.gz == nil && g.id.Inode == f.id.Inode)
	}
	if !known {
		f.seq = s.nextSeq
		s.nextSeq++
		s.files = append(s.files, f)
	}
	s.mu.Unlock()
	if known {
		s.sh.closeFiles(f)
		return false
	}
	s.fingerprint(f)
	s.sh.log.Debug("following file", "stream", s.key, "file", f.path)
	return true
}

// rotatedAfter lists the rotations of target that are newer than last and
// older than cur (the file at target, opened before the listing), in
// order: those after last itself (found by inode while plain, by
// fingerprint once compressed), or, when last is gone, those modified after
// it.
func (s *follower) rotatedAfter(target string, last, cur *tailFile) ([]string, error) {
	rots, err := s.sh.rotations(target)
	if err != nil {
		return nil, fmt.Errorf("list rotations of %s: %w", target, err)
	}
	rots = olderThan(rots, cur)
	paths := func(rs []rotation) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.path
		}
		return out
	}
	for i, r := range rots {
		if !r.gz && last.gz == nil && r.inode == last.id.Inode {
			return paths(rots[i+1:]), nil
		}
	}
	if last.id.FPLen > 0 {
		for i, r := range rots {
			if !r.gz {
				continue
			}
			if f, err := openTailFile(r.path); err == nil {
				ok := f.matches(last.id)
				f.close()
				if ok {
					return paths(rots[i+1:]), nil
				}
			}
		}
	}
	lfi, err := last.f.Stat()
	if err != nil {
		return paths(rots), nil
	}
	var out []string
	for _, r := range rots {
		if fi, err := os.Stat(r.path); err == nil && !r.gz && fi.ModTime().After(lfi.ModTime()) {
			out = append(out, r.path)
		}
	}
	return out, nil
}

// finishFile handles what is left at the end of a file that will not grow
// any more: an unterminated last line is shipped as it is, flagged partial.
// It reports false when the line waits for budget or the gate.
func (s *follower) finishFile() bool {
	if !s.tailPending && s.overlong == nil {
		return true
	}
	if err := s.sh.slots.Acquire(s.sh.readCtx, 1); err != nil {
		return false
	}
	_, stop, err := s.readSome(true)
	s.dropBuffer()
	s.sh.slots.Release(1)
	if err != nil || (stop != stopEOF && stop != stopBatch) {
		return false
	}
	s.tailPending, s.overlong = false, nil
	return true
}

// dropBuffer gives the read buffer back. Bytes read but not consumed (the
// start of a line whose end has not been read) are read again next time.
// A buffer grown for a long line is dropped.
func (s *follower) dropBuffer() {
	if s.rb == nil {
		return
	}
	if cap(s.rb) == readBufSize {
		b := s.rb[:readBufSize]
		readBufPool.Put(&b)
	}
	s.rb, s.rbStart, s.rbEnd = nil, 0, 0
}

type stopReason int

const (
	stopEOF    stopReason = iota // the end of the file
	stopBatch                    // batchLines read: give the slot to others
	stopBudget                   // the next line waits for budget
	stopGate                     // the tenant or the follower is held back
	stopProbe                    // the probe record was sent
)

// readSome reads and ships up to batchLines lines of the current file. At
// the end of the file it returns stopEOF. final means the file will not
// grow: an unterminated last line is shipped too (flagged partial).
func (s *follower) readSome(final bool) (int, stopReason, error) {
	f := s.curFile()
	if s.rb == nil {
		s.rb = (*readBufPool.Get().(*[]byte))[:readBufSize]
		s.rbStart, s.rbEnd = 0, 0
	}
	lines := 0
	for lines < batchLines {
		i := bytes.IndexByte(s.rb[s.rbStart:s.rbEnd], '\n')
		partial := false
		if i < 0 {
			buffered := s.rbEnd - s.rbStart
			if s.overlong != nil {
				s.overlong.extra += int64(buffered)
				s.rbOff += int64(buffered)
				s.rbStart = s.rbEnd
			} else if buffered >= s.maxPhysLine() {
				// Only what a message can keep of the line is kept (with
				// room for a CRI prefix); the rest is counted.
				keep := min(buffered, s.lineCap+4096)
				if stop, ok := s.take(int64(keep) + s.overhead); !ok {
					return lines, stop, nil
				}
				s.overlong = &overlongLine{off: s.rbOff, head: bytes.Clone(s.rb[s.rbStart : s.rbStart+keep]), extra: int64(buffered - keep)}
				s.rbOff += int64(buffered)
				s.rbStart = s.rbEnd
			}
			n, err := s.fill(f)
			if err != nil {
				return lines, stopEOF, err
			}
			if n > 0 {
				continue
			}
			s.tailPending = s.rbEnd > s.rbStart
			if !final || (s.rbEnd == s.rbStart && s.overlong == nil) {
				return lines, stopEOF, nil
			}
			i, partial = s.rbEnd-s.rbStart, true // ship the unterminated tail as a line
		}
		// A record keeps at most lineCap bytes of its line.
		need := int64(min(i, s.lineCap)) + s.overhead
		if s.overlong != nil {
			need = int64(len(s.overlong.head)) + s.overhead
		}
		if stop, ok := s.take(need); !ok {
			return lines, stop, nil
		}
		off, raw, extra := s.rbOff, s.rb[s.rbStart:s.rbStart+i], int64(0)
		if s.overlong != nil {
			off, extra = s.overlong.off, s.overlong.extra+int64(i)
			raw = s.overlong.head
			s.overlong = nil
		}
		consumed := min(i+1, s.rbEnd-s.rbStart)
		next := s.rbOff + int64(consumed)
		if err := s.line(f, off, next, raw, extra, partial); err != nil {
			return lines, stopEOF, err
		}
		s.rbStart += consumed
		s.rbOff = next
		lines++
		if partial {
			s.tailPending = false
		}
		if s.probeSent {
			return lines, stopProbe, nil
		}
	}
	return lines, stopBatch, nil
}

// take makes sure the follower may handle a line costing need bytes: its
// tenant and the follower itself are not held back, and the budget has the
// bytes. Otherwise it says why not, and the line is left unread.
func (s *follower) take(need int64) (stopReason, bool) {
	if !s.probing {
		ok, probe, retryAt := s.t.gate.admit(s)
		if ok && !probe {
			ok, probe, retryAt = s.retry.admit(s)
		}
		if !ok {
			if !retryAt.IsZero() {
				s.wakeAt(retryAt)
			}
			return stopGate, false
		}
		if probe {
			s.probing = true
		}
	}
	s.lineNeed = need
	if s.credit >= need {
		return 0, true
	}
	// Budget is taken a few lines' worth at a time (one lock for several
	// lines); what is left over goes back when the follower is idle.
	if s.t.share.tryAcquire(max(need-s.credit, creditChunk)) {
		s.credit += max(need-s.credit, creditChunk)
		return 0, true
	}
	if !s.t.share.tryAcquire(need - s.credit) {
		s.needCredit = need
		return stopBudget, false
	}
	s.credit = need
	return 0, true
}

// creditChunk is how much budget a reading follower takes at a time.
const creditChunk = 8 << 10

// fill reads more of f into the buffer, growing it for long lines up to
// maxPhysLine. It returns 0 at the end of the file.
func (s *follower) fill(f *tailFile) (int, error) {
	if s.rbStart > 0 {
		n := copy(s.rb, s.rb[s.rbStart:s.rbEnd])
		s.rbStart, s.rbEnd = 0, n
	}
	if s.rbEnd == len(s.rb) {
		if len(s.rb) >= s.maxPhysLine() {
			return 0, nil // the caller turns this into an overlong line
		}
		nb := make([]byte, min(2*len(s.rb), s.maxPhysLine()))
		copy(nb, s.rb[:s.rbEnd])
		s.rb = nb
	}
	n, err := f.ReadAt(s.rb[s.rbEnd:], s.rbOff+int64(s.rbEnd))
	s.rbEnd += n
	if end := s.rbOff + int64(s.rbEnd); n > 0 && end > f.size.Load() && f.size.Load() >= 0 {
		s.setSize(f, end)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("read %s: %w", f.path, err)
	}
	if n == 0 && f.gz != nil && f.size.Load() < 0 {
		s.setSize(f, s.rbOff+int64(s.rbEnd))
		if gerr := f.gz.Err(); gerr != nil {
			s.sh.fileUnreadable(s, f, gerr)
		}
	}
	return n, nil
}

// line handles one physical line: raw is the line without its newline (it
// aliases the read buffer), starting at off, with the next line at next;
// extra counts bytes of an overlong line that were skipped. partial says the
// line's newline never came. The line's budget (s.lineNeed) is in s.credit.
func (s *follower) line(f *tailFile, off, next int64, raw []byte, extra int64, partial bool) error {
	s.t.c.lines.Inc()
	s.t.c.bytes.Add(float64(next - off))
	if !s.fingerprint(f) {
		// A line without a complete first line before it: the unterminated
		// tail of a file that will not grow (a short file that was rotated
		// or deleted). Its head is final, so it fingerprints as it is.
		n, fp, err := readFingerprint(f, true)
		if err != nil || n == 0 {
			return fmt.Errorf("no fingerprint for %s: %v", f.path, err)
		}
		s.setFingerprint(f, n, fp)
	}
	l := DecodeLine(raw)
	start, end := position{f, off}, position{f, next}
	slot := -1
	switch l.Stream {
	case "stdout":
		slot = 0
	case "stderr":
		slot = 1
	}
	if slot < 0 || (s.groups[slot] == nil && !l.Partial) {
		// A whole message in one line: the common case.
		content, cut := l.Content, extra > 0
		if len(content) > s.lineCap {
			content, cut = content[:s.lineCap], true
		}
		cost := s.lineNeed
		s.credit -= cost
		s.emit(start, end, l.Time, l.Stream, l.Format, content, int64(len(l.Content))+extra, cut, partial, 1, cost)
		return nil
	}
	g := s.groups[slot]
	if g == nil {
		g = &group{start: start, time: l.Time, stream: l.Stream, format: l.Format}
		s.groups[slot] = g
		s.mu.Lock()
		s.groupAt[slot] = &g.start
		s.mu.Unlock()
	}
	var cut bool
	before := len(g.buf)
	g.buf, cut = appendCapped(g.buf, l.Content, s.lineCap)
	g.truncated = g.truncated || cut || extra > 0
	g.size += int64(len(l.Content)) + extra
	g.parts++
	if l.Partial && !partial {
		// The group keeps what its content costs; the rest of the line's
		// budget stays with the follower for the next line.
		charge := min(int64(len(g.buf)-before), s.lineNeed)
		g.charge += charge
		s.credit -= charge
		return nil
	}
	cost := g.charge + s.lineNeed
	g.charge = 0
	s.credit -= s.lineNeed
	s.emitGroup(slot, end, partial || l.Partial, cost)
	return nil
}

// emitGroup ships a joined message.
func (s *follower) emitGroup(slot int, end position, partial bool, cost int64) {
	g := s.groups[slot]
	s.emit(g.start, end, g.time, g.stream, g.format, g.buf, g.size, g.truncated, partial, g.parts, cost)
	putBuf(g.buf) // emit keeps nothing of it
	s.groups[slot] = nil
	s.mu.Lock()
	s.groupAt[slot] = nil // the queued record holds the checkpoint now
	s.mu.Unlock()
}

// flushGroups ships partial messages that will not be completed, flagged
// partial. It reports false when the budget for a record's overhead could
// not be had (the shipper is stopping).
func (s *follower) flushGroups(ctx context.Context) bool {
	for slot, g := range s.groups {
		if g == nil {
			continue
		}
		if err := s.t.share.acquire(ctx, s.overhead); err != nil {
			return false
		}
		end := position{s.curFile(), s.rbOff}
		if end.before(g.start) {
			end = g.start
		}
		cost := g.charge + s.overhead
		g.charge = 0
		s.emitGroup(slot, end, true, cost)
	}
	return true
}

// emit builds the record for one message and hands it to the output. It
// never blocks: the budget (cost) was taken before the line was read.
func (s *follower) emit(start, end position, ts time.Time, streamName, format string, content []byte, size int64, truncated, partial bool, parts int, cost int64) {
	m := s.sh.m
	text, invalid := cleanText(content, truncated)
	if limit := s.t.maxContent(s.overhead); len(text) > limit {
		text, truncated = cutText(text, limit), true
	}
	now := time.Now().UTC()
	if ts.IsZero() {
		ts = now
	}
	// The record, its id and (when it needed no repair) its text live only
	// until produce returns: the output encodes them synchronously and keeps
	// nothing (see sink.produce), so they reuse the follower's memory.
	rec := &s.rec
	*rec = schemas.Record{
		ID:                s.recordID(start),
		Timestamp:         ts,
		ObservedTimestamp: now,
		Tenant:            s.t.name,
		Stream:            streamName,
		Log:               text,
		InvalidUTF8:       invalid,
		Partial:           partial,
		Metadata:          s.metaFlag,
		Kubernetes:        s.k8s,
		Source: schemas.Source{
			Path:    start.f.path,
			Offset:  start.off,
			Format:  format,
			Shipper: s.sh.version,
		},
	}
	if truncated {
		rec.Truncated, rec.OriginalSize = true, size
		m.truncations.Inc()
	}
	if invalid {
		m.invalidUTF8.Inc()
	}
	if parts > 1 {
		m.partialJoins.Inc()
	}
	s.mu.Lock()
	seq := s.seq
	s.seq++
	s.q = append(s.q, ackEntry{start: start, end: end})
	s.inflight++
	if s.behind.IsZero() {
		s.behind = now
	}
	s.mu.Unlock()
	s.sh.sink.produce(s.t.topic, s.recKey, rec, ticket{s, s.t, seq, cost})
	if s.probing {
		s.probeSent = true
	}
}

// cutText cuts s to at most n bytes on a rune boundary.
func cutText(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ticket identifies a record in flight for its acknowledgement.
type ticket struct {
	s    *follower
	t    *tenant // the follower's tenant when the record was read
	seq  uint64
	cost int64
}

// done reports the record's fate; it returns true when the output should
// write the record to the tenant's dead-letter topic (Kafka refused it for
// good).
func (t ticket) done(err error) (deadLetter bool) { return t.s.ack(t.t, t.seq, t.cost, err) }

// ack is called by the output once per record, in produce order per follower
// (one follower is one key, so one partition), from any goroutine.
func (s *follower) ack(t *tenant, seq uint64, cost int64, err error) (deadLetter bool) {
	t.share.release(cost)
	reason := ""
	if err != nil {
		reason = errorReason(err)
		if reason == reasonTooLarge && t.atFloor() {
			reason = reasonRejected // as small as records get: it cannot fit
		}
	}
	s.mu.Lock()
	e := &s.q[seq-s.qBase]
	first := false
	switch {
	case err == nil || reason == reasonRejected:
		e.state = 1 // delivered, or given up (counted and dead-lettered below)
	default:
		e.state = 2
		if s.failed == nil {
			s.failed, first = err, true
		}
	}
	if err == nil {
		s.acks++ // position() turns a change into a time: no clock read per record
	}
	for s.qHead < len(s.q) && s.q[s.qHead].state == 1 {
		s.watermark = s.q[s.qHead].end
		s.qHead++
	}
	switch {
	case s.qHead == len(s.q):
		s.qBase += uint64(len(s.q))
		s.q, s.qHead = s.q[:0], 0
	case s.qHead >= 256 && s.qHead >= len(s.q)/2:
		// Acknowledged entries are dropped from the front once they are
		// half the queue: the queue stays about twice what is in flight.
		n := copy(s.q, s.q[s.qHead:])
		s.qBase += uint64(s.qHead)
		s.q, s.qHead = s.q[:n], 0
	}
	s.inflight--
	wake := first || (s.wantAck && s.inflight == 0)
	s.mu.Unlock()
	switch {
	case err == nil:
		t.c.produced.Inc()
		t.gate.ok()
		s.retry.ok()
	case reason == reasonRejected:
		s.sh.m.produceErrors.WithLabelValues(t.name, reason).Inc()
		s.sh.lost(t, reasonRejected, 1, 0)
		s.sh.logLimited("rejected:"+t.name, "Kafka refused a record for good; it is counted as lost and dead-lettered", "tenant", t.name, "topic", t.topic, "err", err)
	default:
		s.sh.m.produceErrors.WithLabelValues(t.name, reason).Inc()
	}
	if wake {
		s.wake()
	}
	return reason == reasonRejected
}

func (s *follower) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// recover handles a failed delivery once nothing is in flight: hold back
// the tenant or the follower as the cause says, then rewind to the
// checkpoint.
func (s *follower) recover(cause error) {
	reason := errorReason(cause)
	switch reason {
	case reasonTopicMissing, reasonDenied:
		s.t.failed(cause)
		s.t.gate.pause() // the whole tenant waits
	case reasonTooLarge:
		s.t.tooLarge(cause)
	case reasonShutdown:
	default:
		s.retry.pause() // no tight loop on a record Kafka keeps refusing
	}
	s.probing, s.probeSent = false, false
	s.sh.logLimited("produce:"+s.t.name+":"+reason, "delivery failed; rewinding to the last acknowledged position", "tenant", s.t.name, "topic", s.t.topic, "reason", reason, "err", cause)

	s.mu.Lock()
	cp := s.checkpointLocked()
	s.q, s.qHead, s.qBase, s.seq = s.q[:0], 0, 0, 0
	s.failed = nil
	s.groupAt = [2]*position{}
	s.watermark = cp
	for i, f := range s.files {
		if f == cp.f {
			s.cur = i
		}
	}
	s.rbOff = cp.off
	s.mu.Unlock()
	s.dropPartial()
}

// dropPartial forgets the messages being joined and an unfinished line,
// giving their budget and buffers back (the reader rewinds to before them,
// or their file is given up). The caller resets the groups' checkpoint
// holds (groupAt).
func (s *follower) dropPartial() {
	for i, g := range s.groups {
		if g != nil {
			s.t.share.release(g.charge)
			putBuf(g.buf)
			s.groups[i] = nil
		}
	}
	s.overlong, s.tailPending = nil, false
}

// checkpointLocked is the first byte not yet delivered: the watermark, or
// an earlier start of a record still in flight or of a partial message
// still being joined. (A message joined from partial lines starts before
// records of the other stream that were produced, and may be delivered,
// ahead of it.) s.mu must be held and s.files set.
func (s *follower) checkpointLocked() position {
	cp := s.watermark
	for _, g := range s.groupAt {
		if g != nil && g.before(cp) {
			cp = *g
		}
	}
	for _, e := range s.q[s.qHead:] {
		if e.state != 1 && e.start.before(cp) {
			cp = e.start
		}
	}
	return cp
}

// compact closes files wholly before the checkpoint.
func (s *follower) compact() {
	s.mu.Lock()
	cp := s.checkpointLocked()
	drop := 0
	for drop < s.cur && s.files[drop] != cp.f {
		drop++
	}
	var closed []*tailFile
	if drop > 0 {
		closed = append(closed, s.files[:drop]...)
		s.files = append(s.files[:0], s.files[drop:]...)
		s.cur -= drop
	}
	s.mu.Unlock()
	s.sh.closeFiles(closed...)
}

// position returns the checkpoint entry, the bytes not yet delivered (from
// the sizes last seen: no file is touched), and since when the follower has
// had them.
func (s *follower) position() (p followerPosition, t *tenant, unshipped int64, since time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t = s.t
	if s.files == nil {
		if s.parked == nil {
			return followerPosition{}, t, 0, time.Time{}, false
		}
		return *s.parked, t, 0, time.Time{}, true
	}
	cp := s.checkpointLocked()
	if newest := s.files[len(s.files)-1]; (!s.behind.IsZero() || s.inflight > 0) && newest.gz == nil {
		// Behind: the reader may be held back and not see the file grow.
		// (A caught-up follower is woken by every write and knows its size.)
		if fi, err := newest.f.Stat(); err == nil {
			newest.size.Store(fi.Size())
		}
	}
	seen := false
	for _, f := range s.files {
		if f == cp.f {
			seen = true
		}
		if !seen {
			continue
		}
		if n := f.size.Load(); n > 0 {
			unshipped += n
		}
		if f == cp.f {
			unshipped -= cp.off
		}
	}
	unshipped = max(unshipped, 0)
	if unshipped == 0 && s.inflight == 0 {
		s.behind = time.Time{}
	} else if s.behind.IsZero() {
		s.behind = time.Now()
	}
	// Waiting since it fell behind, or since Kafka last acknowledged one
	// of its records if that is later (known to a checkpoint interval): a
	// busy follower that delivers is never old.
	if s.acks != s.acksSeen {
		s.acksSeen, s.lastAck = s.acks, time.Now()
	}
	since = s.behind
	if ack := s.lastAck; !since.IsZero() && ack.After(since) {
		since = ack
	}
	return followerPosition{Key: s.key, Path: cp.f.path, fileIdentity: cp.f.id, Offset: cp.off, Size: max(cp.f.size.Load(), cp.off)}, t, unshipped, since, true
}

// heldFiles lists the follower's open files that were deleted from disk,
// except the newest (whose deletion means the container is gone), with
// the bytes each holds.
func (s *follower) heldFiles(now time.Time) []heldFile {
	s.mu.Lock()
	if len(s.files) < 2 { // the usual case: nothing but the newest file
		s.mu.Unlock()
		return nil
	}
	files := append([]*tailFile(nil), s.files...)
	s.mu.Unlock()
	var out []heldFile
	for i, f := range files {
		if i == len(files)-1 || f.released {
			continue
		}
		fi, err := f.f.Stat()
		if err != nil {
			continue
		}
		if !deleted(fi) {
			continue
		}
		s.mu.Lock()
		if f.deletedAt.IsZero() {
			f.deletedAt = now
		}
		at := f.deletedAt
		s.mu.Unlock()
		out = append(out, heldFile{s: s, f: f, bytes: fi.Size(), since: at})
	}
	return out
}

// releaseFiles gives up files the held-files policy released: unread lines
// in them are counted as lost, unless kubelet's compressed copy of the file
// is still there to be read instead. It waits until nothing is in flight
// (the usual case: the follower is held back), so no position points into a
// file it drops.
func (s *follower) releaseFiles() {
	if !s.idleForAcks() {
		s.release.Store(true) // again after the last acknowledgement
		return
	}
	for {
		s.mu.Lock()
		idx := -1
		for i, f := range s.files {
			if f.released && f.gz == nil && i >= s.cur && i < len(s.files)-1 {
				idx = i
				break
			}
		}
		if idx < 0 {
			s.mu.Unlock()
			break
		}
		f, atCur, from := s.files[idx], idx == s.cur, int64(0)
		if atCur {
			from = s.rbOff
		}
		s.mu.Unlock()

		s.fingerprint(f) // a file opened empty and never read has none yet
		if g := s.compressedCopy(f); g != nil {
			s.mu.Lock()
			g.seq, g.id, g.idPrefix, g.opened = f.seq, f.id, f.idPrefix, f.opened
			s.files[idx] = g
			if s.watermark.f == f {
				s.watermark.f = g
			}
			for k, p := range s.groupAt {
				if p != nil && p.f == f {
					s.groupAt[k].f = g
				}
			}
			s.mu.Unlock()
			for _, gr := range s.groups {
				if gr != nil && gr.start.f == f {
					gr.start.f = g
				}
			}
			s.sh.log.Info("held file released; reading its compressed copy instead", "stream", s.key, "file", f.path, "copy", g.path)
			s.sh.closeFiles(f)
			continue
		}
		lines, n := countLines(f, from)
		s.sh.lost(s.t, "released", lines, n)
		s.sh.log.Warn("deleted file held too long released (SLUICE_SHIPPER_HELD_FILES_MAX_AGE/_MAX_BYTES); its unread lines are lost",
			"stream", s.key, "file", f.path, "lines", lines, "bytes", n)
		if atCur {
			s.dropPartial() // a message begun in the file cannot be finished
		}
		s.mu.Lock()
		s.files = append(s.files[:idx], s.files[idx+1:]...)
		if atCur {
			s.groupAt = [2]*position{}
			s.rbOff = 0
			s.watermark = position{s.files[s.cur], 0}
		}
		s.mu.Unlock()
		s.sh.closeFiles(f)
	}
	s.compact()
}

// compressedCopy opens the compressed rotation holding f's data, if there
// is one.
func (s *follower) compressedCopy(f *tailFile) *tailFile {
	target, err := filepath.EvalSymlinks(s.key)
	if err != nil {
		return nil
	}
	rots, err := s.sh.rotations(target)
	if err != nil {
		return nil
	}
	for _, r := range rots {
		if !r.gz {
			continue
		}
		g, err := s.sh.openFile(r.path)
		if err != nil {
			continue
		}
		if g.matches(f.id) {
			return g
		}
		s.sh.closeFiles(g)
	}
	return nil
}

// countLines counts the lines and bytes of f from off to its end.
func countLines(f *tailFile, off int64) (lines, n int64) {
	buf := make([]byte, 64<<10)
	for {
		k, err := f.ReadAt(buf, off)
		lines += int64(bytes.Count(buf[:k], []byte{'\n'}))
		n += int64(k)
		off += int64(k)
		if err != nil || k == 0 {
			break
		}
	}
	return lines, n
}

func (s *follower) close() {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	s.closed = true
	s.mu.Lock()
	files := s.files
	s.mu.Unlock()
	s.sh.closeFiles(files...)
	s.timerMu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerMu.Unlock()
}
