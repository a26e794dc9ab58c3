package jsonstr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		end  int
		f    Flags
		kind Kind
		off  int
	}{
		{in: `""`, end: 2},
		{in: `"abc" tail`, end: 5},
		{in: `"a\"b"`, end: 6, f: Escaped},
		{in: `"\\"`, end: 4, f: Escaped},
		{in: `"\/\b\f\n\r\t"`, end: 14, f: Escaped},
		{in: `"\u00e9"`, end: 8, f: Escaped},
		{in: `"\uD83D\uDE00"`, end: 14, f: Escaped},
		{in: "\"\xc3\xa9\"", end: 4, f: NonASCII},
		{in: "\"\xff\"", end: 3, f: NonASCII},
		{in: "\"\\n\xff\"", end: 5, f: Escaped | NonASCII},
		{in: `"abc`, kind: Unterminated, off: 4},
		{in: `"`, kind: Unterminated, off: 1},
		{in: `"ab\`, kind: EndInEscape, off: 4},
		{in: "\"a\tb\"", kind: Control, off: 2},
		{in: "\"\x00\"", kind: Control, off: 1},
		{in: `"\x"`, kind: BadEscape, off: 2},
		{in: `"\'"`, kind: BadEscape, off: 2},
		{in: `"\u12"`, kind: BadHex, off: 2},
		{in: `"\u12g4"`, kind: BadHex, off: 2},
		{in: `"\u`, kind: BadHex, off: 2},
		{in: `"\U0041"`, kind: BadEscape, off: 2},
	} {
		end, f, err := Scan(tc.in, 0)
		if tc.kind != 0 {
			if err == nil || err.Kind != tc.kind || err.Offset != tc.off {
				t.Errorf("Scan(%q) = %d, %v, %+v; want error kind %d at %d", tc.in, end, f, err, tc.kind, tc.off)
			}
			continue
		}
		if err != nil || end != tc.end || f != tc.f {
			t.Errorf("Scan(%q) = %d, %v, %v; want %d, %v", tc.in, end, f, err, tc.end, tc.f)
		}
		// The same on bytes, and from an offset.
		if end2, f2, err2 := Scan([]byte("xy"+tc.in), 2); err2 != nil || end2 != tc.end+2 || f2 != f {
			t.Errorf("Scan([]byte(xy%q), 2) = %d, %v, %v", tc.in, end2, f2, err2)
		}
	}
}

func TestUnquote(t *testing.T) {
	for in, want := range map[string]string{
		`""`:                   "",
		`"plain"`:              "plain",
		`"a\"b\\c\/d"`:         `a"b\c/d`,
		`"\b\f\n\r\t"`:         "\b\f\n\r\t",
		`"J\u00fcrgen"`:        "Jürgen",
		`"\u20AC\u20ac"`:       "€€",
		`"\ud83d\ude00"`:       "😀",
		`"\ud83d"`:             "\uFFFD",             // a lone high surrogate
		`"\ude00\ud83d"`:       "\uFFFD\uFFFD",       // low before high
		`"\ud83dx\ude00"`:      "\uFFFDx\uFFFD",      // interrupted pair
		`"\ud83d\u0041"`:       "\uFFFDA",            // high then not a low: the second is kept
		`"\ud83d\ud83d\ude00"`: "\uFFFD😀",            // the second high makes the pair
		"\"\xff\"":             "\uFFFD",             // invalid UTF-8, one replacement per byte
		"\"\xe2\x82\"":         "\uFFFD\uFFFD",       // a truncated sequence
		"\"\xe2\x82\\n\"":      "\uFFFD\uFFFD\n",     // the same before an escape
		"\"\\u00e9\xa9\"":      "é\uFFFD",            // an escape does not complete a sequence
		"\"\xc3\\u00a9\"":      "\uFFFD©",            // nor does a sequence take an escape's bytes
		"\"\xed\xa0\x80\"":     "\uFFFD\uFFFD\uFFFD", // an encoded surrogate is invalid
	} {
		got, end, err := Unquote(in, 0)
		if err != nil || got != want || end != len(in) {
			t.Errorf("Unquote(%q) = %q, %d, %v; want %q", in, got, end, err, want)
		}
		var ref string
		if err := json.Unmarshal([]byte(in), &ref); err != nil || ref != want {
			t.Errorf("encoding/json: %q = %q, %v; the table is wrong", in, ref, err)
		}
	}
}

func TestAppendKeepsInvalidUTF8(t *testing.T) {
	raw := "\xff\\n\xc3\\u00e9"
	if got := string(Append([]byte("x"), raw)); got != "x\xff\n\xc3é" {
		t.Fatalf("Append = %q", got)
	}
}

func TestErrorText(t *testing.T) {
	for in, want := range map[string]string{
		`"abc`:     "unterminated string",
		`"\`:       "unterminated string",
		"\"\x01\"": "control character 0x01 in string",
		`"\q"`:     `bad escape \q`,
		`"\u0"`:    `bad \u escape`,
	} {
		if _, _, err := Scan(in, 0); err == nil || err.Error() != want {
			t.Errorf("Scan(%q) error %v, want %s", in, err, want)
		}
	}
}

// FuzzUnquote checks Scan, Append and Unquote against encoding/json on any
// input: a string literal at the start of the input is accepted by both or
// by neither, with the same value; Append's value differs only in keeping
// invalid UTF-8, which ReplaceInvalid then replaces as encoding/json does.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{
		`"plain"`, `"a\"b" tail`, `"\ud83d\ude00\ud800x\udc00"`, "\"\xff\xc3\\u00a9\"", `"\u12`, "\"\t\"",
		`"\q"`, `"unterminated`, `"\`, `"\/\b\f\n\r\t"`, `"x"  `, `"\uDBFF\uDFFF"`, `""`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 || b[0] != '"' {
			return
		}
		got, end, err := Unquote(b, 0)
		gotS, endS, errS := Unquote(string(b), 0)
		if got != gotS || end != endS || (err == nil) != (errS == nil) {
			t.Fatalf("Unquote on bytes and on a string differ: %q %d %v / %q %d %v", got, end, err, gotS, endS, errS)
		}
		if err != nil {
			// No prefix is a string literal, so the whole input is not
			// one either.
			var ref string
			if json.Unmarshal(b, &ref) == nil {
				t.Fatalf("Unquote(%q): %v; encoding/json reads %q", b, err, ref)
			}
			if err.Offset < 0 || err.Offset > len(b) {
				t.Fatalf("Unquote(%q): error offset %d out of the input", b, err.Offset)
			}
			return
		}
		var ref string
		if err := json.Unmarshal(b[:end], &ref); err != nil {
			t.Fatalf("Unquote(%q) = %q up to %d; encoding/json refuses it: %v", b, got, end, err)
		}
		if got != ref {
			t.Fatalf("Unquote(%q) = %q, encoding/json %q", b, got, ref)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Unquote(%q) = %q, invalid UTF-8", b, got)
		}
		_, flags, _ := Scan(b, 0)
		raw := b[1 : end-1]
		kept := Append(nil, raw)
		if flags&NonASCII == 0 && !utf8.Valid(kept) {
			t.Fatalf("Append(%q) = %q is invalid UTF-8, but Scan saw no byte >= 0x80", raw, kept)
		}
		if flags&Escaped == 0 && !bytes.Equal(kept, raw) {
			t.Fatalf("Append(%q) = %q, but Scan saw no escape", raw, kept)
		}
		if r := ReplaceInvalid(string(kept)); r != ref {
			t.Fatalf("ReplaceInvalid(Append(%q)) = %q, encoding/json %q", raw, r, ref)
		}
	})
}

// FuzzAppend checks that Append never panics, on content Scan would refuse
// too, and never lengthens its input, which Unquote's single allocation
// relies on.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{`\`, `\u`, `\u12`, `\ud800\u`, `\ud800\`, `\x`, "\xff\\"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		out := Append(nil, raw)
		if len(out) > len(raw) {
			t.Fatalf("Append(%q) = %q, longer than its input", raw, out)
		}
	})
}

func BenchmarkUnquote(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"short", `"level"`},
		{"plain", `"` + strings.Repeat("request completed in 12ms ", 10) + `"`},
		{"escaped", `"java.lang.IllegalStateException: \"declined\"\n\tat com.shop.Pay.charge(Pay.java:42)\n\tat com.shop.Api.post(Api.java:17)"`},
		{"unicode", `"J\u00fcrgen M\u00fcller \ud83d\ude00"`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Unquote(bc.in, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
