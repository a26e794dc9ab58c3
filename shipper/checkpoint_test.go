package shipper

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCheckpointRoundTrip(t *testing.T) {
	store := checkpointStore{dir: filepath.Join(t.TempDir(), "cp")}
	got, err := store.load()
	if err != nil || len(got) != 0 {
		t.Fatalf("load of a missing checkpoint = %v, %v; want empty, nil", got, err)
	}
	want := []followerPosition{
		{Key: "/var/log/containers/a.log", Path: "/var/log/pods/x/a/0.log", fileIdentity: fileIdentity{Dev: 1, Inode: 42, FPLen: 80, FP: 0xdeadbeef}, Offset: 1234},
		{Key: "/var/log/containers/b.log", Path: "/var/log/pods/x/b/0.log.20261121-101500", fileIdentity: fileIdentity{Inode: 7}, Offset: 0},
	}
	for i := 0; i < 3; i++ { // several generations: .prev is kept
		if err := store.save("node-1", append([]followerPosition(nil), want...)); err != nil {
			t.Fatal(err)
		}
	}
	got, err = store.load()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !reflect.DeepEqual(got[w.Key], w) {
			t.Errorf("position %s = %+v, want %+v", w.Key, got[w.Key], w)
		}
	}
	if _, err := os.Stat(store.path() + ".prev"); err != nil {
		t.Errorf("previous generation not kept: %v", err)
	}
	tmps, _ := filepath.Glob(filepath.Join(store.dir, "*.tmp-*"))
	if len(tmps) != 0 {
		t.Errorf("temporary files left behind: %v", tmps)
	}
}

func TestCheckpointCorrupt(t *testing.T) {
	good := []followerPosition{{Key: "k", Path: "p", fileIdentity: fileIdentity{Inode: 1}, Offset: 10}}
	tests := []struct {
		name       string
		current    string // "" = missing
		prev       bool   // a good previous generation exists
		wantOffset int64  // -1 = no position for "k"
		wantErr    bool
	}{
		{"garbage falls back to previous", "{not json", true, 10, true},
		{"garbage without previous starts over", "\x00\x01", false, -1, true},
		{"unknown version", `{"version":99,"streams":[]}`, true, 10, true},
		{"negative offset", `{"version":1,"streams":[{"key":"k","offset":-5}]}`, true, 10, true},
		{"missing current uses previous", "", true, 10, false},
		{"truncated write", `{"version":1,"streams":[{"key":"k","off`, false, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := checkpointStore{dir: t.TempDir()}
			if tt.prev {
				if err := store.save("n", good); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(store.path(), store.path()+".prev"); err != nil {
					t.Fatal(err)
				}
			}
			if tt.current != "" {
				if err := os.WriteFile(store.path(), []byte(tt.current), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := store.load()
			if (err != nil) != tt.wantErr {
				t.Fatalf("load error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrCorruptCheckpoint) {
				t.Errorf("error %v does not wrap ErrCorruptCheckpoint", err)
			}
			p, ok := got["k"]
			switch {
			case tt.wantOffset < 0 && ok:
				t.Errorf("got position %+v, want none", p)
			case tt.wantOffset >= 0 && (!ok || p.Offset != tt.wantOffset):
				t.Errorf("got position %+v (found %v), want offset %d", p, ok, tt.wantOffset)
			}
			if tt.wantErr {
				aside, _ := filepath.Glob(store.path() + ".corrupt-*")
				if len(aside) != 1 {
					t.Errorf("corrupt file not moved aside: %v", aside)
				}
				// The next save must work and the next load must be clean.
				if err := store.save("n", good); err != nil {
					t.Fatal(err)
				}
				if _, err := store.load(); err != nil {
					t.Errorf("load after save: %v", err)
				}
			}
		})
	}
}

func FuzzParseCheckpoints(f *testing.F) {
	f.Add([]byte(`{"version":1,"node":"n","streams":[{"key":"k","path":"p","dev":1,"inode":2,"fp_len":3,"fp":4,"offset":5}]}`))
	f.Add([]byte(`{"version":1,"streams":null}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseCheckpoints(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptCheckpoint) {
				t.Fatalf("error %v does not wrap ErrCorruptCheckpoint", err)
			}
			if len(got) != 0 {
				t.Fatalf("error with positions: %v", got)
			}
			return
		}
		for k, p := range got {
			if k == "" || p.Key != k || p.Offset < 0 || p.FPLen < 0 || p.FPLen > fingerprintMax {
				t.Fatalf("accepted a bad position %+v", p)
			}
		}
	})
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in        string
		truncated bool
		want      string
		invalid   bool
	}{
		{"hello", false, "hello", false},
		{"", false, "", false},
		{"caf\xc3 au lait", false, "caf\uFFFD au lait", true},
		{"a\xff\xfe\xfdb", false, "a\uFFFDb", true},
		{"euro \xe2\x82", true, "euro ", false},       // cut inside a rune by truncation
		{"euro \xe2\x82", false, "euro \uFFFD", true}, // the same bytes, not truncated: replaced
		{"日本語", true, "日本語", false},
		{"ok\xff", true, "ok\uFFFD", true},
	}
	for _, tt := range tests {
		got, invalid := cleanText([]byte(tt.in), tt.truncated)
		if got != tt.want || invalid != tt.invalid {
			t.Errorf("cleanText(%q, %v) = %q, %v; want %q, %v", tt.in, tt.truncated, got, invalid, tt.want, tt.invalid)
		}
	}
}

func TestAppendCapped(t *testing.T) {
	b, cut := appendCapped([]byte("abc"), []byte("defg"), 5)
	if string(b) != "abcde" || !cut {
		t.Errorf("appendCapped = %q, %v", b, cut)
	}
	b, cut = appendCapped(b, []byte("x"), 5)
	if string(b) != "abcde" || !cut {
		t.Errorf("appendCapped when full = %q, %v", b, cut)
	}
	b, cut = appendCapped(nil, []byte("xy"), 5)
	if string(b) != "xy" || cut {
		t.Errorf("appendCapped with room = %q, %v", b, cut)
	}
}

// TestCheckpointAlwaysPresent: while generations are saved one after
// another, checkpoints.json is never missing, and .prev holds the
// generation before the current one.
func TestCheckpointAlwaysPresent(t *testing.T) {
	store := checkpointStore{dir: t.TempDir()}
	pos := func(off int64) []followerPosition {
		return []followerPosition{{Key: "k", Path: "p", fileIdentity: fileIdentity{Inode: 1}, Offset: off}}
	}
	if err := store.save("n", pos(0)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	missing := make(chan error, 1)
	go func() {
		defer close(missing)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := os.Stat(store.path()); err != nil {
				missing <- err
				return
			}
		}
	}()
	const generations = 200
	for i := int64(1); i <= generations; i++ {
		if err := store.save("n", pos(i)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-missing; err != nil {
		t.Fatalf("checkpoint file missing between saves: %v", err)
	}
	prev, err := readCheckpointFile(store.path() + ".prev")
	if err != nil {
		t.Fatal(err)
	}
	if prev["k"].Offset != generations-1 {
		t.Errorf(".prev holds offset %d, want %d", prev["k"].Offset, generations-1)
	}
}
