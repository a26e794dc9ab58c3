package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// Key files. SLUICE_ROUTER_PSEUDONYM_KEYS_DIR holds one file per tenant,
// named by the tenant id, holding the tenant's key: the layout of a
// Kubernetes Secret mounted as a volume, whose keys become files. The
// kubelet updates such a volume in place: it writes the new files to a new
// hidden directory and swaps the symbolic link ..data to it, and the
// tenants' files are links through ..data. So the directory is read again
// every keyRescan, and a new, changed or removed file takes effect without
// a restart; names starting with a dot (..data and the hidden directories)
// are not tenants.
const (
	// keyRescan is how often the keys directory is read.
	keyRescan = 30 * time.Second
	// MinPseudonymKeyLen is the shortest key a key file may hold.
	MinPseudonymKeyLen = 16
	// maxPseudonymKeyLen is the longest: a larger file is not a key.
	maxPseudonymKeyLen = 1024
)

// Why a key file is refused: the reason label of
// sluice_router_pseudonym_key_errors_total.
const (
	keyTooShort   = "too_short"
	keyTooLong    = "too_long"
	keyNotTenant  = "not_a_tenant"
	keyUnreadable = "unreadable"
)

// keyStore holds the tenants' pseudonym keys read from a directory. get is
// safe for concurrent use and takes no lock: every load replaces the whole
// map. Keys are never logged, nor put in errors or metrics: only their
// number and the tenants' names are.
type keyStore struct {
	dir      string // "": no keys
	interval time.Duration
	log      *slog.Logger
	m        *metrics

	keys atomic.Pointer[map[string]PseudonymKey]

	mu       sync.Mutex        // one load at a time
	loaded   bool              // a load has succeeded
	problems map[string]string // file name ("" for the directory) -> why it was refused at the last load
}

func newKeyStore(dir string, log *slog.Logger, m *metrics) *keyStore {
	return &keyStore{dir: dir, interval: keyRescan, log: log, m: m, problems: map[string]string{}}
}

// get returns tenant's key; the zero key when it has none.
func (s *keyStore) get(tenant string) PseudonymKey {
	if m := s.keys.Load(); m != nil {
		return (*m)[tenant]
	}
	return PseudonymKey{}
}

// run reads the directory every interval until ctx ends.
func (s *keyStore) run(ctx context.Context) {
	if s.dir == "" {
		return
	}
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.load() // logged and counted by load
		}
	}
}

// load reads the directory and puts its keys in force. A file that is
// refused (shorter than MinPseudonymKeyLen after its trailing white space
// is trimmed, longer than maxPseudonymKeyLen, unreadable, or not named by
// a tenant id) is logged, once, and counted at every load; its tenant
// keeps the key it had, if any. A directory that cannot be read is an
// error, and the keys in force stay.
func (s *keyStore) load() error {
	if s.dir == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		s.m.keyErrors.WithLabelValues(keyUnreadable).Inc()
		if s.loaded && s.problems[""] != err.Error() {
			s.log.Error("pseudonym keys directory unreadable; the keys in force stay", "dir", s.dir, "err", err)
		}
		s.problems[""] = err.Error()
		return err
	}
	var old map[string]PseudonymKey
	if p := s.keys.Load(); p != nil {
		old = *p
	}
	next := make(map[string]PseudonymKey, len(entries))
	problems := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		key, reason, err := readKey(s.dir, name)
		switch {
		case errors.Is(err, errNotKeyFile):
			continue
		case err != nil:
			s.m.keyErrors.WithLabelValues(reason).Inc()
			problems[name] = err.Error()
			kept, ok := old[name]
			if ok {
				next[name] = kept
			}
			if s.problems[name] != err.Error() {
				s.log.Error("pseudonym key refused", "file", name, "reason", reason, "err", err, "keeps_previous_key", ok)
			}
		default:
			next[name] = key
		}
	}
	s.problems = problems
	s.keys.Store(&next)
	s.m.keys.Set(float64(len(next)))
	if !s.loaded {
		s.loaded = true
		s.log.Info("pseudonym keys loaded", "keys", len(next), "dir", s.dir)
		return nil
	}
	var added, rotated, removed []string
	for name, k := range next {
		switch o, ok := old[name]; {
		case !ok:
			added = append(added, name)
		case !bytes.Equal(o.b, k.b):
			rotated = append(rotated, name)
		}
	}
	for name := range old {
		if _, ok := next[name]; !ok {
			removed = append(removed, name)
		}
	}
	if len(added)+len(rotated)+len(removed) > 0 {
		slices.Sort(added)
		slices.Sort(rotated)
		slices.Sort(removed)
		s.log.Info("pseudonym keys changed", "keys", len(next), "added", added, "rotated", rotated, "removed", removed)
	}
	return nil
}

// errNotKeyFile is readKey's answer for an entry that is no key file: a
// directory, or a link whose target is gone (the kubelet removes a key's
// link just after the swap of ..data).
var errNotKeyFile = errors.New("not a key file")

// readKey reads the key file name of dir. On error it returns a reason
// (a label value) too. No error tells anything of the file's content but
// its size.
func readKey(dir, name string) (PseudonymKey, string, error) {
	if err := kafka.ValidateTenant(name); err != nil {
		return PseudonymKey{}, keyNotTenant, fmt.Errorf("the file name is not a tenant id (1-63 characters of a-z, 0-9 and '-')")
	}
	f, err := os.Open(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return PseudonymKey{}, "", errNotKeyFile
	}
	if err != nil {
		return PseudonymKey{}, keyUnreadable, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return PseudonymKey{}, keyUnreadable, err
	} else if fi.IsDir() {
		return PseudonymKey{}, "", errNotKeyFile
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPseudonymKeyLen+1))
	if err != nil {
		return PseudonymKey{}, keyUnreadable, err
	}
	if len(b) > maxPseudonymKeyLen {
		return PseudonymKey{}, keyTooLong, fmt.Errorf("the file is longer than %d bytes", maxPseudonymKeyLen)
	}
	b = bytes.TrimRightFunc(b, unicode.IsSpace)
	if len(b) < MinPseudonymKeyLen {
		return PseudonymKey{}, keyTooShort, fmt.Errorf("the key is shorter than %d bytes (after trailing white space)", MinPseudonymKeyLen)
	}
	return PseudonymKey{b: b}, "", nil
}
