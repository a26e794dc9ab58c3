package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for content, want := range map[string]string{"s3cret\n": "s3cret", "s3cret\r\n": "s3cret", "two\nlines\n": "two\nlines", "x": "x"} {
		if got, err := ReadSecret("SLUICE_X_FILE", write("s", content)); err != nil || got != want {
			t.Errorf("%q: %q, %v", content, got, err)
		}
	}
	for _, path := range []string{write("empty", "\n"), filepath.Join(dir, "missing")} {
		_, err := ReadSecret("SLUICE_X_FILE", path)
		var p *Problem
		if !errors.As(err, &p) || p.Var != "SLUICE_X_FILE" {
			t.Errorf("%s: %v", path, err)
		}
	}
	_, err := ReadCertPool("SLUICE_CA_FILE", write("ca", "not a certificate"))
	if err == nil || !strings.Contains(err.Error(), "SLUICE_CA_FILE") {
		t.Errorf("bad CA: %v", err)
	}
}
