package schemas

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestAppendJSONShape(t *testing.T) {
	r := Record{
		ID:        "id-1",
		Timestamp: time.Date(2025, 3, 14, 10, 26, 53, 5, time.FixedZone("CET", 3600)),
		Log:       "a \"quoted\"\n line\x01 \u2028 é",
		Stream:    "stderr",
		Kubernetes: Kubernetes{
			PodName: "web-0",
			Labels:  map[string]string{"b": "2", "a": "1"},
		},
		Attributes: map[string]any{
			"int": int64(1), "float": 1.0, "big": 1e21, "tiny": 1e-7, "negzero": math.Copysign(0, -1),
			"null": nil, "bool": true, "str": "<&>",
		},
		Source: Source{Offset: math.MaxInt64},
	}
	got, err := AppendJSON(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"id-1","timestamp":"2025-03-14T09:26:53.000000005Z","observed_timestamp":null,` +
		`"tenant":"","stream":"stderr","log":"a \"quoted\"\n line\u0001 \u2028 é",` +
		`"truncated":false,"original_size":0,"invalid_utf8":false,"partial":false,` +
		`"kubernetes":{"namespace_name":"","pod_name":"web-0","pod_id":"","container_name":"","docker_id":"","host":"",` +
		`"labels":{"a":"1","b":"2"},"annotations":{}},` +
		`"attributes":{"big":1e+21,"bool":true,"float":1.0,"int":1,"negzero":-0.0,"null":null,"str":"<&>","tiny":1e-7},` +
		`"source":{"path":"","offset":9223372036854775807,"format":"","shipper":""}}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if !json.Valid(got) {
		t.Fatal("output is not valid JSON")
	}
}

// TestAppendJSONPodMetadata: the fields of schema v3 are written where the
// fluent-bit kubernetes filter puts them, and only when set.
func TestAppendJSONPodMetadata(t *testing.T) {
	r := Record{
		ID:       "id-1",
		Metadata: MetadataPartial,
		Kubernetes: Kubernetes{
			PodName:         "web-0",
			NamespaceLabels: map[string]string{"team": "web", "env": "prod"},
			ContainerImage:  "nginx:1.27",
			Workload:        Workload{Kind: "StatefulSet", Name: "web"},
		},
	}
	got, err := AppendJSON(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"id-1","timestamp":null,"observed_timestamp":null,"tenant":"","stream":"","log":"",` +
		`"truncated":false,"original_size":0,"invalid_utf8":false,"partial":false,"metadata":"partial",` +
		`"kubernetes":{"namespace_name":"","pod_name":"web-0","pod_id":"","container_name":"","docker_id":"","host":"",` +
		`"labels":{},"annotations":{},"namespace_labels":{"env":"prod","team":"web"},"container_image":"nginx:1.27",` +
		`"workload":{"kind":"StatefulSet","name":"web"}},` +
		`"attributes":{},"source":{"path":"","offset":0,"format":"","shipper":""}}`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Each is left out on its own when empty; a workload with only a kind
	// is written whole.
	r = Record{Kubernetes: Kubernetes{NamespaceLabels: map[string]string{}, Workload: Workload{Kind: "Job"}}}
	got, _ = AppendJSON(nil, &r)
	if s := string(got); strings.Contains(s, "metadata") || strings.Contains(s, "namespace_labels") ||
		strings.Contains(s, "container_image") || !strings.Contains(s, `"annotations":{},"workload":{"kind":"Job","name":""}},`) {
		t.Fatalf("got %s", got)
	}
}

// TestJSONRoundTrip: JSON carries the same values as Avro (see
// TestSingleObjectRoundTrip) except NaN and infinities, which it refuses.
func TestJSONRoundTrip(t *testing.T) {
	for _, tt := range avroCases() {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendJSON(nil, &tt.r)
			if hasNonFinite(&tt.r) {
				if !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("err = %v, want ErrInvalidRecord for a non-finite float", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeJSON(b)
			if err != nil {
				t.Fatal(err)
			}
			mustEqualRecords(t, got, normalized(tt.r))
		})
	}
	t.Run("random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for range 2000 {
			r := randomRecord(rng, true)
			b, err := AppendJSON(nil, &r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeJSON(b)
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			mustEqualRecords(t, got, normalized(r))
		}
	})
}

func TestDecodeJSONPartial(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Record
	}{
		{"empty object", `{}`, Record{}},
		{"log only, leading whitespace", " \t\r\n{\"log\":\"hello\"}", Record{Log: "hello"}},
		{"nulls are zero", `{"id":null,"log":null,"timestamp":null,"truncated":null,"kubernetes":null,"attributes":null,"source":null}`, Record{}},
		{"empty maps are nil", `{"kubernetes":{"labels":{},"annotations":{}},"attributes":{}}`, Record{}},
		{"unknown fields ignored", `{"log":"x","level":"info","nested":{"a":[1,2]}}`, Record{Log: "x"}},
		{"empty timestamp", `{"timestamp":""}`, Record{}},
		{"timestamp with offset and short fraction", `{"timestamp":"2025-03-14T10:26:53.5+01:00"}`,
			Record{Timestamp: time.Date(2025, 3, 14, 9, 26, 53, 500_000_000, time.UTC)}},
		{"timestamp without fraction", `{"observed_timestamp":"2025-03-14T09:26:53Z"}`,
			Record{ObservedTimestamp: time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)}},
		{"timestamp out of range is clamped", `{"timestamp":"9999-01-01T00:00:00Z"}`,
			Record{Timestamp: time.Unix(0, math.MaxInt64).UTC()}},
		{"epoch is unset", `{"timestamp":"1970-01-01T00:00:00Z"}`, Record{}},
		{"partial kubernetes", `{"kubernetes":{"pod_name":"p","labels":{"app":"a"}}}`,
			Record{Kubernetes: Kubernetes{PodName: "p", Labels: map[string]string{"app": "a"}}}},
		{"field names match case-insensitively", `{"LOG":"x"}`, Record{Log: "x"}},
		{"invalid utf-8 in log", "{\"log\":\"a\xffb\"}", Record{Log: "a\ufffdb", InvalidUTF8: true}},
		{"invalid utf-8 elsewhere", "{\"id\":\"a\xffb\"}", Record{ID: "a\ufffdb"}},
		{"flags", `{"log":"x","truncated":true,"original_size":9,"invalid_utf8":true,"partial":true}`,
			Record{Log: "x", Truncated: true, OriginalSize: 9, InvalidUTF8: true, Partial: true}},
		{"written before partial existed", `{"log":"x","invalid_utf8":true}`, Record{Log: "x", InvalidUTF8: true}},
		{"pod metadata", `{"metadata":"partial","kubernetes":{"namespace_labels":{"team":"a"},"container_image":"img:1","workload":{"kind":"Job","name":"j"}}}`,
			Record{Metadata: MetadataPartial, Kubernetes: Kubernetes{
				NamespaceLabels: map[string]string{"team": "a"}, ContainerImage: "img:1", Workload: Workload{Kind: "Job", Name: "j"},
			}}},
		{"empty namespace labels are nil, null workload is empty", `{"kubernetes":{"namespace_labels":{},"workload":null}}`, Record{}},
		{"metadata of another value is kept", `{"metadata":"path-only"}`, Record{Metadata: "path-only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			mustEqualRecords(t, got, tt.want)
		})
	}
}

func TestDecodeJSONAttributes(t *testing.T) {
	tests := []struct {
		raw  string
		want any
	}{
		{`null`, nil},
		{`true`, true},
		{`false`, false},
		{`"s"`, "s"},
		{`"\u00e9\n"`, "é\n"},
		{`"\ud800"`, "\ufffd"},
		{`1`, int64(1)},
		{`-0`, int64(0)},
		{`9223372036854775807`, int64(math.MaxInt64)},
		{`-9223372036854775808`, int64(math.MinInt64)},
		{`9223372036854775808`, 9223372036854775808.0},
		{`1.0`, 1.0},
		{`-0.0`, math.Copysign(0, -1)},
		{`1e3`, 1000.0},
		{`1E-3`, 0.001},
		{`12.7`, 12.7},
		{`1e400`, "1e400"},
		{`{ "a" : [1, 2] }`, `{"a":[1,2]}`},
		{`[ ]`, []any{}},
		{`["eu", 1, 2.5, true, null, "\u00e9"]`, []any{"eu", int64(1), 2.5, true, nil, "é"}},
		{`[1e400]`, []any{"1e400"}},
		{`["a", {"b": 1}]`, `["a",{"b":1}]`},
		{`[[1], 2]`, `[[1],2]`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := DecodeJSON([]byte(`{"attributes":{"k":` + tt.raw + `}}`))
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]any{"k": tt.want}; !attrsEqual(got.Attributes, want) {
				t.Fatalf("got %#v, want %#v", got.Attributes["k"], tt.want)
			}
		})
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{``, ErrUnknownFormat},
		{`   `, ErrUnknownFormat},
		{`null`, ErrUnknownFormat},
		{`[{}]`, ErrUnknownFormat},
		{`"x"`, ErrUnknownFormat},
		{`{"log":`, ErrUnknownFormat},
		{`{"log":"a"} trailing`, ErrUnknownFormat},
		{`{not json at all}`, ErrUnknownFormat},
		{strings.Repeat(`{"a":`, 20000), ErrUnknownFormat},
		{`{"truncated":"yes"}`, ErrMalformed},
		{`{"partial":1}`, ErrMalformed},
		{`{"metadata":true}`, ErrMalformed},
		{`{"kubernetes":{"workload":"web"}}`, ErrMalformed},
		{`{"kubernetes":{"namespace_labels":{"a":1}}}`, ErrMalformed},
		{`{"kubernetes":{"container_image":[]}}`, ErrMalformed},
		{`{"original_size":1.5}`, ErrMalformed},
		{`{"original_size":9223372036854775808}`, ErrMalformed},
		{`{"timestamp":123}`, ErrMalformed},
		{`{"timestamp":"yesterday"}`, ErrMalformed},
		{`{"kubernetes":{"labels":{"a":1}}}`, ErrMalformed},
		{`{"kubernetes":"k8s"}`, ErrMalformed},
		{`{"log":5}`, ErrMalformed},
		{`{"attributes":[]}`, ErrMalformed},
		{`{"source":{"offset":"0"}}`, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 40)], func(t *testing.T) {
			_, err := DecodeJSON([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// appendJSONString must read back, through encoding/json, as the string
// encoding/json itself would produce: the same escapes and the same U+FFFD
// per invalid byte.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 5000 {
		s := randomString(rng, false)
		got := appendJSONString(nil, s)
		if !json.Valid(got) {
			t.Fatalf("%q: invalid JSON %s", s, got)
		}
		std, _ := json.Marshal(s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(std, &b); err != nil {
			t.Fatal(err)
		}
		if a != b {
			t.Fatalf("%q: reads back as %q, encoding/json gives %q", s, a, b)
		}
	}
}

func TestAppendJSONFloat(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123456789, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Copysign(0, -1)} {
		b := appendJSONFloat(nil, f)
		var back float64
		if err := json.Unmarshal(b, &back); err != nil || math.Float64bits(back) != math.Float64bits(f) {
			t.Errorf("%v: wrote %s, reads back %v (%v)", f, b, back, err)
		}
		if g, ok := jsonNumber(b).(float64); !ok || math.Float64bits(g) != math.Float64bits(f) {
			t.Errorf("%v: wrote %s, decodes as %#v, want the same float64", f, b, jsonNumber(b))
		}
	}
}

// TestJSONArrayAttributes: arrays of scalars are written as JSON arrays, in
// order, and read back as []any.
func TestJSONArrayAttributes(t *testing.T) {
	r := Record{Attributes: map[string]any{
		"tags": []any{"eu", int64(1), 2.0, true, nil}, "names": []string{"a", "b"}, "none": []any{},
	}}
	b, err := AppendJSON(nil, &r)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"attributes":{"names":["a","b"],"none":[],"tags":["eu",1,2.0,true,null]}`; !strings.Contains(string(b), want) {
		t.Fatalf("got %s, want it to hold %s", b, want)
	}
	got, err := DecodeJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	mustEqualRecords(t, got, normalized(r))
	r.Attributes["bad"] = []any{math.NaN()}
	if _, err := AppendJSON(nil, &r); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("NaN item: err = %v, want ErrInvalidRecord", err)
	}
}
