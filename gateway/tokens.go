package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// tokens maps bearer tokens to the Kafka credentials they stand for, read
// from SLUICE_GATEWAY_TOKENS_FILE: one "TOKEN USERNAME PASSWORD" per line,
// blank lines and lines starting with '#' ignored. Tokens are kept by
// their SHA-256 only. The file is read again when its modification time or
// size changes, checked at most every tokensRecheck; a file that no
// longer parses leaves the tokens read before in force (and is logged by
// the caller through the returned error).
type tokens struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	byHash  map[[32]byte]credentials
	checked time.Time
	mod     time.Time
	size    int64
}

// credentials are a tenant's Kafka user name and password.
type credentials struct{ user, password string }

const tokensRecheck = 10 * time.Second

var varTokensFile = config.Var("GATEWAY_TOKENS_FILE")

// loadTokens reads path; the error names the variable and the line.
func loadTokens(path string) (*tokens, error) {
	t := &tokens{path: path, now: time.Now}
	if err := t.reload(true); err != nil {
		return nil, err
	}
	return t, nil
}

// lookup returns the credentials of token.
func (t *tokens) lookup(token string) (credentials, bool, error) {
	err := t.reload(false)
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.byHash[sha256.Sum256([]byte(token))]
	return c, ok, err
}

// reload reads the file again if it changed (or always when force).
func (t *tokens) reload(force bool) error {
	t.mu.Lock()
	now := t.now()
	if !force && now.Sub(t.checked) < tokensRecheck {
		t.mu.Unlock()
		return nil
	}
	t.checked = now
	t.mu.Unlock()
	st, err := os.Stat(t.path)
	if err != nil {
		return &config.Problem{Var: varTokensFile, Err: err}
	}
	t.mu.Lock()
	same := !force && st.ModTime().Equal(t.mod) && st.Size() == t.size
	t.mu.Unlock()
	if same {
		return nil
	}
	b, err := os.ReadFile(t.path)
	if err != nil {
		return &config.Problem{Var: varTokensFile, Err: err}
	}
	m, err := parseTokens(b)
	if err != nil {
		return &config.Problem{Var: varTokensFile, Err: fmt.Errorf("%s: %w", t.path, err)}
	}
	t.mu.Lock()
	t.byHash, t.mod, t.size = m, st.ModTime(), st.Size()
	t.mu.Unlock()
	return nil
}

// parseTokens parses a tokens file. Errors name the line, never its
// content.
func parseTokens(b []byte) (map[[32]byte]credentials, error) {
	m := make(map[[32]byte]credentials)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want TOKEN USERNAME PASSWORD, got %d fields", n, len(f))
		}
		if len(f[0]) < 16 {
			return nil, fmt.Errorf("line %d: the token is shorter than 16 characters", n)
		}
		if err := kafka.ValidateTenant(f[1]); err != nil {
			return nil, fmt.Errorf("line %d: user: %w", n, err)
		}
		h := sha256.Sum256([]byte(f[0]))
		if _, dup := m[h]; dup {
			return nil, fmt.Errorf("line %d: the token is on an earlier line too", n)
		}
		m[h] = credentials{user: f[1], password: f[2]}
	}
	return m, sc.Err()
}
