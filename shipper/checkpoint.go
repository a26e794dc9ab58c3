package shipper

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Checkpoint files. The shipper keeps one file per node with the position
// of every container log, replaced atomically (write a temporary file,
// fsync it, rename it over the old one, fsync the directory). Before the
// rename the previous generation is kept (hard-linked) as
// checkpoints.json.prev, so a
// checkpoint damaged on disk falls back to an older position: that re-ships
// some lines (with the same record ids) but never skips one.
const (
	checkpointFile    = "checkpoints.json"
	checkpointVersion = 1
)

// ErrCorruptCheckpoint is wrapped by loadCheckpoints when a checkpoint file
// cannot be parsed.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

// checkpoints is the on-disk document.
type checkpoints struct {
	Version int       `json:"version"`
	Node    string    `json:"node"`
	SavedAt time.Time `json:"saved_at"`
	// Followers are the positions of the followers, under the key
	// "streams" (their name before), so that a checkpoint file reads the
	// same before and after an upgrade.
	Followers []followerPosition `json:"streams"`
	byKey     map[string]followerPosition
}

// followerPosition is the first byte of one container log that Kafka has
// not yet acknowledged (everything before it is delivered).
type followerPosition struct {
	// Key is the matched path that names the follower (the
	// /var/log/containers symlink).
	Key string `json:"key"`
	// Path is where the file was when it was opened (for a rotated file,
	// its name before the rotation).
	Path string `json:"path"`
	fileIdentity
	Offset int64 `json:"offset"`
	// Size is the file's size when last seen (uncompressed): if the file
	// is gone when the follower is reopened, Size - Offset bytes at least
	// were lost with it.
	Size int64 `json:"size,omitempty"`
}

// checkpointStore reads and writes the checkpoint file in a directory. It is
// used by one goroutine at a time.
type checkpointStore struct {
	dir string
}

func (s checkpointStore) path() string { return filepath.Join(s.dir, checkpointFile) }

// load reads the saved positions. A missing file is no error (empty set). A
// corrupt file is moved aside and the previous generation is tried; the
// returned error (wrapping ErrCorruptCheckpoint) is for reporting only, the
// returned positions are always usable.
func (s checkpointStore) load() (map[string]followerPosition, error) {
	cur, err := readCheckpointFile(s.path())
	if err == nil {
		return cur, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		// A crash between the two renames of save leaves only .prev.
		prev, perr := readCheckpointFile(s.path() + ".prev")
		if perr == nil || errors.Is(perr, fs.ErrNotExist) {
			return prev, nil
		}
		return map[string]followerPosition{}, perr
	}
	// Keep the damaged file for a person to look at, out of the way of the
	// next save.
	aside := fmt.Sprintf("%s.corrupt-%d", s.path(), time.Now().Unix())
	_ = os.Rename(s.path(), aside)
	prev, perr := readCheckpointFile(s.path() + ".prev")
	if perr != nil {
		return map[string]followerPosition{}, fmt.Errorf("%w (moved to %s; no usable previous generation, reading every file from its start): %w", err, aside, perr)
	}
	return prev, fmt.Errorf("%w (moved to %s; using the previous generation)", err, aside)
}

func readCheckpointFile(path string) (map[string]followerPosition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return map[string]followerPosition{}, err
	}
	out, err := parseCheckpoints(b)
	if err != nil {
		return out, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// parseCheckpoints decodes a checkpoint document. On error it returns an
// empty set and an error wrapping ErrCorruptCheckpoint.
func parseCheckpoints(b []byte) (map[string]followerPosition, error) {
	var doc checkpoints
	if err := json.Unmarshal(b, &doc); err != nil {
		return map[string]followerPosition{}, fmt.Errorf("%w: %w", ErrCorruptCheckpoint, err)
	}
	if doc.Version != checkpointVersion {
		return map[string]followerPosition{}, fmt.Errorf("%w: unknown version %d", ErrCorruptCheckpoint, doc.Version)
	}
	out := make(map[string]followerPosition, len(doc.Followers))
	for _, p := range doc.Followers {
		if p.Key == "" || p.Offset < 0 || p.FPLen < 0 || p.FPLen > fingerprintMax {
			return map[string]followerPosition{}, fmt.Errorf("%w: bad entry for %q", ErrCorruptCheckpoint, p.Key)
		}
		out[p.Key] = p
	}
	return out, nil
}

// save writes positions atomically.
func (s checkpointStore) save(node string, positions []followerPosition) error {
	sort.Slice(positions, func(i, j int) bool { return positions[i].Key < positions[j].Key })
	b, err := json.MarshalIndent(checkpoints{
		Version:   checkpointVersion,
		Node:      node,
		SavedAt:   time.Now().UTC(),
		Followers: positions,
	}, "", " ")
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("create checkpoint dir: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, checkpointFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("create checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync checkpoint %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close checkpoint %s: %w", tmp.Name(), err)
	}
	if err := s.keepPrevious(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), s.path()); err != nil {
		return fmt.Errorf("replace checkpoint: %w", err)
	}
	return syncDir(s.dir)
}

// keepPrevious makes checkpoints.json.prev the current generation. It is a
// hard link, so checkpoints.json never stops existing: a reader (or a crash)
// between this and the rename over it still finds the current file. Where
// the filesystem has no hard links, the current file is renamed instead and
// load's fallback to .prev covers the gap.
func (s checkpointStore) keepPrevious() error {
	cur, prev := s.path(), s.path()+".prev"
	if err := os.Remove(prev); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keep previous checkpoint: %w", err)
	}
	err := os.Link(cur, prev)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.Rename(cur, prev); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("keep previous checkpoint: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open checkpoint dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync checkpoint dir: %w", err)
	}
	return nil
}
