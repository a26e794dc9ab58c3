package shipper

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var updateDecodeGolden = flag.Bool("update-decode", false, "rewrite testdata/decode/*.golden from the decoders' output")

// utc parses an RFC 3339 time for expectations, in UTC.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad test time %q: %v", s, err)
	}
	return ts.UTC()
}

// checkLine compares a decoded line with the expectation, including that the
// time is in UTC.
func checkLine(t *testing.T, in string, got, want Line) {
	t.Helper()
	if !got.Time.Equal(want.Time) || got.Time.Location() != time.UTC {
		t.Errorf("%q: time = %v (%v), want %v UTC", in, got.Time, got.Time.Location(), want.Time)
	}
	if got.Stream != want.Stream || got.Partial != want.Partial || got.Format != want.Format {
		t.Errorf("%q: stream, partial, format = %q, %v, %q, want %q, %v, %q",
			in, got.Stream, got.Partial, got.Format, want.Stream, want.Partial, want.Format)
	}
	if !bytes.Equal(got.Content, want.Content) {
		t.Errorf("%q: content = %q, want %q", in, got.Content, want.Content)
	}
}

func TestDecodeCRI(t *testing.T) {
	const ts = "2016-10-06T00:17:09.669794202Z"
	t0 := utc(t, ts)
	cri := func(tm time.Time, stream string, partial bool, content string) Line {
		return Line{Time: tm, Stream: stream, Partial: partial, Content: []byte(content), Format: FormatCRI}
	}
	tests := []struct {
		name string
		in   string
		want Line
	}{
		{"containerd full", ts + " stdout F log content 1", cri(t0, "stdout", false, "log content 1")},
		{"containerd partial", ts + " stdout P log content 2", cri(t0, "stdout", true, "log content 2")},
		{"stderr", ts + " stderr F oops", cri(t0, "stderr", false, "oops")},
		{"containerd trailing zeros trimmed", "2024-03-01T12:00:00.1Z stdout F x", cri(utc(t, "2024-03-01T12:00:00.1Z"), "stdout", false, "x")},
		{"no fraction", "2024-03-01T12:00:00Z stdout F x", cri(utc(t, "2024-03-01T12:00:00Z"), "stdout", false, "x")},
		{"microseconds", "2024-03-01T12:00:00.123456Z stdout F x", cri(utc(t, "2024-03-01T12:00:00.123456Z"), "stdout", false, "x")},
		{"more than nine digits truncated", "2024-03-01T12:00:00.1234567891234Z stdout F x", cri(utc(t, "2024-03-01T12:00:00.123456789Z"), "stdout", false, "x")},
		{"cri-o positive offset", "2023-10-05T14:22:11.123456789+02:00 stdout F hello", cri(utc(t, "2023-10-05T12:22:11.123456789Z"), "stdout", false, "hello")},
		{"cri-o negative offset crosses midnight", "2023-12-31T20:00:00.5-07:00 stderr F late", cri(utc(t, "2024-01-01T03:00:00.5Z"), "stderr", false, "late")},
		{"half-hour offset", "2023-10-05T14:22:11+05:30 stdout F india", cri(utc(t, "2023-10-05T08:52:11Z"), "stdout", false, "india")},
		{"zero offset", "2023-10-05T14:22:11.000000000+00:00 stdout F x", cri(utc(t, "2023-10-05T14:22:11Z"), "stdout", false, "x")},
		{"leap day", "2024-02-29T23:59:59.999999999Z stdout F x", cri(utc(t, "2024-02-29T23:59:59.999999999Z"), "stdout", false, "x")},
		{"comma fraction via time.Parse", "2024-03-01T12:00:00,5Z stdout F x", cri(utc(t, "2024-03-01T12:00:00.5Z"), "stdout", false, "x")},
		{"empty content with space", ts + " stdout F ", cri(t0, "stdout", false, "")},
		{"empty content without space", ts + " stdout F", cri(t0, "stdout", false, "")},
		{"empty partial", ts + " stdout P", cri(t0, "stdout", true, "")},
		{"extra tag", ts + " stdout F:x content", cri(t0, "stdout", false, "content")},
		{"extra tags on partial", ts + " stderr P:a:b content", cri(t0, "stderr", true, "content")},
		{"extra tag no content", ts + " stdout F:x", cri(t0, "stdout", false, "")},
		{"spaces kept", ts + " stdout F   indented  twice  ", cri(t0, "stdout", false, "  indented  twice  ")},
		{"tabs", ts + " stdout F \tkey=\tvalue\t", cri(t0, "stdout", false, "\tkey=\tvalue\t")},
		{"unicode", ts + " stdout F héllo 世界 🚀", cri(t0, "stdout", false, "héllo 世界 🚀")},
		{"invalid utf-8 unchanged", ts + " stdout F bad \xff\xfe\xc3 bytes", cri(t0, "stdout", false, "bad \xff\xfe\xc3 bytes")},
		{"json content", ts + ` stdout F {"level":"info","msg":"started"}`, cri(t0, "stdout", false, `{"level":"info","msg":"started"}`)},
		{"content looks like cri", ts + " stdout F " + ts + " stderr P x", cri(t0, "stdout", false, ts+" stderr P x")},
		{"trailing carriage return", ts + " stdout F windows\r", cri(t0, "stdout", false, "windows")},
		{"only one carriage return stripped", ts + " stdout F two\r\r", cri(t0, "stdout", false, "two\r")},
		{"nul byte", ts + " stdout F a\x00b", cri(t0, "stdout", false, "a\x00b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCRI([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeCRI(%q) error: %v", tt.in, err)
			}
			checkLine(t, tt.in, got, tt.want)
		})
	}
}

func TestDecodeCRIContentAliasesInput(t *testing.T) {
	in := []byte("2016-10-06T00:17:09.669794202Z stdout F hello")
	l, err := DecodeCRI(in)
	if err != nil {
		t.Fatal(err)
	}
	if &l.Content[0] != &in[len(in)-len("hello")] {
		t.Errorf("content does not alias the input")
	}
}

func TestDecodeCRIErrors(t *testing.T) {
	const ts = "2016-10-06T00:17:09.669794202Z"
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"plain text", "hello world"},
		{"timestamp only", ts},
		{"no tag", ts + " stdout"},
		{"empty tag", ts + " stdout "},
		{"unknown stream", ts + " stdin F x"},
		{"stream prefix", ts + " stdo F x"},
		{"stream without tag separator", ts + " stdoutF x"},
		{"unknown tag", ts + " stdout X x"},
		{"long tag", ts + " stdout Full x"},
		{"lower-case tag", ts + " stdout f x"},
		{"double space", ts + "  stdout F x"},
		{"space before tag", ts + " stdout  F x"},
		{"bad date", "2024-02-30T00:00:00Z stdout F x"},
		{"not a leap year", "2023-02-29T00:00:00Z stdout F x"},
		{"month 13", "2024-13-01T00:00:00Z stdout F x"},
		{"hour 24", "2024-01-01T24:00:00Z stdout F x"},
		{"second 60", "2024-01-01T00:00:60Z stdout F x"},
		{"no zone", "2024-01-01T00:00:00 stdout F x"},
		{"lower-case zone", "2024-01-01T00:00:00z stdout F x"},
		{"basic offset", "2024-01-01T00:00:00+0200 stdout F x"},
		{"empty fraction", "2024-01-01T00:00:00.Z stdout F x"},
		{"date only", "2024-01-01 stdout F x"},
		{"unix seconds", "1704067200 stdout F x"},
		{"docker line", `{"log":"x\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}`},
		{"klog line", "I0101 00:00:00.000000       1 main.go:1] started"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := DecodeCRI([]byte(tt.in))
			if !errors.Is(err, ErrNotCRI) {
				t.Fatalf("DecodeCRI(%q) = %+v, %v; want error wrapping ErrNotCRI", tt.in, l, err)
			}
			if !strings.HasPrefix(err.Error(), ErrNotCRI.Error()+": ") {
				t.Errorf("error %q has no reason after the sentinel", err)
			}
		})
	}
}

func TestDecodeDocker(t *testing.T) {
	const ts = "2019-01-01T11:11:11.111111111Z"
	t0 := utc(t, ts)
	docker := func(tm time.Time, stream string, partial bool, content string) Line {
		return Line{Time: tm, Stream: stream, Partial: partial, Content: []byte(content), Format: FormatDocker}
	}
	tests := []struct {
		name string
		in   string
		want Line
	}{
		{"json-file", `{"log":"hello world\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "hello world")},
		{"stderr", `{"log":"oops\n","stream":"stderr","time":"` + ts + `"}`, docker(t0, "stderr", false, "oops")},
		{"split over 16 KiB, first part", `{"log":"first part ","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", true, "first part ")},
		{"empty line", `{"log":"\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "")},
		{"empty partial", `{"log":"","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", true, "")},
		{"field order", `{"time":"` + ts + `","stream":"stdout","log":"x\n"}`, docker(t0, "stdout", false, "x")},
		{"attrs", `{"log":"x\n","stream":"stdout","attrs":{"tag":"web","n":[1,2.5e3,{"}":"]"}],"ok":true,"z":null},"time":"` + ts + `"}`, docker(t0, "stdout", false, "x")},
		{"whitespace", " \t{ \"log\" : \"x\\n\" ,\n \"stream\" : \"stdout\" , \"time\" : \"" + ts + "\" } ", docker(t0, "stdout", false, "x")},
		{"escapes", `{"log":"a\tb \"q\" \\ \/ \u00e9 \ud83d\ude80 \b\f\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "a\tb \"q\" \\ / é 🚀 \b\f")},
		{"escaped newline inside", `{"log":"one\ntwo\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "one\ntwo")},
		{"escaped backslash before n is not a newline", `{"log":"path C:\\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", true, `path C:\n`)},
		{"crlf stripped", `{"log":"windows\r\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "windows")},
		{"cr kept on partial", `{"log":"windows\r","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", true, "windows\r")},
		{"html escapes", `{"log":"\u003ca\u0026b\u003e\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "<a&b>")},
		{"lone surrogate", `{"log":"x\ud800y\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "x\uFFFDy")},
		{"high surrogate then non-low escape", `{"log":"\ud800\u0041\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "\uFFFDA")},
		{"unicode raw", `{"log":"héllo 世界\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "héllo 世界")},
		{"invalid utf-8 unchanged", "{\"log\":\"bad \xff\xfe\\n\",\"stream\":\"stdout\",\"time\":\"" + ts + "\"}", docker(t0, "stdout", false, "bad \xff\xfe")},
		{"escaped key", `{"\u006cog":"x\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "x")},
		{"escaped stream", `{"log":"x\n","stream":"std\u006fut","time":"` + ts + `"}`, docker(t0, "stdout", false, "x")},
		{"duplicate key last wins", `{"log":"a\n","log":"b\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "b")},
		{"other case key ignored", `{"Log":"a\n","log":"b\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, "b")},
		{"time with offset", `{"log":"x\n","stream":"stdout","time":"2019-01-01T13:11:11.5+02:00"}`, docker(utc(t, "2019-01-01T11:11:11.5Z"), "stdout", false, "x")},
		{"json content", `{"log":"{\"level\":\"info\"}\n","stream":"stdout","time":"` + ts + `"}`, docker(t0, "stdout", false, `{"level":"info"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeDocker([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeDocker(%q) error: %v", tt.in, err)
			}
			checkLine(t, tt.in, got, tt.want)
		})
	}
}

func TestDecodeDockerErrors(t *testing.T) {
	const ts = "2019-01-01T11:11:11.111111111Z"
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"plain text", "hello"},
		{"array", `["log","x"]`},
		{"string", `"log"`},
		{"null", `null`},
		{"empty object", `{}`},
		{"truncated", `{"log":"x\n","stream":"stdout","time":"` + ts},
		{"trailing garbage", `{"log":"x\n","stream":"stdout","time":"` + ts + `"}x`},
		{"raw newline in string", "{\"log\":\"x\n\",\"stream\":\"stdout\",\"time\":\"" + ts + "\"}"},
		{"no log", `{"stream":"stdout","time":"` + ts + `"}`},
		{"log not a string", `{"log":42,"stream":"stdout","time":"` + ts + `"}`},
		{"log null", `{"log":null,"stream":"stdout","time":"` + ts + `"}`},
		{"no stream", `{"log":"x\n","time":"` + ts + `"}`},
		{"unknown stream", `{"log":"x\n","stream":"stdin","time":"` + ts + `"}`},
		{"stream not a string", `{"log":"x\n","stream":1,"time":"` + ts + `"}`},
		{"no time", `{"log":"x\n","stream":"stdout"}`},
		{"bad time", `{"log":"x\n","stream":"stdout","time":"yesterday"}`},
		{"time not a string", `{"log":"x\n","stream":"stdout","time":1546341071}`},
		{"upper-case keys", `{"Log":"x\n","Stream":"stdout","Time":"` + ts + `"}`},
		{"cri line", ts + " stdout F x"},
		{"app json", `{"level":"info","msg":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := DecodeDocker([]byte(tt.in))
			if !errors.Is(err, ErrNotDocker) {
				t.Fatalf("DecodeDocker(%q) = %+v, %v; want error wrapping ErrNotDocker", tt.in, l, err)
			}
		})
	}
}

func TestDecodeLine(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantFormat string
		wantText   string
	}{
		{"cri", "2016-10-06T00:17:09.669794202Z stdout F hi", FormatCRI, "hi"},
		{"docker", `{"log":"hi\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, FormatDocker, "hi"},
		{"docker with leading space", ` {"log":"hi\n","stream":"stdout","time":"2019-01-01T11:11:11Z"}`, FormatDocker, "hi"},
		{"plain text", "plain old text", FormatRaw, "plain old text"},
		{"empty", "", FormatRaw, ""},
		{"app json", `{"level":"info","msg":"hi"}`, FormatRaw, `{"level":"info","msg":"hi"}`},
		{"app json with a log key", `{"log":"hi"}`, FormatRaw, `{"log":"hi"}`},
		{"docker with escaped keys", `{"\u006cog":"hi\n","\u0073tream":"stdout","\u0074ime":"2019-01-01T11:11:11Z"}`, FormatDocker, "hi"},
		{"docker-like with bad time", `{"log":"hi\n","stream":"stdout","time":"now"}`, FormatRaw, `{"log":"hi\n","stream":"stdout","time":"now"}`},
		{"cri-like with bad stream", "2016-10-06T00:17:09Z stdin F hi", FormatRaw, "2016-10-06T00:17:09Z stdin F hi"},
		{"raw keeps carriage return", "text\r", FormatRaw, "text\r"},
		{"invalid utf-8", "\xff\xfe", FormatRaw, "\xff\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := DecodeLine([]byte(tt.in))
			if l.Format != tt.wantFormat || string(l.Content) != tt.wantText {
				t.Fatalf("DecodeLine(%q) = format %q content %q, want %q %q", tt.in, l.Format, l.Content, tt.wantFormat, tt.wantText)
			}
			if l.Format == FormatRaw && (!l.Time.IsZero() || l.Stream != "" || l.Partial) {
				t.Errorf("raw line has time, stream or partial: %+v", l)
			}
		})
	}
}

func TestDecodeAllocations(t *testing.T) {
	lines := map[string][]byte{
		"cri":           []byte("2016-10-06T00:17:09.669794202Z stdout F " + strings.Repeat("x", 200)),
		"cri offset":    []byte("2023-10-05T14:22:11.123456789+02:00 stderr P " + strings.Repeat("x", 200)),
		"docker common": []byte(`{"log":"` + strings.Repeat("x", 200) + `\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}`),
		"raw":           []byte("just some text that is neither format"),
		"raw json":      []byte(`{"level":"info","msg":"hi"}`),
	}
	for name, b := range lines {
		allocs := testing.AllocsPerRun(100, func() { DecodeLine(b) })
		if allocs != 0 {
			t.Errorf("DecodeLine(%s) allocates %v times per line, want 0", name, allocs)
		}
	}
}

// TestDecodeGolden decodes every file under testdata/decode/*.log line by line
// with DecodeLine and compares the result with the .golden file beside it.
// Run with -update-decode to rewrite the golden files after a deliberate change.
func TestDecodeGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "decode", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/decode/*.log inputs")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				l := DecodeLine(sc.Bytes())
				ts := ""
				if !l.Time.IsZero() {
					ts = l.Time.Format(time.RFC3339Nano)
				}
				fmt.Fprintf(&got, "%s\t%s\t%s\t%v\t%q\n", l.Format, ts, l.Stream, l.Partial, l.Content)
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".log") + ".golden"
			if *updateDecodeGolden {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-decode to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("decoded %s differs from %s:\n got:\n%s\nwant:\n%s", in, golden, got.Bytes(), want)
			}
		})
	}
}

// encodeCRI writes l back as a CRI line. A content ending in '\r' gets one
// more, since DecodeCRI strips one.
func encodeCRI(l Line) []byte {
	tag := "F"
	if l.Partial {
		tag = "P"
	}
	out := []byte(l.Time.Format(time.RFC3339Nano) + " " + l.Stream + " " + tag + " ")
	out = append(out, l.Content...)
	if bytes.HasSuffix(l.Content, []byte("\r")) {
		out = append(out, '\r')
	}
	return out
}

// encodeDocker writes l back as a docker json-file line, escaping only what
// JSON requires so that invalid UTF-8 survives.
func encodeDocker(l Line) []byte {
	log := l.Content
	if !l.Partial {
		if bytes.HasSuffix(log, []byte("\r")) {
			log = append(bytes.Clone(log), '\r')
		}
		log = append(bytes.Clone(log), '\n')
	}
	out := []byte(`{"log":"`)
	for _, c := range log {
		switch {
		case c == '"' || c == '\\':
			out = append(out, '\\', c)
		case c < 0x20:
			out = fmt.Appendf(out, `\u%04x`, c)
		default:
			out = append(out, c)
		}
	}
	return fmt.Appendf(out, `","stream":%q,"time":%q}`, l.Stream, l.Time.Format(time.RFC3339Nano))
}

func sameLine(a, b Line) bool {
	return a.Time.Equal(b.Time) && a.Stream == b.Stream && a.Partial == b.Partial &&
		bytes.Equal(a.Content, b.Content) && a.Format == b.Format
}

// formattable reports whether t.Format(time.RFC3339Nano) parses back: its
// year has four digits.
func formattable(t time.Time) bool { return t.Year() >= 0 && t.Year() <= 9999 }

func FuzzDecodeCRI(f *testing.F) {
	for _, s := range []string{
		"2016-10-06T00:17:09.669794202Z stdout F log content 1",
		"2016-10-06T00:17:09.669794202Z stderr P part",
		"2023-10-05T14:22:11.123456789+02:00 stdout F:x hello",
		"2024-03-01T12:00:00Z stdout F",
		"2024-03-01T12:00:00,5Z stdout F ",
		"0000-01-01T00:00:00+01:00 stdout F x\r",
		"2024-02-29T23:59:59.9999999999-23:59 stdout P \xff\r\r",
		"",
		"x y z w",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		l, err := DecodeCRI(b)
		if !bytes.Equal(in, b) {
			t.Fatalf("DecodeCRI modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrNotCRI) {
				t.Fatalf("error %v does not wrap ErrNotCRI", err)
			}
			return
		}
		if l.Format != FormatCRI || (l.Stream != "stdout" && l.Stream != "stderr") || l.Time.Location() != time.UTC {
			t.Fatalf("bad line %+v", l)
		}
		trimmed := bytes.TrimSuffix(b, []byte("\r"))
		if !bytes.HasSuffix(trimmed, l.Content) || (len(l.Content) > 0 && &l.Content[0] != &trimmed[len(trimmed)-len(l.Content)]) {
			t.Fatalf("content %q is not the tail of the input %q", l.Content, b)
		}
		if got := DecodeLine(b); !sameLine(got, l) {
			t.Fatalf("DecodeLine = %+v, DecodeCRI = %+v", got, l)
		}
		if formattable(l.Time) {
			enc := encodeCRI(l)
			l2, err := DecodeCRI(enc)
			if err != nil || !sameLine(l, l2) {
				t.Fatalf("re-encoded %q decodes to %+v, %v; want %+v", enc, l2, err, l)
			}
		}
	})
}

// dockerOracle decodes b with encoding/json, for inputs that are valid UTF-8
// (encoding/json replaces invalid bytes, DecodeDocker keeps them).
func dockerOracle(b []byte) (Line, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Line{}, false
	}
	var fields [3]string
	for i, k := range []string{"log", "stream", "time"} {
		raw, ok := m[k]
		if !ok || len(raw) == 0 || raw[0] != '"' {
			return Line{}, false
		}
		if err := json.Unmarshal(raw, &fields[i]); err != nil {
			return Line{}, false
		}
	}
	log, stream := fields[0], fields[1]
	if stream != "stdout" && stream != "stderr" {
		return Line{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, fields[2])
	if err != nil {
		return Line{}, false
	}
	partial := !strings.HasSuffix(log, "\n")
	if !partial {
		log = strings.TrimSuffix(strings.TrimSuffix(log, "\n"), "\r")
	}
	return Line{Time: ts.UTC(), Stream: stream, Partial: partial, Content: []byte(log), Format: FormatDocker}, true
}

func FuzzDecodeDocker(f *testing.F) {
	for _, s := range []string{
		`{"log":"hello\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}`,
		`{"time":"2019-01-01T11:11:11Z","stream":"stderr","log":"part"}`,
		`{"log":"a\tb \"q\" \\ \u00e9 \ud83d\ude80 \ud800 x\r\n","stream":"stdout","attrs":{"k":["v",1,{}]},"time":"2019-01-01T13:11:11.5+02:00"}`,
		`{"\u006cog":"C:\\n","stream":"std\u006fut","time":"2019-01-01T11:11:11Z"}`,
		"{\"log\":\"\xff\\n\",\"stream\":\"stdout\",\"time\":\"2019-01-01T11:11:11Z\"}",
		`{"log":1}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		l, err := DecodeDocker(b)
		if !bytes.Equal(in, b) {
			t.Fatalf("DecodeDocker modified its input")
		}
		if utf8.Valid(b) {
			want, ok := dockerOracle(b)
			if ok != (err == nil) || (ok && !sameLine(l, want)) {
				t.Fatalf("DecodeDocker(%q) = %+v, %v; encoding/json says %+v, %v", b, l, err, want, ok)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrNotDocker) {
				t.Fatalf("error %v does not wrap ErrNotDocker", err)
			}
			return
		}
		if l.Format != FormatDocker || (l.Stream != "stdout" && l.Stream != "stderr") || l.Time.Location() != time.UTC {
			t.Fatalf("bad line %+v", l)
		}
		if formattable(l.Time) {
			enc := encodeDocker(l)
			l2, err := DecodeDocker(enc)
			if err != nil || !sameLine(l, l2) {
				t.Fatalf("re-encoded %q decodes to %+v, %v; want %+v", enc, l2, err, l)
			}
		}
	})
}

func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{
		"2016-10-06T00:17:09.669794202Z stdout F log content 1",
		`{"log":"hello\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}`,
		`{"level":"info"}`,
		"plain text\r",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l := DecodeLine(b)
		switch l.Format {
		case FormatCRI:
			want, err := DecodeCRI(b)
			if err != nil || !sameLine(l, want) {
				t.Fatalf("DecodeLine = %+v, DecodeCRI = %+v, %v", l, want, err)
			}
		case FormatDocker:
			if _, err := DecodeCRI(b); err == nil {
				t.Fatalf("docker chosen for a CRI line")
			}
			want, err := DecodeDocker(b)
			if err != nil || !sameLine(l, want) {
				t.Fatalf("DecodeLine = %+v, DecodeDocker = %+v, %v", l, want, err)
			}
		case FormatRaw:
			if _, err := DecodeCRI(b); err == nil {
				t.Fatalf("raw chosen for a CRI line")
			}
			if _, err := DecodeDocker(b); err == nil {
				t.Fatalf("raw chosen for a docker line")
			}
			if !l.Time.IsZero() || l.Stream != "" || l.Partial || len(l.Content) != len(b) ||
				(len(b) > 0 && &l.Content[0] != &b[0]) {
				t.Fatalf("raw line %+v is not the input", l)
			}
		default:
			t.Fatalf("unknown format %q", l.Format)
		}
	})
}

// FuzzParseLogTime checks the hand-written timestamp parser against
// time.Parse: same acceptance, same instant, always UTC.
func FuzzParseLogTime(f *testing.F) {
	for _, s := range []string{
		"2016-10-06T00:17:09.669794202Z",
		"2023-10-05T14:22:11.123456789+02:00",
		"2023-12-31T20:00:00.5-07:00",
		"2024-02-29T00:00:00Z",
		"2023-02-29T00:00:00Z",
		"2024-03-01T12:00:00,5Z",
		"2024-03-01T1:00:00Z",
		"2024-03-01T12:00:00+24:00",
		"0000-01-01T00:00:00+01:00",
		"9999-12-31T23:59:59.9999999999999-23:59",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseLogTime([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if ok != (err == nil) {
			t.Fatalf("parseLogTime(%q) ok = %v, time.Parse error = %v", s, ok, err)
		}
		if !ok {
			return
		}
		if !got.Equal(want) || got.Location() != time.UTC {
			t.Fatalf("parseLogTime(%q) = %v (%v), time.Parse = %v", s, got, got.Location(), want)
		}
		if fast, ok := parseLogTimeFast([]byte(s)); ok && fast != got {
			t.Fatalf("fast path %v differs from %v", fast, got)
		}
	})
}

// benchLine is a ~300-byte application log message, the size the shipper's
// throughput target is stated for.
var benchLine = `{"ts":"2024-03-01T12:00:00.123Z","level":"info","logger":"http.server","msg":"request completed",` +
	`"method":"GET","path":"/api/v1/orders/8f14e45f-ceea-467f-a8f5-d5c2b3a1e9f0","status":200,` +
	`"duration_ms":12.5,"bytes":5123,"remote":"10.244.3.17:53412","user_agent":"Go-http-client/1.1"}`

func BenchmarkDecodeCRI(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"containerd", "2024-03-01T12:00:00.123456789Z stdout F " + benchLine},
		{"crio-offset", "2024-03-01T13:00:00.123456789+01:00 stdout F " + benchLine},
	} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(bc.line)
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := DecodeCRI(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeDocker(b *testing.B) {
	escaped, err := json.Marshal(benchLine + "\n")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, line string }{
		{"plain", `{"log":"` + strings.Repeat("x", len(benchLine)) + `\n","stream":"stdout","time":"2024-03-01T12:00:00.123456789Z"}`},
		{"escaped", `{"log":` + string(escaped) + `,"stream":"stdout","time":"2024-03-01T12:00:00.123456789Z"}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(bc.line)
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := DecodeDocker(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeLineRaw(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"app-json", benchLine},
		{"text", "I0301 12:00:00.123456       1 controller.go:116] " + strings.Repeat("reconciled object ", 14)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			line := []byte(bc.line)
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if l := DecodeLine(line); l.Format != FormatRaw {
					b.Fatalf("format %q", l.Format)
				}
			}
		})
	}
}
