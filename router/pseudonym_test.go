package router

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/schemas"
)

// hmacHex is the expected pseudonym of s under key, computed apart from
// the sandbox.
func hmacHex(key, s string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

const emailPipeline = `tenant: %s
version: 1
steps:
  - json: {}
  - set: {field: email, expr: 'pseudonym(attributes.email)'%s}
`

// TestPseudonym: pseudonym(s) is the hex HMAC-SHA256 of s under the key
// given to ProcessWithKey; keys give different values, the same key the
// same value; sha256 is unchanged.
func TestPseudonym(t *testing.T) {
	p, err := Load(fmt.Appendf(nil, emailPipeline, "shop", ""))
	if err != nil {
		t.Fatal(err)
	}
	run := func(key PseudonymKey, email string) (any, Result) {
		r := schemas.Record{Log: `{"email":"` + email + `"}`}
		res := p.ProcessWithKey(&r, key)
		return r.Attributes["email"], res
	}
	const k1, k2 = "0123456789abcdef-shop", "fedcba9876543210-web"
	for _, email := range []string{"alice@example.com", "bob@example.com", ""} {
		got1, res := run(PseudonymKey{b: []byte(k1)}, email)
		if res.DLQ != nil || got1 != hmacHex(k1, email) {
			t.Errorf("%q with key 1: %v (%v), want %s", email, got1, res.DLQ, hmacHex(k1, email))
		}
		again, _ := run(PseudonymKey{b: []byte(k1)}, email)
		if again != got1 {
			t.Errorf("%q: %v then %v with one key", email, got1, again)
		}
		got2, _ := run(PseudonymKey{b: []byte(k2)}, email)
		if got2 != hmacHex(k2, email) || got2 == got1 {
			t.Errorf("%q with key 2: %v, want %s, unlike %v", email, got2, hmacHex(k2, email), got1)
		}
		test, _ := run(TestPseudonymKey, email)
		if test != hmacHex("sluice-test-key", email) {
			t.Errorf("%q with the test key: %v, want %s", email, test, hmacHex("sluice-test-key", email))
		}
	}

	// sha256 stays what it was, salted or not.
	p2, err := Load([]byte("tenant: shop\nversion: 1\nsteps:\n  - set: {field: a, expr: 'sha256(log)'}\n  - set: {field: b, expr: 'sha256(log, \"salt\")'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := schemas.Record{Log: "alice"}
	p2.ProcessWithKey(&r, PseudonymKey{b: []byte(k1)})
	sum, salted := sha256.Sum256([]byte("alice")), sha256.Sum256([]byte("saltalice"))
	if r.Attributes["a"] != hex.EncodeToString(sum[:]) || r.Attributes["b"] != hex.EncodeToString(salted[:]) {
		t.Errorf("sha256 with a key given: %v", r.Attributes)
	}
}

// TestPseudonymNoKey: without a key, pseudonym fails with its own reason,
// which names the tenant and the setting, and on_error applies as to any
// other function's error.
func TestPseudonymNoKey(t *testing.T) {
	for _, c := range []struct {
		onError string
		dlq     bool
		email   any
		errors  bool
	}{
		{"", true, nil, false},
		{", on_error: dead_letter", true, nil, false},
		{", on_error: skip", false, "alice@example.com", false},
		{", on_error: keep_going", false, "alice@example.com", true},
	} {
		p, err := Load(fmt.Appendf(nil, emailPipeline, "shop", c.onError))
		if err != nil {
			t.Fatal(err)
		}
		r := schemas.Record{Log: `{"email":"alice@example.com"}`}
		res := p.Process(&r) // no key
		if (res.DLQ != nil) != c.dlq {
			t.Fatalf("on_error %q: dlq %v", c.onError, res.DLQ)
		}
		if res.DLQ != nil {
			f := res.DLQ
			if f.Reason != ReasonPseudonymKeyMissing || f.StepType != "set" || f.Step != 1 || !errors.Is(f, ErrNoPseudonymKey) {
				t.Errorf("failure %+v", f)
			}
			if msg := f.Error(); !strings.Contains(msg, "pseudonym: no key is configured for tenant shop") || !strings.Contains(msg, "SLUICE_ROUTER_PSEUDONYM_KEYS_DIR") {
				t.Errorf("error %q", msg)
			}
			continue
		}
		if r.Attributes["email"] != c.email {
			t.Errorf("on_error %q: email %v", c.onError, r.Attributes["email"])
		}
		noted, _ := r.Attributes[ErrorsKey].(string)
		if c.errors != strings.Contains(noted, "no key is configured for tenant shop") {
			t.Errorf("on_error %q: _errors %q", c.onError, noted)
		}
	}

	// In a condition too.
	p, err := Load([]byte("tenant: shop\nversion: 1\nsteps:\n  - drop: {if: 'pseudonym(log) == \"x\"'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := schemas.Record{Log: "alice"}
	if res := p.Process(&r); res.DLQ == nil || res.DLQ.Reason != ReasonPseudonymKeyMissing {
		t.Errorf("condition without a key: %+v", res.DLQ)
	}
}

// TestPseudonymTestsUseTestKey: a pipeline's tests see the test key, so
// their expectations hold whatever key the tenant has, and Load does not
// need one.
func TestPseudonymTestsUseTestKey(t *testing.T) {
	doc := fmt.Sprintf(emailPipeline, "shop", "") + fmt.Sprintf(`tests:
  - name: pseudonymized
    line: '{"email":"alice@example.com"}'
    expect: {attributes: {email: %s}}
`, hmacHex(TestPseudonymKeyText, "alice@example.com"))
	if _, err := Load([]byte(doc)); err != nil {
		t.Fatalf("a test expecting the test key's value: %v", err)
	}
	doc = fmt.Sprintf(emailPipeline, "shop", "") + fmt.Sprintf(`tests:
  - name: with a real key
    line: '{"email":"alice@example.com"}'
    expect: {attributes: {email: %s}}
`, hmacHex("0123456789abcdef-shop", "alice@example.com"))
	if _, err := Load([]byte(doc)); !errors.Is(err, ErrTestFailed) {
		t.Fatalf("a test expecting another key's value: %v", err)
	}
}

// TestPseudonymMetered: pseudonym charges what it reads, so that a long
// input repeated runs out of budget instead of time.
func TestPseudonymMetered(t *testing.T) {
	for body, want := range map[string]string{"len(log) > 0": "", "len(pseudonym(log)) > 0": ReasonCostExceeded} {
		p, err := Load([]byte("tenant: shop\nversion: 1\nsteps:\n  - set: {field: n, expr: 'count(1..1000, {" + body + "})'}\n"))
		if err != nil {
			t.Fatal(err)
		}
		r := schemas.Record{Log: strings.Repeat("a", 64<<10)}
		res := p.ProcessWithKey(&r, TestPseudonymKey)
		if got := ""; res.DLQ != nil {
			got = res.DLQ.Reason
			if got != want {
				t.Errorf("1,000 times %s on 64 KiB: %v, want %q", body, res.DLQ, want)
			}
		} else if want != "" {
			t.Errorf("1,000 times %s on 64 KiB: no failure, want %s", body, want)
		}
	}
	m := meter{key: TestPseudonymKey}
	m.reset()
	if _, err := fnPseudonym(&m, []any{"abc"}); err != nil {
		t.Fatal(err)
	}
	if used := MaxRecordCost - m.work; used != int64(3+2*sha256.BlockSize+costCall) {
		t.Errorf("pseudonym of 3 bytes charged %d work units", used)
	}
}

// TestPseudonymKeyNeverPrints: a key prints as [redacted] however it is
// printed, logged or encoded.
func TestPseudonymKeyNeverPrints(t *testing.T) {
	const secret = "super-secret-key-material"
	k := PseudonymKey{b: []byte(secret)}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
		out = append(out, fmt.Sprintf(verb, k))
	}
	out = append(out, fmt.Sprint(k), fmt.Sprintf("%v", struct{ K PseudonymKey }{k}), fmt.Sprintf("%+v", &k))
	j, _ := json.Marshal(map[string]any{"k": k})
	out = append(out, string(j))
	var logged bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logged, nil), slog.NewJSONHandler(&logged, nil)} {
		slog.New(h).Info("x", "key", k, "any", any(k))
	}
	out = append(out, logged.String())
	for _, s := range out {
		if strings.Contains(s, secret) || strings.Contains(s, hex.EncodeToString([]byte(secret))) || strings.Contains(s, "115 117 112") {
			t.Errorf("the key shows in %q", s)
		}
	}
}
