package eslite

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Layout of a store's directory.
const (
	lockFile   = ".lock"
	metaFile   = "store.json" // cluster UUID, templates, roles
	indicesDir = "indices"    // one directory per index
	indexFile  = "index.json" // in an index's directory: UUID, creation, settings, mappings
	opsFile    = "ops.log"    // in an index's directory: its writes, in order
	newPrefix  = "#new-"      // an index being created ('#' is in no index name)
	delPrefix  = "#del-"      // an index being deleted
)

type storeMeta struct {
	ClusterUUID string                     `json:"cluster_uuid"`
	Templates   map[string]json.RawMessage `json:"templates"`
	Roles       map[string]json.RawMessage `json:"roles"`
}

type indexMeta struct {
	UUID     string            `json:"uuid"`
	Created  int64             `json:"created_millis"`
	Settings map[string]string `json:"settings"`
	Mappings []json.RawMessage `json:"mappings"`
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// load locks the directory and reads what it holds: the store's meta
// file, then every index, discarding what an interrupted creation or
// deletion left.
func (s *Store) load() error {
	root := filepath.Join(s.dir, indicesDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("eslite: create %s: %w", root, err)
	}
	unlock, err := lockDir(filepath.Join(s.dir, lockFile))
	if err != nil {
		return err
	}
	s.unlock = unlock
	b, err := os.ReadFile(filepath.Join(s.dir, metaFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := s.saveMeta(); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("eslite: %w", err)
	default:
		var m storeMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("eslite: %s: %w", metaFile, err)
		}
		s.uuid, s.roles = m.ClusterUUID, m.Roles
		if s.roles == nil {
			s.roles = map[string]json.RawMessage{}
		}
		for name, body := range m.Templates {
			t, e := parseTemplate(name, body)
			if e != nil {
				return fmt.Errorf("eslite: %s: template %s: %v", metaFile, name, e)
			}
			s.templates[name] = t
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("eslite: %w", err)
	}
	for _, e := range entries {
		p := filepath.Join(root, e.Name())
		if strings.HasPrefix(e.Name(), newPrefix) || strings.HasPrefix(e.Name(), delPrefix) {
			s.log.Warn("eslite: removing an index whose creation or deletion did not complete", "path", p)
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("eslite: %w", err)
			}
			continue
		}
		if e.IsDir() {
			if err := s.openIndex(p, e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

// saveMeta rewrites the store's meta file; s.mu is held (or the store is
// not yet shared).
func (s *Store) saveMeta() error {
	if s.dir == "" {
		return nil
	}
	m := storeMeta{ClusterUUID: s.uuid, Templates: map[string]json.RawMessage{}, Roles: s.roles}
	for name, t := range s.templates {
		m.Templates[name] = t.body
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err == nil {
		err = writeFileSync(filepath.Join(s.dir, metaFile), b, true)
	}
	return err
}

// openIndex loads the index of a directory: its meta file, then every
// write of its log, replayed in order. A log whose last entry is torn (a
// crash while it was written, before it was acknowledged) is cut before
// it.
func (s *Store) openIndex(dir, name string) error {
	b, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil {
		return fmt.Errorf("eslite: index %s: %w", name, err)
	}
	var meta indexMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return fmt.Errorf("eslite: index %s: %s: %w", name, indexFile, err)
	}
	idx, e := s.newIndex(name, meta.UUID, time.UnixMilli(meta.Created), meta.Settings, meta.Mappings)
	if e != nil {
		return fmt.Errorf("eslite: index %s: %v", name, e)
	}
	idx.dir = dir
	logPath := filepath.Join(dir, opsFile)
	data, err := os.ReadFile(logPath)
	if err != nil {
		return fmt.Errorf("eslite: index %s: %w", name, err)
	}
	pos := 0
	for pos < len(data) {
		id, src, n := readEntry(data[pos:])
		if n == 0 {
			break
		}
		it := bulkItem{action: "index", index: name, id: id, src: src}
		s.put(idx, &it, true)
		if it.err != nil {
			s.log.Warn("eslite: a logged document no longer fits its index; skipped", "index", name, "id", id, "err", it.err)
		}
		pos += n
	}
	if pos < len(data) {
		s.log.Warn("eslite: cutting the torn end of an index's log", "index", name, "offset", pos, "bytes", len(data)-pos)
		if err := os.Truncate(logPath, int64(pos)); err != nil {
			return fmt.Errorf("eslite: index %s: %w", name, err)
		}
	}
	if idx.log, err = os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return fmt.Errorf("eslite: index %s: %w", name, err)
	}
	if err := idx.log.Sync(); err != nil {
		return fmt.Errorf("eslite: index %s: %w", name, err)
	}
	s.indices[name] = idx
	return nil
}

// appendEntry appends a log entry: the payload's length and CRC-32C, each
// 4 bytes little-endian, then the payload: the _id's length (uvarint), the
// _id, the source.
func appendEntry(b []byte, id string, src []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	b = append(b, src...)
	payload := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	return b
}

// readEntry reads the entry at the start of b: n is its size, 0 when it is
// torn or damaged. src aliases b.
func readEntry(b []byte) (id string, src []byte, n int) {
	if len(b) < 8 {
		return "", nil, 0
	}
	size := int(binary.LittleEndian.Uint32(b))
	if size > len(b)-8 {
		return "", nil, 0
	}
	payload := b[8 : 8+size]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return "", nil, 0
	}
	idLen, k := binary.Uvarint(payload)
	if k <= 0 || idLen > uint64(len(payload)-k) {
		return "", nil, 0
	}
	return string(payload[k : k+int(idLen)]), payload[k+int(idLen):], 8 + size
}

// createIndexDir makes the directory of a new index: built under a
// temporary name, then renamed into place, so that a crash leaves either
// a whole index or a temporary directory the next Open removes.
func (s *Store) createIndexDir(idx *index) error {
	root := filepath.Join(s.dir, indicesDir)
	tmp := filepath.Join(root, newPrefix+idx.uuid)
	meta, _ := json.Marshal(indexMeta{UUID: idx.uuid, Created: idx.created.UnixMilli(), Settings: idx.settings, Mappings: idx.mappings})
	err := os.Mkdir(tmp, 0o755)
	if err == nil {
		err = writeFileSync(filepath.Join(tmp, indexFile), meta, false)
	}
	if err == nil {
		err = writeFileSync(filepath.Join(tmp, opsFile), nil, false)
	}
	if err == nil {
		err = syncDir(tmp)
	}
	if err == nil {
		idx.dir = filepath.Join(root, idx.name)
		err = os.Rename(tmp, idx.dir)
	}
	if err == nil {
		err = syncDir(root)
	}
	if err == nil {
		idx.log, err = os.OpenFile(filepath.Join(idx.dir, opsFile), os.O_WRONLY|os.O_APPEND, 0)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return nil
}

// removeIndexDir deletes an index's directory: renamed first, so that a
// crash while removing it leaves a directory the next Open removes.
func (s *Store) removeIndexDir(idx *index) error {
	if idx.log != nil {
		_ = idx.log.Close()
	}
	root := filepath.Join(s.dir, indicesDir)
	gone := filepath.Join(root, delPrefix+idx.uuid)
	if err := os.Rename(idx.dir, gone); err != nil {
		return err
	}
	if err := syncDir(root); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}

// flush writes the index's pending log entries and syncs the log: the
// writes applied so far are then durable.
func (idx *index) flush() error {
	idx.mu.Lock()
	f, deleted := idx.log, idx.deleted
	var err error
	if f != nil && len(idx.pending) > 0 && !deleted {
		_, err = f.Write(idx.pending)
		idx.pending = idx.pending[:0]
	}
	idx.mu.Unlock()
	if f == nil || deleted {
		return nil
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		idx.mu.Lock()
		defer idx.mu.Unlock()
		if idx.deleted {
			return nil // deleted meanwhile: nothing to keep
		}
		idx.broken = err
	}
	return err
}

// writeFileSync writes a file and syncs it; atomically replaces writes to a
// temporary file renamed over path, then syncs the directory.
func writeFileSync(path string, data []byte, atomically bool) error {
	target := path
	if atomically {
		path += ".tmp"
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && atomically {
		if err = os.Rename(path, target); err == nil {
			err = syncDir(filepath.Dir(target))
		}
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
