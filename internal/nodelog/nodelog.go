// Package nodelog writes container logs the way a Kubernetes node does: CRI
// or docker json-file lines under /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log,
// a /var/log/containers/<pod>_<ns>_<container>-<id>.log symlink to it,
// messages split into partial lines, and kubelet-style rotation: rename,
// then reopen (Rotate), or all of kubelet's container log manager, with
// older rotations compressed and the oldest deleted (RotateKubelet). Tests,
// the load test and the dev stack use it; it is not part of any stage.
package nodelog

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Format is a container runtime's log format.
type Format int

const (
	CRI    Format = iota // containerd / CRI-O: "<ts> <stream> <P|F> <content>"
	Docker               // docker json-file: {"log":"...","stream":"...","time":"..."}
)

// Node is a node's log directory tree rooted at Root (Root/var/log/...).
type Node struct {
	Root string
}

// ContainersGlob is the glob a shipper on this node tails.
func (n *Node) ContainersGlob() string {
	return filepath.Join(n.Root, "var", "log", "containers", "*.log")
}

// Container is one container's log. Its methods are safe for concurrent use.
type Container struct {
	Namespace, Pod, PodUID, Name, ID string
	Format                           Format
	// SplitAt is the longest content one physical line carries; longer
	// messages become partial lines (containerd and docker use 16 KiB).
	SplitAt int

	mu        sync.Mutex
	dir       string // the pods directory of this container
	file      string // .../0.log
	link      string // the /var/log/containers symlink
	f         *os.File
	rotations int

	rotMu     sync.Mutex // serializes RotateKubelet
	lastStamp time.Time  // timestamp of the last RotateKubelet, guarded by rotMu
}

// AddContainer creates the container's log file and symlink. The pod uid
// and container id are derived from the names, so they are stable; the
// containers of one pod share its uid and directory, as on a node.
func (n *Node) AddContainer(namespace, pod, name string, format Format) (*Container, error) {
	sum := sha256.Sum256([]byte(namespace + "/" + pod + "/" + name))
	id := hex.EncodeToString(sum[:])
	uid := PodUID(namespace, pod)
	c := &Container{
		Namespace: namespace, Pod: pod, PodUID: uid, Name: name, ID: id,
		Format: format, SplitAt: 16 << 10,
	}
	c.dir = filepath.Join(n.Root, "var", "log", "pods", namespace+"_"+pod+"_"+uid, name)
	c.file = filepath.Join(c.dir, "0.log")
	c.link = filepath.Join(n.Root, "var", "log", "containers", pod+"_"+namespace+"_"+name+"-"+id+".log")
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(c.link), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(c.file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	c.f = f
	rel, err := filepath.Rel(filepath.Dir(c.link), c.file)
	if err != nil {
		return nil, err
	}
	if err := os.Symlink(rel, c.link); err != nil && !os.IsExist(err) {
		return nil, err
	}
	return c, nil
}

// PodUID is the uid AddContainer gives the pod namespace/pod: a UUID
// derived from the names.
func PodUID(namespace, pod string) string {
	ps := sha256.Sum256([]byte(namespace + "/" + pod))
	return fmt.Sprintf("%x-%x-%x-%x-%x", ps[0:4], ps[4:6], ps[6:8], ps[8:10], ps[10:16])
}

// LinkPath is the /var/log/containers path of the container.
func (c *Container) LinkPath() string { return c.link }

// FilePath is the current log file.
func (c *Container) FilePath() string { return c.file }

// Write appends one message, split into partial lines when it is longer
// than SplitAt, with event time t.
func (c *Container) Write(t time.Time, stream, msg string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.f.Write(c.Encode(t, stream, msg))
	return err
}

// Encode returns the physical lines for one message without writing them.
func (c *Container) Encode(t time.Time, stream, msg string) []byte {
	var b []byte
	ts := t.UTC().Format(time.RFC3339Nano)
	for first := true; first || msg != ""; first = false {
		part, last := msg, true
		if c.SplitAt > 0 && len(part) > c.SplitAt {
			part, last = msg[:c.SplitAt], false
		}
		msg = msg[len(part):]
		switch c.Format {
		case Docker:
			if last {
				part += "\n"
			}
			line, _ := json.Marshal(struct {
				Log    string `json:"log"`
				Stream string `json:"stream"`
				Time   string `json:"time"`
			}{part, stream, ts})
			b = append(append(b, line...), '\n')
		default:
			tag := "F"
			if !last {
				tag = "P"
			}
			b = append(b, ts+" "+stream+" "+tag+" "+part+"\n"...)
		}
	}
	return b
}

// WriteRaw appends bytes as they are (for malformed input).
func (c *Container) WriteRaw(b []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.f.Write(b)
	return err
}

// Size is the size of the current log file.
func (c *Container) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	fi, err := c.f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Rotate renames the current file to 0.log.<timestamp> and opens a new
// 0.log, as kubelet does. It returns the rotated file's path.
func (c *Container) Rotate() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotations++
	return c.renameAndReopen(fmt.Sprintf("%s.%s-%06d", c.file, time.Now().UTC().Format("20060102-150405"), c.rotations))
}

// renameAndReopen renames the current file to rotated and opens a new one
// in its place, as the runtime does when kubelet asks it to reopen. c.mu
// must be held.
func (c *Container) renameAndReopen(rotated string) (string, error) {
	if err := os.Rename(c.file, rotated); err != nil {
		return "", err
	}
	f, err := os.OpenFile(c.file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	old := c.f
	c.f = f
	return rotated, old.Close()
}

// Rotated lists the container's rotated files, oldest first.
func (c *Container) Rotated() []string {
	m, _ := filepath.Glob(c.file + ".*")
	out := m[:0]
	for _, p := range m {
		if !strings.HasSuffix(p, ".gz") {
			out = append(out, p)
		}
	}
	return out
}

// Kubelet's names for rotated files: 0.log.<timestamp>, compressed to
// 0.log.<timestamp>.gz through 0.log.<timestamp>.tmp.
const (
	kubeletStamp  = "20060102-150405"
	compressedExt = ".gz"
	tmpExt        = ".tmp"
)

// RotateKubelet rotates the log the way kubelet's container log manager
// does when it finds 0.log at or over containerLogMaxSize, keeping at most
// maxFiles files (containerLogMaxFiles, at least 2) including 0.log:
//
//  1. leftovers of an interrupted compression are removed: every
//     <name>.tmp, and a plain rotation whose <name>.gz exists;
//  2. the oldest rotations (by name, which is by time) are deleted until
//     maxFiles-2 are left: 0.log and the rotation made now complete
//     maxFiles;
//  3. every plain rotation left, which is the newest one (the previous
//     call compressed the others), is compressed: gzip into <name>.tmp,
//     rename that to <name>.gz, remove <name>;
//  4. 0.log is renamed to 0.log.<timestamp> and a new 0.log is opened.
//
// So the newest rotation stays plain, for a reader still draining it, and
// older ones exist only as .gz until they are deleted. Writes go on during
// steps 1 to 3, as the runtime's do; calls are serialized. The timestamp
// has kubelet's one-second resolution; a rotation within the second of the
// previous one takes the next second, so names stay unique and in order
// (kubelet itself looks every 10s). Do not mix it with Rotate on one
// container. It returns the rotated file's path.
func (c *Container) RotateKubelet(maxFiles int) (string, error) {
	c.rotMu.Lock()
	defer c.rotMu.Unlock()
	return c.rotateKubelet(maxFiles)
}

// RotateKubeletIfFull calls RotateKubelet when the current file has
// reached maxSize bytes (containerLogMaxSize) and returns the rotated
// file's path, or "" when the file is smaller. Size and rotation are one
// step: concurrent calls rotate a full file once.
func (c *Container) RotateKubeletIfFull(maxSize int64, maxFiles int) (string, error) {
	c.rotMu.Lock()
	defer c.rotMu.Unlock()
	if c.Size() < maxSize {
		return "", nil
	}
	return c.rotateKubelet(maxFiles)
}

// rotateKubelet is RotateKubelet with c.rotMu held.
func (c *Container) rotateKubelet(maxFiles int) (string, error) {
	logs, err := c.rotatedFiles()
	if err != nil {
		return "", err
	}
	// 1. Leftovers.
	var kept []string
	for _, l := range logs {
		if strings.HasSuffix(l, tmpExt) || (!strings.HasSuffix(l, compressedExt) && slices.Contains(logs, l+compressedExt)) {
			if err := os.Remove(l); err != nil {
				return "", err
			}
			continue
		}
		kept = append(kept, l)
	}
	logs = kept
	// 2. The oldest go.
	for len(logs) > max(maxFiles-2, 0) {
		if err := os.Remove(logs[0]); err != nil {
			return "", err
		}
		logs = logs[1:]
	}
	// 3. Compress what is still plain.
	for _, l := range logs {
		if !strings.HasSuffix(l, compressedExt) {
			if err := compress(l); err != nil {
				return "", err
			}
		}
	}
	// 4. Rename and reopen.
	stamp := time.Now().UTC().Truncate(time.Second)
	if !stamp.After(c.lastStamp) {
		stamp = c.lastStamp.Add(time.Second)
	}
	c.lastStamp = stamp
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renameAndReopen(c.file + "." + stamp.Format(kubeletStamp))
}

// rotatedFiles lists every file kubelet's rotation owns next to 0.log (plain,
// compressed and temporary), sorted by name.
func (c *Container) rotatedFiles() ([]string, error) {
	m, err := filepath.Glob(c.file + ".*")
	slices.Sort(m)
	return m, err
}

// compress gzips path into path.gz, as kubelet does: through a temporary
// file renamed into place, then the plain file is removed.
func compress(path string) error {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	tmp := path + tmpExt
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode())
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after a failure; gone by then otherwise
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path+compressedExt); err != nil {
		return err
	}
	return os.Remove(path)
}

// Rotations lists the container's rotated files, plain (0.log.<timestamp>)
// and compressed (0.log.<timestamp>.gz), oldest first; a compression's
// temporary file is left out.
func (c *Container) Rotations() []string {
	m, _ := c.rotatedFiles()
	out := m[:0]
	for _, p := range m {
		if !strings.HasSuffix(p, tmpExt) {
			out = append(out, p)
		}
	}
	return out
}

// Close closes the current file.
func (c *Container) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.Close()
}
