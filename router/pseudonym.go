package router

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
)

// Pseudonyms. sha256(s, salt) takes its salt from the pipeline, which
// whoever reads the pipeline sees: the hash of a low-entropy value (an
// email, a user id) is then found by trying candidates. pseudonym(s) is
// the hex HMAC-SHA256 of s under a key the platform's operator gives each
// tenant (a file of SLUICE_ROUTER_PSEUDONYM_KEYS_DIR, see keyStore): no
// pipeline holds it and no expression can read it. For a tenant without a
// key, pseudonym fails with ReasonPseudonymKeyMissing, which the step's
// on_error handles. A pipeline's tests, and sluice pipeline test, use
// TestPseudonymKey, never a tenant's key.

// PseudonymKey is a tenant's secret key for pseudonym(); the zero value is
// no key. It never prints: fmt (with any verb), slog and encoders that
// use MarshalText show "[redacted]", so that it cannot reach a log line,
// an error or a metric by mistake.
type PseudonymKey struct{ b []byte }

// TestPseudonymKeyText is the key pseudonym() uses in a pipeline's tests
// and in sluice pipeline test. It is public, so that expected values are
// the same everywhere; it is never the key of a tenant.
const TestPseudonymKeyText = "sluice-test-key"

// TestPseudonymKey is TestPseudonymKeyText as a key.
var TestPseudonymKey = PseudonymKey{b: []byte(TestPseudonymKeyText)}

const redacted = "[redacted]"

func (PseudonymKey) String() string               { return redacted }
func (PseudonymKey) GoString() string             { return redacted }
func (PseudonymKey) Format(f fmt.State, _ rune)   { f.Write([]byte(redacted)) }
func (PseudonymKey) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (PseudonymKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// IsZero reports whether k is no key.
func (k PseudonymKey) IsZero() bool { return len(k.b) == 0 }

// ErrNoPseudonymKey is wrapped by the error of pseudonym() for a tenant
// without a key; such a record fails with ReasonPseudonymKeyMissing.
var ErrNoPseudonymKey = errors.New("no key is configured")

// fnPseudonym is pseudonym(s): the hex HMAC-SHA256 of s under the record's
// tenant's key. The meter keeps the HMAC state of the key it last used,
// so that a record does not pay for hashing the key.
func fnPseudonym(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	// HMAC hashes s and two blocks more (the key padded, inner and outer).
	if err := m.charge(add(int64(len(s)+2*sha256.BlockSize), costCall), 2*sha256.Size); err != nil {
		return nil, err
	}
	if m.key.IsZero() {
		return nil, fmt.Errorf("pseudonym: %w for tenant %s; the operator sets one in the router's SLUICE_ROUTER_PSEUDONYM_KEYS_DIR (a file named %s)", ErrNoPseudonymKey, m.tenant, m.tenant)
	}
	if m.mac == nil || !bytes.Equal(m.macKey, m.key.b) {
		m.mac, m.macKey = hmac.New(sha256.New, m.key.b), m.key.b
	} else {
		m.mac.Reset()
	}
	m.mac.Write([]byte(s))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.mac.Sum(sum[:0])), nil
}
