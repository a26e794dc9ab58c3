package shipper

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"syscall"
)

// fingerprintMax is how much of a file's head identifies it: the first line,
// or this many bytes when the first line is longer.
const fingerprintMax = 1024

// fileIdentity says which file a position refers to. Names cannot: kubelet
// renames on rotation, and inodes are reused once a file is deleted. A file
// is the same file when its inode and the hash of its first line match; the
// device number is kept for diagnosis only, because it can change across
// node reboots while the files persist.
type fileIdentity struct {
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
	// FPLen is the number of head bytes hashed into FP; 0 while the file has
	// no complete first line yet (then nothing was read from it either).
	FPLen int    `json:"fp_len"`
	FP    uint64 `json:"fp"`
}

func (id fileIdentity) String() string {
	return fmt.Sprintf("inode %d fp %016x/%d", id.Inode, id.FP, id.FPLen)
}

// statIdentity returns the device and inode of fi.
func statIdentity(fi os.FileInfo) (dev, inode uint64, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return uint64(st.Dev), uint64(st.Ino), true //nolint:unconvert // Dev is int32 on some platforms
}

// readFingerprint hashes the head of f: its first line (with the newline) or
// its first fingerprintMax bytes. It returns fpLen 0 when the file has no
// complete first line yet and is shorter than fingerprintMax, unless final
// says the file will not grow: then what there is is the head.
func readFingerprint(f io.ReaderAt, final bool) (fpLen int, fp uint64, err error) {
	buf := make([]byte, fingerprintMax)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, fmt.Errorf("read file head: %w", err)
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i+1]
	} else if n < fingerprintMax && !final {
		return 0, 0, nil
	}
	if len(buf) == 0 {
		return 0, 0, nil
	}
	return len(buf), hashHead(buf), nil
}

// fingerprintMatches reports whether f's head still hashes to id's
// fingerprint.
func fingerprintMatches(f io.ReaderAt, id fileIdentity) (bool, error) {
	if id.FPLen == 0 {
		return true, nil
	}
	buf := make([]byte, id.FPLen)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read file head: %w", err)
	}
	if n < id.FPLen {
		return false, nil
	}
	return hashHead(buf) == id.FP, nil
}

func hashHead(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}
