package devstack_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// A golden file under testdata/golden holds a sequence of exchanges run
// against a fresh store, each:
//
//	# comments (the source of the example, deviations)
//	METHOD /path?query
//	request body lines (optional; kept as they are, newline-terminated)
//	--- STATUS
//	expected response body (optional)
//	===
//
// An expected JSON body matches a response with the same structure: the
// same members and elements, where the string "<any>" matches any value.
// A text body (from _cat) must match exactly.
type exchange struct {
	line         int
	method, path string
	body         string
	status       int
	want         string
}

func parseGolden(t *testing.T, path string) []exchange {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   []exchange
		cur   *exchange
		state = 0 // 0: before the request line, 1: request body, 2: response body
		body  strings.Builder
		n     = 0
	)
	flush := func() {
		if cur == nil {
			return
		}
		if state != 2 {
			t.Fatalf("%s:%d: exchange without a --- STATUS line", path, cur.line)
		}
		cur.want = body.String()
		out = append(out, *cur)
		cur, state = nil, 0
		body.Reset()
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case state == 0 && (strings.HasPrefix(line, "#") || strings.TrimSpace(line) == ""):
		case state == 0:
			method, p, ok := strings.Cut(line, " ")
			if !ok {
				t.Fatalf("%s:%d: want METHOD /path, got %q", path, n, line)
			}
			cur, state = &exchange{line: n, method: method, path: p}, 1
		case line == "===":
			flush()
		case state == 1 && strings.HasPrefix(line, "--- "):
			cur.body = body.String()
			body.Reset()
			st, err := strconv.Atoi(strings.TrimPrefix(line, "--- "))
			if err != nil {
				t.Fatalf("%s:%d: bad status line %q", path, n, line)
			}
			cur.status, state = st, 2
		default:
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	return out
}

// TestGolden replays the request/response pairs of testdata/golden, most of
// them the examples of the Elasticsearch reference documentation.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	sort.Strings(files)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".golden"), func(t *testing.T) {
			ts := openStore(t, "")
			for _, ex := range parseGolden(t, file) {
				ctype := "application/json"
				if strings.Contains(ex.path, "_bulk") {
					ctype = "application/x-ndjson"
				}
				r := ts.raw(t, ex.method, ex.path, ctype, ex.body)
				where := fmt.Sprintf("%s:%d %s %s", file, ex.line, ex.method, ex.path)
				if r.Header.Get("X-Elastic-Product") != "Elasticsearch" {
					t.Errorf("%s: no X-Elastic-Product header", where)
				}
				if r.Status != ex.status {
					t.Errorf("%s: status %d, want %d: %s", where, r.Status, ex.status, r.Raw)
					continue
				}
				if strings.TrimSpace(ex.want) == "" {
					if ex.method != "HEAD" && r.Raw != "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
						t.Errorf("%s: unexpected body %s", where, r.Raw)
					}
					continue
				}
				if strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
					if r.Raw != ex.want {
						t.Errorf("%s: body\n%s\nwant\n%s", where, r.Raw, ex.want)
					}
					continue
				}
				var want any
				dec := json.NewDecoder(strings.NewReader(ex.want))
				dec.UseNumber()
				if err := dec.Decode(&want); err != nil {
					t.Fatalf("%s: expected body is not JSON: %v", where, err)
				}
				var got any
				dec = json.NewDecoder(bytes.NewReader([]byte(r.Raw)))
				dec.UseNumber()
				if err := dec.Decode(&got); err != nil {
					t.Fatalf("%s: response is not JSON: %v: %s", where, err, r.Raw)
				}
				if diff := matchJSON("", want, got); diff != "" {
					t.Errorf("%s: %s\nbody: %s", where, diff, r.Raw)
				}
			}
		})
	}
}

// matchJSON returns "" when got matches want (see TestGolden), else where
// they differ.
func matchJSON(path string, want, got any) string {
	if want == "<any>" {
		return ""
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: got %v, want an object", path, got)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return fmt.Sprintf("%s.%s: unexpected member", path, k)
			}
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("%s.%s: missing", path, k)
			}
			if d := matchJSON(path+"."+k, w[k], gv); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %v, want %d elements", path, got, len(w))
		}
		for i := range w {
			if d := matchJSON(fmt.Sprintf("%s.%d", path, i), w[i], g[i]); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Sprintf("%s: got %v, want %v", path, got, want)
	}
	return ""
}
