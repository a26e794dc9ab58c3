package devstack

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// indexerFields types the fields of the Sluice indexer's test documents as its index template
// (indexer/testdata/template.json) maps them: declared properties, then the dynamic templates
// (labels, annotations and namespace labels keyword, doubles double, strings keyword, integers
// long).
func indexerFields(path string) (fieldInfo, bool) {
	switch path {
	case "@timestamp", "sluice.observed_timestamp":
		return fieldInfo{Type: "date"}, true
	case "log", "_overflow", "sluice.rescued":
		return fieldInfo{Type: "text"}, true
	case "sluice.invalid_utf8", "sluice.truncated", "sluice.partial", "cached":
		return fieldInfo{Type: "boolean"}, true
	case "sluice.original_size", "sluice.source.offset", "http.status":
		return fieldInfo{Type: "long"}, true
	case "duration":
		return fieldInfo{Type: "double"}, true
	case "kubernetes", "kubernetes.labels", "kubernetes.annotations", "kubernetes.namespace_labels",
		"kubernetes.workload", "sluice", "sluice.source":
		return fieldInfo{Type: "object"}, true
	case "sluice.metadata":
		return fieldInfo{Type: "keyword"}, true
	}
	if strings.HasPrefix(path, "kubernetes.") || strings.HasPrefix(path, "sluice.source.") {
		return fieldInfo{Type: "keyword", IgnoreAbove: 1024}, true
	}
	return fieldInfo{Type: "keyword", IgnoreAbove: 1024}, true
}

// docFields summarises a built document: field name → values as text, and the options of each.
func docFields(d *document.Document) (map[string][]string, map[string]index.FieldIndexingOptions) {
	vals := map[string][]string{}
	opts := map[string]index.FieldIndexingOptions{}
	for _, f := range d.Fields {
		var v string
		switch f := f.(type) {
		case *document.TextField:
			v = f.Text()
		case *document.NumericField:
			n, _ := f.Number()
			v = strings.TrimRight(strings.TrimRight(strconvF(n), "0"), ".")
		case *document.DateTimeField:
			t, _, _ := f.DateTime()
			v = t.Format(time.RFC3339Nano)
		case *document.BooleanField:
			b, _ := f.Boolean()
			v = map[bool]string{true: "true", false: "false"}[b]
		case *termsField:
			v = termsFieldValue(f)
			if f.name == fieldNamesField {
				for term := range f.freqs {
					vals[f.name] = append(vals[f.name], term)
				}
				sort.Strings(vals[f.name])
				opts[f.name] = f.opts
				continue
			}
		}
		if strings.HasPrefix(f.Name(), "_dv:") {
			// The sort value companion: show the decoded integer it holds.
			i, err := numeric.PrefixCoded(f.Value()).Int64()
			if err != nil {
				v = "invalid"
			} else {
				v = strconv.FormatInt(i, 10)
			}
		}
		vals[f.Name()] = append(vals[f.Name()], v)
		opts[f.Name()] = f.Options()
	}
	return vals, opts
}

// termsFieldValue renders the value of a field buildDocument built as the test expects it.
func termsFieldValue(f *termsField) string {
	switch f.kind {
	case kindInteger, kindFloat, kindDate:
		i, err := numeric.PrefixCoded(f.value).Int64()
		if err != nil {
			return "invalid"
		}
		if f.kind == kindDate {
			return time.Unix(0, i).UTC().Format(time.RFC3339Nano)
		}
		return strings.TrimRight(strings.TrimRight(strconvF(numeric.Int64ToFloat64(i)), "0"), ".")
	case kindBoolean:
		return map[string]string{"T": "true", "F": "false"}[string(f.value)]
	}
	return string(f.value)
}

func strconvF(f float64) string {
	b, _ := jsonMarshal(f)
	if !strings.Contains(string(b), ".") {
		return string(b) + ".0"
	}
	return string(b)
}

func TestBuildDocumentIndexerDocuments(t *testing.T) {
	// The indexer's golden documents are part of the repository: without
	// them this test would check nothing, so their absence is a failure.
	files, _ := filepath.Glob("../../indexer/testdata/documents/*.json")
	if len(files) == 0 {
		t.Fatal("no documents in ../../indexer/testdata/documents")
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := buildDocument(filepath.Base(f), src, indexerFields)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		vals, _ := docFields(d)
		if got := vals[sourceField]; len(got) != 1 || got[0] != string(src) {
			t.Errorf("%s: _source not stored as sent", f)
		}
		if _, ok := vals["@timestamp"]; !ok {
			t.Errorf("%s: no @timestamp", f)
		}
	}
	src, _ := os.ReadFile("../../indexer/testdata/documents/kubernetes.json")
	d, err := buildDocument("k", src, indexerFields)
	if err != nil {
		t.Fatal(err)
	}
	vals, opts := docFields(d)
	for field, want := range map[string][]string{
		"kubernetes.pod_name":                         {"cart-7d9f8b-x2x9z"},
		"kubernetes.labels.app_kubernetes_io/name":    {"cart"},
		"kubernetes.annotations.prometheus_io/scrape": {"true"},
		"http.status":          {"200"},
		"http.method":          {"GET"},
		"duration":             {"0.0123"},
		"cached":               {"false"},
		"sluice.source.offset": {"4096"},
		"@timestamp":           {"2026-11-21T10:30:00.123Z"},
	} {
		if !reflect.DeepEqual(vals[field], want) {
			t.Errorf("%s = %v, want %v", field, vals[field], want)
		}
	}
	wantTS := strconv.FormatInt(time.Date(2026, 11, 21, 10, 30, 0, 123e6, time.UTC).UnixNano(), 10)
	if got := vals[sortValueField("@timestamp")]; !reflect.DeepEqual(got, []string{wantTS}) || opts[sortValueField("@timestamp")]&index.DocValues == 0 || opts["@timestamp"]&index.DocValues != 0 {
		t.Errorf("@timestamp sort value %v (options %v, field options %v)", got, opts[sortValueField("@timestamp")], opts["@timestamp"])
	}
	if got := vals[sortValueField("http.status")]; !reflect.DeepEqual(got, []string{strconv.FormatInt(numeric.Float64ToInt64(200), 10)}) {
		t.Errorf("http.status sort value %v", got)
	}
	if _, ok := vals["user"]; ok {
		t.Errorf("null value indexed")
	}
	if opts["log"]&index.IncludeTermVectors == 0 || opts["kubernetes.pod_name"]&index.DocValues == 0 || opts[sourceField] != index.StoreField {
		t.Errorf("options: log %v pod_name %v _source %v", opts["log"], opts["kubernetes.pod_name"], opts[sourceField])
	}
	names := vals[fieldNamesField]
	for _, want := range []string{"http.method", "kubernetes.labels.app", "sluice.source.path", "log", "cached"} {
		if !contains(names, want) {
			t.Errorf("_field_names lacks %q: %v", want, names)
		}
	}
	// Objects, numbers and dates are found otherwise (see existsQuery); null values are absent.
	for _, unwanted := range []string{"user", "http", "kubernetes", "http.status", "@timestamp"} {
		if contains(names, unwanted) {
			t.Errorf("_field_names has %q: %v", unwanted, names)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestBuildDocumentModel(t *testing.T) {
	fields := map[string]fieldInfo{
		"a": {Type: "object"}, "a.b": {Type: "long"}, "k": {Type: "keyword", IgnoreAbove: 5},
		"t": {Type: "text"}, "d": {Type: "date"}, "n": {Type: "date_nanos"}, "b": {Type: "boolean"},
		"i": {Type: "integer"}, "f": {Type: "float"}, "o": {Type: "object"},
	}
	field := func(p string) (fieldInfo, bool) {
		fi, ok := fields[p]
		return fi, ok
	}
	tests := []struct {
		name, src string
		want      map[string][]string
	}{
		{"nested and dotted are one path", `{"a":{"b":1},"a.b":2}`, map[string][]string{"a.b": {"1", "2"}}},
		{"array of values", `{"k":["x","y"],"i":[1,2,3]}`, map[string][]string{"k": {"x", "y"}, "i": {"1", "2", "3"}}},
		{"array of objects", `{"a":[{"b":1},{"b":2}]}`, map[string][]string{"a.b": {"1", "2"}}},
		{"ignore_above", `{"k":["short","toolong"]}`, map[string][]string{"k": {"short"}}},
		{"ignore_above counts characters", `{"k":"ééééé"}`, map[string][]string{"k": {"ééééé"}}},
		{"keyword from number and bool", `{"k":[12,true]}`, map[string][]string{"k": {"12", "true"}}},
		{"number from string, integer truncates", `{"i":"42","f":"1.5","a.b":7.9}`, map[string][]string{"i": {"42"}, "f": {"1.5"}, "a.b": {"7"}}},
		{"dates", `{"d":["2026-11-21T10:30:00.123456789Z","2026-11-21T12:00:00+02:00","2026-11-21",1795255200000,"1795255200000"]}`,
			map[string][]string{"d": {"2026-11-21T10:30:00.123Z", "2026-11-21T10:00:00Z", "2026-11-21T00:00:00Z", "2026-11-21T10:00:00Z", "2026-11-21T10:00:00Z"}}},
		{"date_nanos keeps nanoseconds", `{"n":"2026-11-21T10:30:00.123456789Z"}`, map[string][]string{"n": {"2026-11-21T10:30:00.123456789Z"}}},
		{"booleans", `{"b":[true,"false",""]}`, map[string][]string{"b": {"true", "false", "false"}}},
		{"unmapped skipped", `{"zzz":"x","o":"scalar on an object"}`, map[string][]string{}},
		{"nulls and empty arrays", `{"k":null,"i":[],"t":[null]}`, map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := buildDocument("x", []byte(tt.src), field)
			if err != nil {
				t.Fatal(err)
			}
			vals, _ := docFields(d)
			delete(vals, sourceField)
			delete(vals, fieldNamesField)
			for k := range vals {
				if strings.HasPrefix(k, "_dv:") {
					delete(vals, k)
				}
			}
			if len(vals) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(vals, tt.want) {
				t.Fatalf("fields %v, want %v", vals, tt.want)
			}
		})
	}
	// _field_names lists the keyword, text and boolean leaves with an indexed value, once.
	d, err := buildDocument("x", []byte(`{"a":{"b":[1,2]},"k":"toolongvalue","t":["x","y"],"b":[true,false]}`), field)
	if err != nil {
		t.Fatal(err)
	}
	vals, _ := docFields(d)
	names := vals[fieldNamesField]
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"b", "t"}) {
		t.Errorf("_field_names = %v", names)
	}
}

func TestBuildDocumentErrors(t *testing.T) {
	field := func(p string) (fieldInfo, bool) {
		return map[string]fieldInfo{"n": {Type: "long"}, "d": {Type: "date"}, "b": {Type: "boolean"}}[p], p != "x"
	}
	for _, tt := range []struct{ src, want string }{
		{`{"n":"abc"}`, "failed to parse field [n] of type [long] in document with id 'id1'. Preview of field's value: 'abc'"},
		{`{"n":true}`, "failed to parse field [n] of type [long]"},
		{`{"d":"yesterday"}`, "failed to parse field [d] of type [date]"},
		{`{"b":"yes"}`, "failed to parse field [b] of type [boolean]"},
	} {
		_, err := buildDocument("id1", []byte(tt.src), field)
		var fe *fieldValueError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.src, err, tt.want)
		}
	}
	for _, src := range []string{``, `[]`, `"x"`, `null`, `{"a":1} {}`, `{"a":`} {
		if _, err := buildDocument("id1", []byte(src), field); err == nil {
			t.Errorf("%q: want an error", src)
		}
	}
}

func TestParseDate(t *testing.T) {
	for in, want := range map[string]string{
		"2026-11-21T10:30:00Z":              "2026-11-21T10:30:00Z",
		"2026-11-21T10:30:00.1Z":            "2026-11-21T10:30:00.1Z",
		"2026-11-21T10:30:00.123456789123Z": "2026-11-21T10:30:00.123456789Z",
		"2026-11-21T10:30:00,5+01:00":       "2026-11-21T09:30:00.5Z",
		"2026-11-21T10:30:00-0230":          "2026-11-21T13:00:00Z",
		"2026-11-21T10:30:00+05":            "2026-11-21T05:30:00Z",
		"2026-11-21T10:30":                  "2026-11-21T10:30:00Z",
		"2026-11-21T10":                     "2026-11-21T10:00:00Z",
		"2026-11":                           "2026-11-01T00:00:00Z",
		"2026":                              "2026-01-01T00:00:00Z",
		"0":                                 "1970-01-01T00:00:00Z",
		"-1000":                             "1969-12-31T23:59:59Z",
		"1795255200000.5":                   "2026-11-21T10:00:00.0005Z",
	} {
		got, err := parseDate(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got.Format(time.RFC3339Nano) != want {
			t.Errorf("%q = %s, want %s", in, got.Format(time.RFC3339Nano), want)
		}
	}
	for _, bad := range []string{"", "2026-1-1", "2026-02-30", "2026-11-21T25:00", "2026-11-21 10:30:00", "2026-11-21T10:30:00Zjunk", "abc", "2026-11-21T10:30:00+1"} {
		if _, err := parseDate(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}

func TestIndexMapping(t *testing.T) {
	im := newIndexMapping()
	if err := im.Validate(); err != nil {
		t.Fatal(err)
	}
	if a := im.AnalyzerNamed(standardAnalyzerName); a == nil {
		t.Fatal("standard analyzer not registered")
	}
	// The analyzer keeps stop words and lower-cases, like Elasticsearch's standard analyzer.
	got := analyzeText("The QUICK brown-fox isn't at cart-7d9f8b 10.0.0.1")
	want := []string{"the", "quick", "brown", "fox", "isn't", "at", "cart", "7d9f8b", "10.0.0.1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("analyze = %q, want %q", got, want)
	}
}

// BenchmarkBuildDocument: turning one ~600-byte log document into a bleve document, with an
// arena per 1,000 documents as a bulk request shares one.
func BenchmarkBuildDocument(b *testing.B) {
	fields := fieldSetOf(benchFieldInfos())
	_, src := benchDocument(42)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	var a *docArena
	for i := 0; i < b.N; i++ {
		if i%1000 == 0 {
			a = &docArena{}
		}
		if _, err := buildDocumentWith("id", src, fields, a); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzBuildDocument: the bulk path builds the documents escompat.ParseDocument accepts without
// validating them again (buildValidDocument); they must build as buildDocumentWith builds them,
// and never panic.
func FuzzBuildDocument(f *testing.F) {
	for _, seed := range []string{
		`{"k":"x","n":1,"d":"2026-11-21T10:00:00Z","t":"Hello World","b":true}`,
		`{"a":{"k":["x",{"y":"z"}],"n":[1,"2",null]},"a.k":"\u00e9\"\\"}`,
		`{"":{"":""},"t":[["deep"]],"n":-1.5e3,"d":1795255200000}`,
		`{"k":"` + strings.Repeat("é", 40) + `","b":"false"}`,
	} {
		f.Add([]byte(seed))
	}
	set := fieldSetOf(map[string]fieldInfo{
		"k": {Type: "keyword", IgnoreAbove: 20}, "n": {Type: "long"}, "d": {Type: "date"}, "t": {Type: "text"},
		"b": {Type: "boolean"}, "a": {Type: "object"}, "a.k": {Type: "keyword"}, "a.n": {Type: "double"},
		"a.k.y": {Type: "keyword"}, "": {Type: "object"}, ".": {Type: "keyword"},
	})
	f.Fuzz(func(t *testing.T, src []byte) {
		if _, err := escompat.ParseDocument(src); err != nil {
			return
		}
		got, gerr := buildValidDocument("id", src, set, nil)
		want, werr := buildDocumentWith("id", src, set, nil)
		if (gerr == nil) != (werr == nil) || gerr != nil && gerr.Error() != werr.Error() {
			t.Fatalf("errors differ: %v and %v", gerr, werr)
		}
		if gerr != nil {
			return
		}
		gv, _ := docFields(got)
		wv, _ := docFields(want)
		if !reflect.DeepEqual(gv, wv) {
			t.Fatalf("fields differ:\n%v\n%v", gv, wv)
		}
	})
}
