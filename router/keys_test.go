package router

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelogs/sluice/internal/testwait"
)

// secretVolume lays out a directory as the kubelet does for a Secret
// mounted as a volume: the files in a hidden timestamped directory,
// ..data a link to it, and each key a link through ..data. write updates
// it as the kubelet does: a new directory, an atomic swap of ..data, then
// links made for new keys and removed for keys that went.
type secretVolume struct {
	t   *testing.T
	dir string
	gen int
}

func (v *secretVolume) write(files map[string]string) {
	v.t.Helper()
	v.swap(files)
	v.links(files)
}

// swap writes the files and swaps ..data, but leaves the links of the
// top directory as they were: the moment between the two.
func (v *secretVolume) swap(files map[string]string) {
	v.t.Helper()
	v.gen++
	ts := fmt.Sprintf("..2025_01_01_00_00_%02d.%d", v.gen, v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		v.t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(v.dir, ts, name), []byte(content), 0o644); err != nil {
			v.t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, old)); err != nil {
			v.t.Fatal(err)
		}
	}
}

// links makes the top directory's links those of files.
func (v *secretVolume) links(files map[string]string) {
	v.t.Helper()
	for name := range files {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			v.t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		v.t.Fatal(err)
	}
	for _, e := range entries {
		if _, keep := files[e.Name()]; !keep && !strings.HasPrefix(e.Name(), ".") {
			if err := os.Remove(filepath.Join(v.dir, e.Name())); err != nil {
				v.t.Fatal(err)
			}
		}
	}
}

// syncBuffer is a log sink safe for the store's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestKeyStore(t *testing.T, dir string) (*keyStore, *metrics, *syncBuffer) {
	t.Helper()
	var logs syncBuffer
	m := newMetrics(prometheus.NewRegistry())
	return newKeyStore(dir, slog.New(slog.NewTextHandler(&logs, nil)), m), m, &logs
}

func wantKey(t *testing.T, s *keyStore, tenant, want string) {
	t.Helper()
	if got := s.get(tenant); string(got.b) != want {
		t.Errorf("key of %s: %q, want %q", tenant, got.b, want)
	}
}

// TestKeyStore: keys are read from a mounted Secret's layout, trimmed, and
// follow its updates: new, rotated and removed keys; short, long and
// misnamed files are refused, logged once and counted at every reading,
// and a refused file's tenant keeps its key. No key reaches the log.
func TestKeyStore(t *testing.T) {
	const (
		shopKey  = "shop-key-0123456789"
		webKey   = "web-key-abcdefghijk"
		shopKey2 = "shop-key-rotated-000"
		newKey   = "new-tenant-key-xyz00"
	)
	vol := &secretVolume{t: t, dir: t.TempDir()}
	vol.write(map[string]string{"shop": shopKey + "\n", "web": webKey + " \r\n\t"})
	// A dotfile is no tenant's, whatever it holds.
	if err := os.WriteFile(filepath.Join(vol.dir, ".hidden"), []byte("hidden-key-0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, m, logs := newTestKeyStore(t, vol.dir)
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	wantKey(t, s, "shop", shopKey)
	wantKey(t, s, "web", webKey)
	wantKey(t, s, "..data", "")
	wantKey(t, s, ".hidden", "")
	wantKey(t, s, "other", "")
	if n := testutil.ToFloat64(m.keys); n != 2 {
		t.Errorf("pseudonym_keys = %v, want 2", n)
	}
	if !strings.Contains(logs.String(), `msg="pseudonym keys loaded" keys=2`) {
		t.Errorf("no lifecycle line with the count of keys: %s", logs)
	}

	// Rotation, a new tenant, a removal.
	vol.write(map[string]string{"shop": shopKey2, "new": newKey})
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	wantKey(t, s, "shop", shopKey2)
	wantKey(t, s, "new", newKey)
	wantKey(t, s, "web", "")
	if n := testutil.ToFloat64(m.keys); n != 2 {
		t.Errorf("pseudonym_keys = %v, want 2", n)
	}
	if !strings.Contains(logs.String(), `msg="pseudonym keys changed" keys=2 added=[new] rotated=[shop] removed=[web]`) {
		t.Errorf("no line of the change: %s", logs)
	}

	// Between the swap of ..data and the removal of a key's link, the link
	// dangles: the key is gone, which is no error.
	vol.swap(map[string]string{"shop": shopKey2})
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	wantKey(t, s, "new", "")
	wantKey(t, s, "shop", shopKey2)
	vol.links(map[string]string{"shop": shopKey2})

	// Refused: too short (a new tenant gets none, a tenant with a key
	// keeps it), too long, not a tenant id.
	files := map[string]string{
		"shop":   "short\n",
		"tiny":   "0123456789abcde\n", // 15 bytes and a newline
		"huge":   strings.Repeat("k", 2000),
		"README": "this-is-not-a-tenant-0123",
		"okay":   "0123456789abcdef", // exactly 16 bytes
	}
	vol.write(files)
	for range 2 {
		if err := s.load(); err != nil {
			t.Fatal(err)
		}
	}
	wantKey(t, s, "shop", shopKey2)
	wantKey(t, s, "tiny", "")
	wantKey(t, s, "huge", "")
	wantKey(t, s, "README", "")
	wantKey(t, s, "okay", "0123456789abcdef")
	for reason, want := range map[string]float64{keyTooShort: 4, keyTooLong: 2, keyNotTenant: 2, keyUnreadable: 0} {
		if n := testutil.ToFloat64(m.keyErrors.WithLabelValues(reason)); n != want {
			t.Errorf("pseudonym_key_errors_total{reason=%q} = %v, want %v (two readings)", reason, n, want)
		}
	}
	if n := testutil.ToFloat64(m.keys); n != 2 {
		t.Errorf("pseudonym_keys = %v, want 2 (shop's kept, okay's)", n)
	}
	text := logs.String()
	for _, name := range []string{"shop", "tiny", "huge", "README"} {
		if n := strings.Count(text, `msg="pseudonym key refused" file=`+name+" "); n != 1 {
			t.Errorf("%s refused: logged %d times over two readings, want once:\n%s", name, n, text)
		}
	}
	if !strings.Contains(text, "file=shop reason=too_short") || !strings.Contains(text, "keeps_previous_key=true") {
		t.Errorf("shop's refusal does not say it keeps its key:\n%s", text)
	}

	// Fixed: the refusals end, the key is in force.
	vol.write(map[string]string{"shop": shopKey, "tiny": "0123456789abcdef0"})
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	wantKey(t, s, "shop", shopKey)
	wantKey(t, s, "tiny", "0123456789abcdef0")

	// The directory gone: an error, and the keys stay.
	if err := os.RemoveAll(vol.dir); err != nil {
		t.Fatal(err)
	}
	if err := s.load(); err == nil {
		t.Error("an unreadable directory is no error")
	}
	wantKey(t, s, "shop", shopKey)
	if n := testutil.ToFloat64(m.keyErrors.WithLabelValues(keyUnreadable)); n != 1 {
		t.Errorf("unreadable = %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "pseudonym keys directory unreadable") {
		t.Errorf("the unreadable directory is not logged:\n%s", logs)
	}

	for _, key := range []string{shopKey, webKey, shopKey2, newKey, "0123456789abcde", "this-is-not-a-tenant", "kkkkkkkk", "hidden-key"} {
		if strings.Contains(logs.String(), key) {
			t.Errorf("the log shows key material %q:\n%s", key, logs)
		}
	}
}

// TestKeyStoreStart: a directory that cannot be read at the start is an
// error (the router does not start); no directory set is no keys.
func TestKeyStoreStart(t *testing.T) {
	s, _, _ := newTestKeyStore(t, filepath.Join(t.TempDir(), "missing"))
	if err := s.load(); err == nil {
		t.Error("a missing directory loads")
	}
	s, m, logs := newTestKeyStore(t, "")
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	s.run(context.Background()) // returns at once
	wantKey(t, s, "shop", "")
	if n := testutil.ToFloat64(m.keys); n != 0 || logs.String() != "" {
		t.Errorf("no directory: %v keys, log %q", n, logs)
	}
}

// TestKeyStoreRun: the store reads the directory again every interval.
func TestKeyStoreRun(t *testing.T) {
	vol := &secretVolume{t: t, dir: t.TempDir()}
	vol.write(map[string]string{"shop": "first-key-0123456789"})
	s, _, _ := newTestKeyStore(t, vol.dir)
	s.interval = 10 * time.Millisecond
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	vol.write(map[string]string{"shop": "second-key-0123456789"})
	testwait.For(t, 10*time.Second, "the rotated key to be read", func() (bool, string) {
		return string(s.get("shop").b) == "second-key-0123456789", ""
	})
}
