package shipper

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
)

// tailFile is one open file of a follower: the current log file, or one of its
// rotations, plain or compressed. Positions in a compressed rotation are
// offsets in its uncompressed data, so a position saved while the file was
// plain stays valid once kubelet has compressed it.
type tailFile struct {
	seq      int // order within the follower
	path     string
	opened   time.Time
	f        *os.File
	gz       *gzSource // set for a compressed rotation
	id       fileIdentity
	idPrefix []byte // hash input shared by every record id of this file; nil until the fingerprint is known

	// Owned by the follower's reader.
	size      atomic.Int64 // size last seen (uncompressed; -1 for a compressed file not read to its end)
	deletedAt time.Time    // when the file was first seen deleted while held open
	released  bool         // given up by the held-files policy
}

// ReadAt reads the file's (uncompressed) bytes at off.
func (t *tailFile) ReadAt(p []byte, off int64) (int, error) {
	if t.gz != nil {
		return t.gz.ReadAt(p, off)
	}
	return t.f.ReadAt(p, off)
}

func (t *tailFile) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// final reports whether the file can no longer grow: a compressed rotation.
func (t *tailFile) final() bool { return t.gz != nil }

// matches reports whether t is the file id names. A plain file is the same
// file when inode and first-line fingerprint match. A compressed rotation is
// a new inode holding the same data, so it matches by fingerprint alone; the
// first line carries the runtime's nanosecond timestamp, which makes a
// collision between two rotations of one container practically impossible.
func (t *tailFile) matches(id fileIdentity) bool {
	if id.FPLen == 0 {
		return false
	}
	if t.gz == nil && t.id.Inode != id.Inode {
		return false
	}
	ok, err := fingerprintMatches(t, id)
	return err == nil && ok
}

// gzSource reads a gzipped rotation as if it were the plain file: ReadAt at
// an uncompressed offset. Reading is sequential in practice (a rewind after a
// failed delivery restarts decompression from the start), so it keeps one
// decompressor and its position.
type gzSource struct {
	f   *os.File
	br  *bufio.Reader
	zr  *gzip.Reader
	pos int64 // uncompressed offset of the next byte zr returns
	err error // a decompression error: the rest of the file cannot be read
}

func newGzSource(f *os.File) *gzSource { return &gzSource{f: f} }

func (g *gzSource) reset() error {
	if _, err := g.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if g.br == nil {
		g.br = bufio.NewReaderSize(g.f, 32<<10)
	} else {
		g.br.Reset(g.f)
	}
	g.pos, g.err = 0, nil
	if g.zr == nil {
		zr, err := gzip.NewReader(g.br)
		if err != nil {
			return err
		}
		g.zr = zr
		return nil
	}
	return g.zr.Reset(g.br)
}

// ReadAt returns io.EOF at the end of the data. A file that cannot be
// decompressed (truncated, corrupt) also ends there; Err tells them apart.
func (g *gzSource) ReadAt(p []byte, off int64) (int, error) {
	if g.zr == nil || off < g.pos {
		if err := g.reset(); err != nil {
			g.err = fmt.Errorf("decompress: %w", err)
			return 0, io.EOF
		}
	}
	if g.err != nil {
		return 0, io.EOF
	}
	if off > g.pos {
		n, err := io.CopyN(io.Discard, g.zr, off-g.pos)
		g.pos += n
		if err != nil {
			return 0, g.fail(err)
		}
	}
	n := 0
	for n < len(p) {
		k, err := g.zr.Read(p[n:])
		n += k
		if err != nil {
			g.pos += int64(n)
			return n, g.fail(err)
		}
	}
	g.pos += int64(n)
	return n, nil
}

// fail ends the data: cleanly at io.EOF; at anything else (a follower cut
// short ends in io.ErrUnexpectedEOF) the rest of the file is unreadable.
func (g *gzSource) fail(err error) error {
	if err != io.EOF {
		g.err = fmt.Errorf("decompress: %w", err)
	}
	return io.EOF
}

// Err is the decompression error that ended the data early, if any.
func (g *gzSource) Err() error { return g.err }

// unread is how many compressed bytes were not decompressed: what a
// decompression error left unread.
func (g *gzSource) unread() int64 {
	pos, err := g.f.Seek(0, io.SeekCurrent)
	fi, serr := g.f.Stat()
	if err != nil || serr != nil || g.br == nil {
		return 0
	}
	return max(fi.Size()-(pos-int64(g.br.Buffered())), 0)
}

// openTailFile opens path as a plain file, or, when its name ends in .gz,
// as a compressed rotation.
func openTailFile(path string) (*tailFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	dev, ino, _ := statIdentity(fi)
	t := &tailFile{path: path, f: f, opened: time.Now(), id: fileIdentity{Dev: dev, Inode: ino}}
	t.size.Store(fi.Size())
	if strings.HasSuffix(path, ".gz") {
		t.gz = newGzSource(f)
		t.size.Store(-1)
	}
	return t, nil
}

// rotation is a rotated file of a container log, plain or compressed.
type rotation struct {
	path  string
	gz    bool
	inode uint64 // of the file on disk (for a plain rotation, the inode it had as the current file)
}

// listRotations lists the rotations of a container's log file target,
// oldest first. Kubelet renames <n>.log to <n>.log.<timestamp> and later
// compresses it to <n>.log.<timestamp>.gz; docker's json-file driver renames
// <id>-json.log to <id>-json.log.1, shifting older ones up (.2, .3, compressed
// as .N.gz). Timestamps sort as text; docker's numbers sort the other way.
// Temporary files of a compression in progress (.tmp) are skipped: the
// plain file is still there until the compressed one is complete.
func listRotations(target string) ([]rotation, error) {
	dir, base := filepath.Dir(target), filepath.Base(target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type sortable struct {
		rotation
		num    int64 // docker's generation number, -1 for a timestamp
		suffix string
	}
	var rots []sortable
	for _, e := range entries {
		n := e.Name()
		suffix, ok := strings.CutPrefix(n, base+".")
		if !ok || suffix == "" || strings.HasSuffix(n, ".tmp") || strings.Contains(n, ".tmp.") {
			continue
		}
		gz := false
		if s, ok := strings.CutSuffix(suffix, ".gz"); ok {
			suffix, gz = s, true
		}
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		_, ino, _ := statIdentity(fi)
		num := int64(-1)
		if v, err := strconv.ParseInt(suffix, 10, 64); err == nil && v >= 0 {
			num = v
		}
		rots = append(rots, sortable{rotation{filepath.Join(dir, n), gz, ino}, num, suffix})
	}
	slices.SortFunc(rots, func(a, b sortable) int {
		if a.num >= 0 && b.num >= 0 && a.num != b.num {
			return int(b.num - a.num) // docker: a higher number is older
		}
		if c := strings.Compare(a.suffix, b.suffix); c != 0 {
			return c
		}
		// The same rotation plain and compressed (kubelet removes the
		// plain file right after): the plain one first.
		if a.gz != b.gz && !a.gz {
			return -1
		}
		return 1
	})
	out := make([]rotation, 0, len(rots))
	for i, r := range rots {
		if i > 0 && r.gz && !rots[i-1].gz && r.suffix == rots[i-1].suffix && r.num == rots[i-1].num {
			continue // being compressed: the plain file holds the same data
		}
		out = append(out, r.rotation)
	}
	return out, nil
}

// olderThan cuts rots (oldest first) before cur's own rotation. cur is the
// current file, opened before the rotations were listed; kubelet may have
// rotated it in between, and then the listing holds it under its new name,
// and maybe rotations newer still. Those are found when the follower follows
// the rotation of cur; read before cur they would be read twice, or out of
// order.
func olderThan(rots []rotation, cur *tailFile) []rotation {
	for i, r := range rots {
		if !r.gz && r.inode == cur.id.Inode {
			return rots[:i]
		}
	}
	return rots
}
