// Package nodelog writes container logs the way a Kubernetes node does: CRI
// or docker json-file lines under /var/log/pods/<ns>_<pod>_<uid>/<container>/0.log,
// a /var/log/containers/<pod>_<ns>_<container>-<id>.log symlink to it,
// messages split into partial lines, and kubelet-style rotation (rename,
// then reopen). Tests, the load test and the dev stack use it; it is not
// part of any stage.
package nodelog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
}

// AddContainer creates the container's log file and symlink. The pod uid
// and container id are derived from the names, so they are stable; the
// containers of one pod share its uid and directory, as on a node.
func (n *Node) AddContainer(namespace, pod, name string, format Format) (*Container, error) {
	sum := sha256.Sum256([]byte(namespace + "/" + pod + "/" + name))
	id := hex.EncodeToString(sum[:])
	ps := sha256.Sum256([]byte(namespace + "/" + pod))
	uid := fmt.Sprintf("%x-%x-%x-%x-%x", ps[0:4], ps[4:6], ps[6:8], ps[8:10], ps[10:16])
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
	rotated := fmt.Sprintf("%s.%s-%06d", c.file, time.Now().UTC().Format("20060102-150405"), c.rotations)
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

// Close closes the current file.
func (c *Container) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.Close()
}
