package lineinput

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/schemas"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		in, log string
		invalid bool
		err     error
	}{
		{in: "plain text\r\n", log: "plain text"},
		{in: `{"log":"from a record","stream":"stderr"}`, log: "from a record"},
		{in: `{"level":"info","msg":"hi"}`, log: `{"level":"info","msg":"hi"}`},
		{in: `{"log":""}`, log: ""},
		{in: `{not json`, log: `{not json`},
		{in: "bad \xff byte", log: "bad \uFFFD byte", invalid: true},
		{in: `{"log":5}`, err: schemas.ErrMalformed},
	} {
		rec, err := Decode([]byte(tc.in))
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Decode(%q) error %v, want %v", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || rec.Log != tc.log || rec.InvalidUTF8 != tc.invalid {
			t.Errorf("Decode(%q) = log %q invalid %v, %v; want %q %v", tc.in, rec.Log, rec.InvalidUTF8, err, tc.log, tc.invalid)
		}
	}
}

func TestScannerBound(t *testing.T) {
	sc := NewScanner(strings.NewReader("short\n"+strings.Repeat("x", 100)+"\n"), 50)
	if !sc.Scan() || sc.Text() != "short" {
		t.Fatalf("first line %q", sc.Text())
	}
	if sc.Scan() {
		t.Fatal("a line over the bound was read")
	}
	if err := TooLong(sc.Err(), 50); err == nil || !strings.Contains(err.Error(), "longer than 50 bytes") {
		t.Fatalf("error %v", err)
	}
}
