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
	gate   *tenantGate
	k8s    schemas.Kubernetes
	recKey []byte
	gone   atomic.Bool // the matched path disappeared from the globs
	done   chan struct{}
	c      tenantCounters

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

	mu        sync.Mutex // guards what follows; files is written by run only, under mu
	files     []*tailFile
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
	end   position
	state uint8 // 0 in flight, 1 delivered, 2 failed
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
	// message: the Avro body's other fields, the kgo.Record, the queue entry.
	recordOverhead = 512
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
	t := &tailFile{path: path, f: f, id: fileIdentity{Dev: dev, Inode: ino}}
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
	n, fp, err := readFingerprint(t.f)
	if err != nil || n == 0 {
		return false
	}
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
	var buf [64]byte
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
			s.sh.logLimited("read", "read failed; retrying", "stream", s.key, "err", err)
			s.sleep(ctx, s.sh.cfg.PollInterval)
			continue
		}
		if n > 0 {
			continue
		}
		if s.cur < len(s.files)-1 { // a rotated file is drained: go on to the next
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
			s.sh.m.rotations.WithLabelValues("rename").Inc()
			// The runtime may still write to the old file for a moment after
			// kubelet renamed it: wait, then drain it.
			s.sleep(ctx, min(s.sh.cfg.PollInterval, 200*time.Millisecond))
			if _, err := s.readSome(ctx, false); err != nil {
				continue
			}
			s.openNext(true)
			continue
		case fileTruncated:
			s.sh.m.rotations.WithLabelValues("truncate").Inc()
			s.finishFile(ctx)
			s.flushGroups(ctx) // the rest of a partial message is gone with the truncation
			s.openNext(false)
			continue
		}
		if s.sh.once {
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

type fileState int

const (
	fileUnchanged fileState = iota
	fileRotated
	fileTruncated
	fileMissing
)

// check looks at the stream's path after the newest file was read to its
// end.
func (s *stream) check() fileState {
	cur := s.files[len(s.files)-1]
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
// rotation it first appends every rotation newer than the file that was
// being read: kubelet may have rotated more than once since the last check.
func (s *stream) openNext(rotated bool) {
	target, err := filepath.EvalSymlinks(s.key)
	if err != nil {
		return // gone between check and open; the next check sees it
	}
	var paths []string
	if rotated {
		paths = rotatedAfter(target, s.files[len(s.files)-1])
	}
	paths = append(paths, target)
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
		s.sh.log.Debug("following file", "stream", s.key, "file", p)
	}
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

func (s *stream) releaseBuffer() {
	if s.rb != nil && s.rbStart == s.rbEnd && s.overlong == nil && cap(s.rb) == readBufSize {
		b := s.rb[:readBufSize]
		readBufPool.Put(&b)
		s.rb = nil
	}
}

// readSome reads and ships up to batchLines lines of the current file. At
// the end of the file it returns 0. final means the file will not grow: an
// unterminated last line is shipped too.
func (s *stream) readSome(ctx context.Context, final bool) (int, error) {
	f := s.files[s.cur]
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
		// Only possible when the file changed under us; the checks at the
		// end of the file sort it out.
		return fmt.Errorf("no fingerprint for %s", f.path)
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

func (s *stream) emitGroup(ctx context.Context, slot int, end position) error {
	g := s.groups[slot]
	s.groups[slot] = nil
	err := s.emit(ctx, g.start, end, g.time, g.stream, g.format, g.buf, g.size, g.truncated, g.parts)
	s.mu.Lock()
	s.groupAt[slot] = nil
	s.mu.Unlock()
	return err
}

// flushGroups ships partial messages that can no longer be completed.
func (s *stream) flushGroups(ctx context.Context) {
	for slot, g := range s.groups {
		if g != nil {
			end := position{s.files[s.cur], s.rbOff}
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
	cost := int64(len(text)) + recordOverhead
	if err := s.sh.acquire(ctx, cost); err != nil {
		return err
	}
	s.mu.Lock()
	seq := s.seq
	s.seq++
	s.q = append(s.q, ackEntry{end: end})
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
		s.gate.pause()
	case reasonTooLarge:
		s.lineCap = max(s.lineCap/4, 1024)
		s.sh.log.Warn("Kafka rejected a record as too large; lowering this stream's message cap", "stream", s.key, "topic", s.topic, "max_line_bytes", s.lineCap)
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

// checkpointLocked is the first byte not yet delivered. s.mu must be held.
func (s *stream) checkpointLocked() position {
	cp := s.watermark
	for _, g := range s.groupAt {
		if g != nil && g.before(cp) {
			cp = *g
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
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		f.f.Close()
	}
}
