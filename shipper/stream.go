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
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/sluicelogs/sluice/schemas"
)

// A stream is the log of one container: the file a /var/log/containers
// entry points at, and the files it was rotated to. One goroutine (run)
// reads it in order; the output acknowledges records from other goroutines
// (ack).
//
// Positions and acknowledgement. Every record is queued with the position
// just after its last byte. Acknowledgements advance the watermark over the
// longest acknowledged prefix of the queue, so the watermark is the first
// byte not yet delivered. The checkpoint is the watermark, or the start of
// a partial message still being joined if that is earlier. When a record
// fails, the stream waits for everything in flight, rewinds to its
// checkpoint and reads again: lines may be sent twice (with the same record
// id) but never skipped.
type stream struct {
	sh     *Shipper
	key    string // the matched path
	meta   PathMeta
	tenant string
	topic  string
	gate   *backoffGate
	k8s    schemas.Kubernetes
	recKey []byte
	gone   atomic.Bool // the matched path disappeared from the globs
	done   chan struct{}
	c      tenantCounters
	// overhead is what a record of this stream costs beyond its message:
	// its metadata, encoded, and the output's per-record memory.
	overhead int64
	retry    backoffGate // per-stream backoff after failures other than a missing or denied topic

	// Read state, owned by run.
	cur      int // index in files of the file being read
	rb       []byte
	rbStart  int
	rbEnd    int
	rbOff    int64 // file offset of rb[rbStart]
	overlong *overlongLine
	groups   [2]*group // partial messages being joined: stdout, stderr
	lineCap  int
	rec      schemas.Record // reused for every record
	idBuf    [32]byte

	openMu sync.Mutex // serializes opening files (follow, openNext) and close
	closed bool       // guarded by openMu

	mu        sync.Mutex  // guards what follows
	files     []*tailFile // run reads and compacts them, follow appends
	nextSeq   int
	q         []ackEntry // records in flight, in produce order
	qHead     int
	qBase     uint64 // sequence number of q[0]
	seq       uint64 // next sequence number
	inflight  int
	watermark position
	groupAt   [2]*position // start of each pending partial message
	failed    error
}

// tailFile is one open file of a stream.
type tailFile struct {
	seq      int // order within the stream
	path     string
	opened   time.Time
	f        *os.File
	id       fileIdentity
	idPrefix []byte // hash input shared by every record id of this file; nil until the fingerprint is known
}

// position is a byte offset in one of a stream's files.
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
	state      uint8 // 0 in flight, 1 delivered, 2 failed
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
}

// overlongLine is a physical line longer than the read buffer: its head is
// kept, the rest is counted and skipped.
type overlongLine struct {
	off   int64
	head  []byte
	extra int64
}

const (
	readBufSize = 64 << 10
	batchLines  = 4096 // lines read in one turn before yielding to checks
	// recordOverhead approximates what a record costs in memory beyond its
	// message and metadata strings: the encoded fixed fields, the pooled
	// kgo.Record, the queue entry.
	recordOverhead = 384
)

var readBufPool = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// maxPhysLine is the longest physical line kept in the buffer; docker
// json-file escaping can make a line several times longer than its message.
func (s *stream) maxPhysLine() int {
	return max(2*s.sh.cfg.MaxLineBytes, readBufSize) + 4096
}

// open positions the stream at its checkpoint. A stream never seen before
// starts at the beginning of its current file, or, with withRotated, of its
// oldest uncompressed rotation.
func (s *stream) open(cp *streamPosition, withRotated bool) error {
	target, err := filepath.EvalSymlinks(s.key)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", s.key, err)
	}
	cur, err := s.openFile(target)
	if err != nil {
		return err
	}
	if cp == nil {
		var files []*tailFile
		if withRotated {
			for _, p := range rotatedSiblings(target) {
				if f, err := s.openFile(p); err == nil {
					files = append(files, f)
				}
			}
		}
		files = append(files, cur)
		for i, f := range files {
			f.seq = i
		}
		s.setFiles(files, 0)
		return nil
	}
	if ok, _ := cur.is(cp.fileIdentity); ok {
		off := cp.Offset
		if fi, err := cur.f.Stat(); err == nil && fi.Size() < off {
			off = 0 // truncated while we were away
		}
		s.setFiles([]*tailFile{cur}, off)
		return nil
	}
	// Rotated while we were away: drain the checkpointed file and the
	// rotations after it before the current file.
	sibs := rotatedSiblings(target)
	for i, p := range sibs {
		f, err := s.openFile(p)
		if err != nil {
			continue
		}
		if ok, _ := f.is(cp.fileIdentity); !ok {
			f.f.Close()
			continue
		}
		files := []*tailFile{f}
		for _, q := range sibs[i+1:] {
			if g, err := s.openFile(q); err == nil {
				files = append(files, g)
			}
		}
		files = append(files, cur)
		for i, f := range files {
			f.seq = i
		}
		s.setFiles(files, cp.Offset)
		s.sh.log.Info("resuming rotated file", "stream", s.key, "file", p, "offset", cp.Offset, "rotations", len(files)-1)
		return nil
	}
	// The checkpointed file is gone (compressed or deleted). Which
	// rotations came after it cannot be told any more, so all uncompressed
	// ones are read: a line read twice keeps its record id and is harmless
	// downstream, a line skipped is lost.
	s.sh.m.checkpointMisses.Inc()
	s.sh.log.Warn("checkpointed file is gone (compressed or deleted); unread lines in it are lost, later rotations are read again", "stream", s.key, "file", cp.Path, "offset", cp.Offset)
	cur.f.Close()
	return s.open(nil, true)
}

func (s *stream) setFiles(files []*tailFile, off int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = files
	s.nextSeq = len(files)
	s.cur = 0
	s.rbOff = off
	s.watermark = position{files[0], off}
}

// rotatedSiblings lists the uncompressed rotations of a kubelet log file
// (<n>.log.<timestamp>), oldest first.
func rotatedSiblings(target string) []string {
	dir, base := filepath.Dir(target), filepath.Base(target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	type sib struct {
		path string
		mod  time.Time
	}
	var sibs []sib
	for _, e := range entries {
		n := e.Name()
		if !strings.HasPrefix(n, base+".") || strings.HasSuffix(n, ".gz") || strings.Contains(n, ".tmp") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			sibs = append(sibs, sib{filepath.Join(dir, n), fi.ModTime()})
		}
	}
	sort.Slice(sibs, func(i, j int) bool {
		if !sibs[i].mod.Equal(sibs[j].mod) {
			return sibs[i].mod.Before(sibs[j].mod)
		}
		return sibs[i].path < sibs[j].path // kubelet's timestamps sort by name
	})
	out := make([]string, len(sibs))
	for i, s := range sibs {
		out[i] = s.path
	}
	return out
}

func (s *stream) openFile(path string) (*tailFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	dev, ino, _ := statIdentity(fi)
	t := &tailFile{path: path, f: f, opened: time.Now(), id: fileIdentity{Dev: dev, Inode: ino}}
	s.fingerprint(t)
	return t, nil
}

// fingerprint computes t's fingerprint once its first line is complete. It
// reports whether the fingerprint is known. Only run calls it; it updates
// t.id under s.mu because checkpoints read it.
func (s *stream) fingerprint(t *tailFile) bool {
	if t.idPrefix != nil {
		return true
	}
	n, fp, err := readFingerprint(t.f, false)
	if err != nil || n == 0 {
		return false
	}
	return s.setFingerprint(t, n, fp)
}

// setFingerprint records t's fingerprint and the record-id prefix.
func (s *stream) setFingerprint(t *tailFile, n int, fp uint64) bool {
	// The record id hashes node, inode, fingerprint and offset; the prefix
	// is fixed per file.
	node := s.sh.node
	p := make([]byte, 0, len(node)+1+16)
	p = append(p, node...)
	p = append(p, 0)
	p = binary.BigEndian.AppendUint64(p, t.id.Inode)
	p = binary.BigEndian.AppendUint64(p, fp)
	s.mu.Lock()
	t.id.FPLen, t.id.FP = n, fp
	t.idPrefix = p
	s.mu.Unlock()
	return true
}

// is reports whether t is the file id names.
func (t *tailFile) is(id fileIdentity) (bool, error) {
	if t.id.Inode != id.Inode {
		return false, nil
	}
	return fingerprintMatches(t.f, id)
}

// recordID is the deterministic id of the line starting at p: 128 bits of
// SHA-256 over (node, inode, fingerprint, offset), hex. The string aliases
// s.idBuf and is valid until the next call.
func (s *stream) recordID(p position) string {
	var buf [320]byte // node names are at most 253 bytes: no allocation
	in := append(append(buf[:0], p.f.idPrefix...), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint64(in[len(in)-8:], uint64(p.off))
	sum := sha256.Sum256(in)
	hex.Encode(s.idBuf[:], sum[:16])
	return unsafe.String(&s.idBuf[0], len(s.idBuf))
}

// run reads the stream until ctx is done, the stream is gone and fully
// delivered, or (in once mode) the newest file is read to its end.
func (s *stream) run(ctx context.Context) {
	defer close(s.done)
	defer s.releaseBuffer()
	for ctx.Err() == nil {
		if err := s.failure(); err != nil {
			if !s.recover(ctx, err) {
				return
			}
			continue
		}
		n, err := s.readSome(ctx, false)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.sh.logLimited("read:"+s.key, "read failed; retrying", "stream", s.key, "err", err)
			s.sleep(ctx, s.sh.cfg.PollInterval)
			continue
		}
		if n > 0 {
			continue
		}
		if next := s.fileAfterCur(); next != nil {
			// A renamed file is read to its end and left. The runtime may
			// still write to it for a moment after kubelet renamed it, so
			// it is left only after a grace period.
			if wait := s.rotateGrace() - time.Since(next.opened); wait > 0 {
				s.sleep(ctx, wait)
				continue
			}
			s.finishFile(ctx)
			s.mu.Lock()
			s.cur++
			s.rbOff = 0
			s.mu.Unlock()
			s.compact()
			continue
		}
		s.compact()
		s.releaseBuffer()
		switch s.check() {
		case fileRotated:
			s.follow()
			continue
		case fileTruncated:
			// Truncated in place (copytruncate), or replaced on the same
			// inode: what was not read yet is gone; the new content is read
			// from its start. The old handle shows the new content too, so
			// nothing more is read through it.
			s.sh.m.rotations.WithLabelValues("truncate").Inc()
			s.flushGroups(ctx)
			s.rbStart, s.rbEnd, s.overlong = 0, 0, nil
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
		if s.sh.once {
			if !s.waitDelivered(ctx) {
				s.sh.onceFailed.Store(true)
			}
			return
		}
		if s.gone.Load() {
			if s.finish(ctx) {
				return
			}
			continue
		}
		s.sleep(ctx, s.sh.cfg.PollInterval)
	}
}

// curFile is the file being read.
func (s *stream) curFile() *tailFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[s.cur]
}

// rotateGrace is how long a renamed file is still read after the file that
// replaced it appeared.
func (s *stream) rotateGrace() time.Duration {
	return min(s.sh.cfg.PollInterval, 200*time.Millisecond)
}

type fileState int

const (
	fileUnchanged fileState = iota
	fileRotated
	fileTruncated
	fileMissing
)

// fileAfterCur is the file after the one being read, or nil.
func (s *stream) fileAfterCur() *tailFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur < len(s.files)-1 {
		return s.files[s.cur+1]
	}
	return nil
}

// newest is the newest open file. The follower may append files at any
// time, so s.files is read under s.mu.
func (s *stream) newest() *tailFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.files[len(s.files)-1]
}

// follow opens the files kubelet rotated to since the last look, as soon
// as they appear: held open, they stay readable when kubelet later
// compresses or deletes them, however long a backlog takes to read. The
// shipper's follower calls it every SLUICE_SHIPPER_POLL_INTERVAL, while the
// reader may be blocked on the buffer budget; the reader calls it at the
// end of its newest file.
func (s *stream) follow() {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	if s.closed {
		return
	}
	fi, err := os.Stat(s.key)
	if err != nil {
		return
	}
	if _, ino, _ := statIdentity(fi); ino != s.newest().id.Inode {
		s.sh.m.rotations.WithLabelValues("rename").Inc()
		s.openNext(true)
	}
}

// check looks at the stream's path after the newest file was read to its
// end. Only the reader calls it.
func (s *stream) check() fileState {
	cur := s.newest()
	fi, err := os.Stat(s.key)
	if err != nil {
		return fileMissing
	}
	_, ino, _ := statIdentity(fi)
	if ino != cur.id.Inode {
		return fileRotated
	}
	if fi.Size() < s.rbOff+int64(s.rbEnd-s.rbStart) {
		return fileTruncated
	}
	if !s.fingerprint(cur) {
		return fileUnchanged
	}
	if ok, err := fingerprintMatches(cur.f, cur.id); err == nil && !ok {
		return fileTruncated
	}
	return fileUnchanged
}

// openNext appends the file the stream's path now points at. After a
// rotation it first appends every rotation newer than the newest open file:
// kubelet may have rotated more than once since the last look. It reports
// whether the file the path points at was appended. s.openMu must be held.
func (s *stream) openNext(rotated bool) bool {
	target, err := filepath.EvalSymlinks(s.key)
	if err != nil {
		return false // gone between check and open; the next check sees it
	}
	var paths []string
	if rotated {
		paths = rotatedAfter(target, s.newest())
	}
	paths = append(paths, target)
	appended := false
	for _, p := range paths {
		f, err := s.openFile(p)
		if err != nil {
			s.sh.logLimited("open:"+p, "cannot open rotated file; its lines are lost", "stream", s.key, "file", p, "err", err)
			continue
		}
		s.mu.Lock()
		known := false
		for _, g := range s.files {
			// After a truncation the same inode is a new file.
			known = known || (rotated && g.id.Inode == f.id.Inode)
		}
		if !known {
			f.seq = s.nextSeq
			s.nextSeq++
			s.files = append(s.files, f)
		}
		s.mu.Unlock()
		if known {
			f.f.Close()
			continue
		}
		appended = p == target
		s.sh.log.Debug("following file", "stream", s.key, "file", p)
	}
	return appended
}

// rotatedAfter lists the rotations of target that are newer than last, in
// order: those after last's own rotated name, or, when last was compressed
// or deleted already, those modified after it.
func rotatedAfter(target string, last *tailFile) []string {
	sibs := rotatedSiblings(target)
	for i, p := range sibs {
		if fi, err := os.Stat(p); err == nil {
			if _, ino, _ := statIdentity(fi); ino == last.id.Inode {
				return sibs[i+1:]
			}
		}
	}
	// last is not among the rotations any more (compressed or deleted):
	// take the ones modified after it.
	lfi, err := last.f.Stat()
	if err != nil {
		return sibs
	}
	var out []string
	for _, p := range sibs {
		if fi, err := os.Stat(p); err == nil && fi.ModTime().After(lfi.ModTime()) {
			out = append(out, p)
		}
	}
	return out
}

// finishFile handles what is left in the buffer at the end of a file that
// will not grow any more: an unterminated last line is shipped as is.
func (s *stream) finishFile(ctx context.Context) {
	if s.rbEnd > s.rbStart || s.overlong != nil {
		_, _ = s.readSome(ctx, true)
	}
	s.rb, s.rbStart, s.rbEnd = s.rb[:cap(s.rb)], 0, 0
	s.overlong = nil
}

// finish ends a stream whose path is gone: ship what is left and wait until
// everything is delivered. It reports false when a failure needs a retry.
func (s *stream) finish(ctx context.Context) bool {
	s.finishFile(ctx)
	s.flushGroups(ctx)
	return s.waitDelivered(ctx)
}

// waitDelivered waits until nothing is in flight. It reports false when a
// record failed (or ctx ended first).
func (s *stream) waitDelivered(ctx context.Context) bool {
	for ctx.Err() == nil {
		s.mu.Lock()
		n, failed := s.inflight, s.failed
		s.mu.Unlock()
		if failed != nil {
			return false
		}
		if n == 0 {
			return true
		}
		s.sleep(ctx, 10*time.Millisecond)
	}
	return false
}

func (s *stream) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// releaseBuffer gives an idle stream's read buffer back, so memory follows
// the number of busy streams, not the number of files. A buffer grown for
// a long line is dropped.
func (s *stream) releaseBuffer() {
	if s.rb == nil || s.rbStart != s.rbEnd || s.overlong != nil {
		return
	}
	if cap(s.rb) == readBufSize {
		b := s.rb[:readBufSize]
		readBufPool.Put(&b)
	}
	s.rb = nil
}

// readSome reads and ships up to batchLines lines of the current file. At
// the end of the file it returns 0. final means the file will not grow: an
// unterminated last line is shipped too.
func (s *stream) readSome(ctx context.Context, final bool) (int, error) {
	f := s.curFile()
	if s.rb == nil {
		s.rb = (*readBufPool.Get().(*[]byte))[:readBufSize]
		s.rbStart, s.rbEnd = 0, 0
	}
	lines := 0
	for lines < batchLines {
		i := bytes.IndexByte(s.rb[s.rbStart:s.rbEnd], '\n')
		if i < 0 {
			buffered := s.rbEnd - s.rbStart
			if s.overlong != nil {
				s.overlong.extra += int64(buffered)
				s.rbOff += int64(buffered)
				s.rbStart = s.rbEnd
			} else if buffered >= s.maxPhysLine() {
				s.overlong = &overlongLine{off: s.rbOff, head: bytes.Clone(s.rb[s.rbStart:s.rbEnd])}
				s.rbOff += int64(buffered)
				s.rbStart = s.rbEnd
			}
			n, err := s.fill(f)
			if err != nil {
				return lines, err
			}
			if n > 0 {
				continue
			}
			if !final || (s.rbEnd == s.rbStart && s.overlong == nil) {
				return lines, nil
			}
			i = s.rbEnd - s.rbStart // ship the unterminated tail as a line
		}
		off, raw, extra := s.rbOff, s.rb[s.rbStart:s.rbStart+i], int64(0)
		if s.overlong != nil {
			off, extra = s.overlong.off, s.overlong.extra+int64(i)
			raw = s.overlong.head
			s.overlong = nil
		}
		consumed := min(i+1, s.rbEnd-s.rbStart)
		next := s.rbOff + int64(consumed)
		if err := s.line(ctx, f, off, next, raw, extra); err != nil {
			return lines, err
		}
		s.rbStart += consumed
		s.rbOff = next
		lines++
	}
	return lines, nil
}

// fill reads more of f into the buffer, growing it for long lines up to
// maxPhysLine. It returns 0 at the end of the file.
func (s *stream) fill(f *tailFile) (int, error) {
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
	n, err := f.f.ReadAt(s.rb[s.rbEnd:], s.rbOff+int64(s.rbEnd))
	s.rbEnd += n
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("read %s: %w", f.path, err)
	}
	return n, nil
}

// line handles one physical line: raw is the line without its newline (it
// aliases the read buffer), starting at off, with the next line at next;
// extra counts bytes of an overlong line that were skipped.
func (s *stream) line(ctx context.Context, f *tailFile, off, next int64, raw []byte, extra int64) error {
	s.c.lines.Inc()
	s.c.bytes.Add(float64(next - off))
	if !s.fingerprint(f) {
		// A line without a complete first line before it: the unterminated
		// tail of a file that will not grow (a short file that was rotated
		// or deleted). Its head is final, so it fingerprints as it is.
		n, fp, err := readFingerprint(f.f, true)
		if err != nil || n == 0 || !s.setFingerprint(f, n, fp) {
			return fmt.Errorf("no fingerprint for %s: %v", f.path, err)
		}
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
		return s.emit(ctx, start, end, l.Time, l.Stream, l.Format, content, int64(len(l.Content))+extra, cut, 1)
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
	g.buf, cut = appendCapped(g.buf, l.Content, s.lineCap)
	g.truncated = g.truncated || cut || extra > 0
	g.size += int64(len(l.Content)) + extra
	g.parts++
	if l.Partial {
		return nil
	}
	return s.emitGroup(ctx, slot, end)
}

// emitGroup ships a joined message. When that fails (the shipper is
// stopping) the group and its hold on the checkpoint stay.
func (s *stream) emitGroup(ctx context.Context, slot int, end position) error {
	g := s.groups[slot]
	if err := s.emit(ctx, g.start, end, g.time, g.stream, g.format, g.buf, g.size, g.truncated, g.parts); err != nil {
		return err
	}
	s.groups[slot] = nil
	s.mu.Lock()
	s.groupAt[slot] = nil // the queued record holds the checkpoint now
	s.mu.Unlock()
	return nil
}

// flushGroups ships partial messages that can no longer be completed.
func (s *stream) flushGroups(ctx context.Context) {
	for slot, g := range s.groups {
		if g != nil {
			end := position{s.curFile(), s.rbOff}
			if end.before(g.start) {
				end = g.start
			}
			_ = s.emitGroup(ctx, slot, end)
		}
	}
}

// emit builds the record for one message and hands it to the output. It
// blocks while the tenant is paused or the buffer budget is spent.
func (s *stream) emit(ctx context.Context, start, end position, ts time.Time, streamName, format string, content []byte, size int64, truncated bool, parts int) error {
	m := s.sh.m
	text, invalid := cleanText(content, truncated)
	now := time.Now().UTC()
	if ts.IsZero() {
		ts = now
	}
	// The record, its id and (when it needed no repair) its text live only
	// until produce returns: the output encodes them synchronously and keeps
	// nothing (see sink.produce), so they reuse the stream's memory.
	rec := &s.rec
	*rec = schemas.Record{
		ID:                s.recordID(start),
		Timestamp:         ts,
		ObservedTimestamp: now,
		Tenant:            s.tenant,
		Stream:            streamName,
		Log:               text,
		InvalidUTF8:       invalid,
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
	if err := s.gate.wait(ctx); err != nil {
		return err
	}
	if err := s.retry.wait(ctx); err != nil {
		return err
	}
	cost := int64(len(text)) + s.overhead
	if err := s.sh.acquire(ctx, cost); err != nil {
		return err
	}
	s.mu.Lock()
	seq := s.seq
	s.seq++
	s.q = append(s.q, ackEntry{start: start, end: end})
	s.inflight++
	s.mu.Unlock()
	s.sh.sink.produce(s.topic, s.recKey, rec, ticket{s, seq, cost})
	return nil
}

// ticket identifies a record in flight for its acknowledgement.
type ticket struct {
	s    *stream
	seq  uint64
	cost int64
}

func (t ticket) done(err error) { t.s.ack(t.seq, t.cost, err) }

// ack is called by the output once per record, in produce order per stream
// (one stream is one key, so one partition), from any goroutine.
func (s *stream) ack(seq uint64, cost int64, err error) {
	s.sh.release(cost)
	s.mu.Lock()
	e := &s.q[seq-s.qBase]
	if err != nil {
		e.state = 2
		if s.failed == nil {
			s.failed = err
		}
	} else {
		e.state = 1
	}
	for s.qHead < len(s.q) && s.q[s.qHead].state == 1 {
		s.watermark = s.q[s.qHead].end
		s.qHead++
	}
	switch {
	case s.qHead == len(s.q):
		s.qBase += uint64(len(s.q))
		s.q, s.qHead = s.q[:0], 0
	case s.qHead > 4096 && s.qHead > len(s.q)/2:
		n := copy(s.q, s.q[s.qHead:])
		s.qBase += uint64(s.qHead)
		s.q, s.qHead = s.q[:n], 0
	}
	s.inflight--
	s.mu.Unlock()
	if err != nil {
		s.sh.m.produceErrors.WithLabelValues(s.tenant, errorReason(err)).Inc()
		return
	}
	s.c.produced.Inc()
	s.gate.ok()
	s.retry.ok()
}

func (s *stream) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// recover handles a failed delivery: wait for every record in flight, then
// rewind to the checkpoint. It returns false when ctx ended first.
func (s *stream) recover(ctx context.Context, cause error) bool {
	for {
		s.mu.Lock()
		n := s.inflight
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		s.sleep(ctx, 10*time.Millisecond)
	}
	reason := errorReason(cause)
	switch reason {
	case reasonTopicMissing, reasonDenied:
		s.gate.pause() // the whole tenant waits
	case reasonTooLarge:
		s.lineCap = max(s.lineCap/4, 1024)
		s.sh.log.Warn("Kafka rejected a record as too large; lowering this stream's message cap", "stream", s.key, "topic", s.topic, "max_line_bytes", s.lineCap)
	default:
		s.retry.pause() // no tight loop on a record Kafka keeps refusing
	}
	s.sh.logLimited("produce:"+s.tenant+":"+reason, "delivery failed; rewinding to the last acknowledged position", "tenant", s.tenant, "topic", s.topic, "reason", reason, "err", cause)

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
	s.groups = [2]*group{}
	s.overlong = nil
	if s.rb != nil {
		s.rbStart, s.rbEnd = 0, 0
	}
	return true
}

// checkpointLocked is the first byte not yet delivered: the watermark, or
// an earlier start of a record still in flight or of a partial message
// still being joined. (A message joined from partial lines starts before
// records of the other stream that were produced, and may be delivered,
// ahead of it.) s.mu must be held.
func (s *stream) checkpointLocked() position {
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
func (s *stream) compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := s.checkpointLocked()
	drop := 0
	for drop < s.cur && s.files[drop] != cp.f {
		s.files[drop].f.Close()
		drop++
	}
	if drop > 0 {
		s.files = append(s.files[:0], s.files[drop:]...)
		s.cur -= drop
	}
}

// position returns the checkpoint entry and the bytes not yet delivered.
func (s *stream) position() (streamPosition, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := s.checkpointLocked()
	var unshipped int64
	seen := false
	for _, f := range s.files {
		if f == cp.f {
			seen = true
		}
		if !seen {
			continue
		}
		if fi, err := f.f.Stat(); err == nil {
			unshipped += fi.Size()
		}
		if f == cp.f {
			unshipped -= cp.off
		}
	}
	return streamPosition{Key: s.key, Path: cp.f.path, fileIdentity: cp.f.id, Offset: cp.off}, max(unshipped, 0)
}

func (s *stream) close() {
	s.openMu.Lock()
	defer s.openMu.Unlock()
	s.closed = true
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		f.f.Close()
	}
}
