package router

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/schemas"
)

// mustPipeline compiles a pipeline of the given steps for tenant "t".
func mustPipeline(t testing.TB, steps ...StepSpec) *Pipeline {
	t.Helper()
	p, err := Compile(&Spec{Tenant: "t", Version: 1, Steps: steps})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

func TestSteps(t *testing.T) {
	ts := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		steps   []StepSpec
		in      schemas.Record
		want    map[string]any // attributes subset
		absent  []string
		log     *string
		ts      time.Time
		dataset string
		dropped bool
		reason  string // DLQ reason, "" for none
	}{
		{name: "json flat", steps: []StepSpec{{Type: "json"}}, in: schemas.Record{Log: `{"a":"x","n":3,"f":1.5,"b":true,"z":null}`},
			want: map[string]any{"a": "x", "n": int64(3), "f": 1.5, "b": true, "z": nil}},
		{name: "json nested and depth", steps: []StepSpec{{Type: "json", Depth: 2}}, in: schemas.Record{Log: `{"a":{"b":{"c":1}},"l":[1,"x"]}`},
			want: map[string]any{"a.b": `{"c":1}`, "l": []any{int64(1), "x"}}},
		{name: "json arrays", steps: []StepSpec{{Type: "json"}},
			in: schemas.Record{Log: `{"tags":["eu","blue"],"none":[ ],"nested":[1,[2]],"objs":[{"a":1}],"esc":["a\"b",null,true,2.5]}`},
			want: map[string]any{"tags": []any{"eu", "blue"}, "none": []any{}, "nested": `[1,[2]]`, "objs": `[{"a":1}]`,
				"esc": []any{`a"b`, nil, true, 2.5}}},
		{name: "json long array stays text", steps: []StepSpec{{Type: "json"}},
			in:   schemas.Record{Log: `{"l":[` + strings.Repeat("1,", MaxArrayItems) + `1]}`},
			want: map[string]any{"l": `[` + strings.Repeat("1,", MaxArrayItems) + `1]`}},
		{name: "json typed array", steps: []StepSpec{{Type: "json", Types: map[string]string{"codes": "int"}}},
			in:   schemas.Record{Log: `{"codes":["200","-",404,null]}`},
			want: map[string]any{"codes": []any{int64(200), int64(404)}}},
		{name: "json bad array", steps: []StepSpec{{Type: "json"}}, in: schemas.Record{Log: `{"l":[1 2]}`}, reason: ReasonParse},
		{name: "set list", steps: []StepSpec{{Type: "set", Field: "tags", Value: []any{"eu", int64(1)}, HasValue: true},
			{Type: "set", Field: "parts", Expr: `split("a,b", ",")`}, {Type: "set", Field: "deep", Expr: `[[1], 2]`},
			{Type: "set", Field: "has", Expr: `"eu" in attributes.tags`}},
			want: map[string]any{"tags": []any{"eu", int64(1)}, "parts": []any{"a", "b"}, "deep": `[[1],2]`, "has": true}},
		{name: "json prefix and attribute field", steps: []StepSpec{{Type: "json", Field: "raw", Prefix: "p."}}, in: schemas.Record{Attributes: map[string]any{"raw": `{"k":"v"}`}},
			want: map[string]any{"p.k": "v"}},
		{name: "json prefix without its dot", steps: []StepSpec{{Type: "json", Prefix: "body"}}, in: schemas.Record{Log: `{"error":"x","a":{"b":1}}`},
			want: map[string]any{"body.error": "x", "body.a.b": int64(1)}},
		{name: "logfmt prefix without its dot", steps: []StepSpec{{Type: "logfmt", Prefix: "kv"}}, in: schemas.Record{Log: `a=1 b="x y"`},
			want: map[string]any{"kv.a": "1", "kv.b": "x y"}},
		{name: "json huge numbers", steps: []StepSpec{{Type: "json"}}, in: schemas.Record{Log: `{"n":1e400,"m":18446744073709551616}`},
			want: map[string]any{"n": "1e400", "m": 18446744073709551616.0}},
		{name: "json not object", steps: []StepSpec{{Type: "json"}}, in: schemas.Record{Log: `[1]`}, reason: ReasonParse},
		{name: "json trailing data", steps: []StepSpec{{Type: "json"}}, in: schemas.Record{Log: `{} {}`}, reason: ReasonParse},
		{name: "json skip", steps: []StepSpec{{Type: "json", OnError: "skip"}}, in: schemas.Record{Log: `nope`}, want: map[string]any{}},
		{name: "json missing field", steps: []StepSpec{{Type: "json", Field: "nope"}}, in: schemas.Record{Log: `{}`}, reason: ReasonParse},
		{name: "logfmt", steps: []StepSpec{{Type: "logfmt"}}, in: schemas.Record{Log: `level=info msg="hello \"you\"" empty= flag dur=3ms`},
			want: map[string]any{"level": "info", "msg": `hello "you"`, "empty": "", "flag": true, "dur": "3ms"}},
		{name: "logfmt free text", steps: []StepSpec{{Type: "logfmt"}}, in: schemas.Record{Log: `just words`}, reason: ReasonParse},
		{name: "logfmt unterminated", steps: []StepSpec{{Type: "logfmt"}}, in: schemas.Record{Log: `a="b`}, reason: ReasonParse},
		{name: "regex", steps: []StepSpec{{Type: "regex", Pattern: `^(?P<method>\S+) (?P<path>\S+)(?: (?P<opt>x))?`}}, in: schemas.Record{Log: "GET /a"},
			want: map[string]any{"method": "GET", "path": "/a"}, absent: []string{"opt"}},
		{name: "regex no match", steps: []StepSpec{{Type: "regex", Pattern: `^(?P<d>\d+)$`}}, in: schemas.Record{Log: "x"}, reason: ReasonParse},
		{name: "klog", steps: []StepSpec{{Type: "klog"}}, in: schemas.Record{Log: "I0102 03:04:05.000006 12 a.go:7] hi\nthere", Timestamp: ts},
			want: map[string]any{"severity": "info", "pid": int64(12), "file": "a.go", "line": int64(7), "message": "hi\nthere"},
			ts:   time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)},
		{name: "klog structured", steps: []StepSpec{{Type: "klog"}},
			in: schemas.Record{Log: `E0102 03:04:05.000006 12 pod.go:7] "Pod status update failed" pod="kube-system/coredns-5d78" err="context deadline exceeded" attempt=3`, Timestamp: ts},
			want: map[string]any{"severity": "error", "message": "Pod status update failed", "pod": "kube-system/coredns-5d78",
				"err": "context deadline exceeded", "attempt": "3"}},
		{name: "klog structured escapes", steps: []StepSpec{{Type: "klog"}},
			in:   schemas.Record{Log: `I0102 03:04:05.000006 12 a.go:7] "said \"hi\"" who="a \"b\""`, Timestamp: ts},
			want: map[string]any{"message": `said "hi"`, "who": `a "b"`}},
		{name: "klog quoted text that is not structured", steps: []StepSpec{{Type: "klog"}},
			in:   schemas.Record{Log: `I0102 03:04:05.000006 12 a.go:7] "quoted" and then words`, Timestamp: ts},
			want: map[string]any{"message": `"quoted" and then words`}, absent: []string{"and"}},
		{name: "klog bad date", steps: []StepSpec{{Type: "klog"}}, in: schemas.Record{Log: "I0231 03:04:05.000006 12 a.go:7] x", Timestamp: ts}, reason: ReasonParse},
		{name: "timestamp rfc3339", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"RFC3339"}}}, in: schemas.Record{Attributes: map[string]any{"ts": "2026-11-21T11:00:00+01:00"}}, ts: ts},
		{name: "timestamp unix_ms", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"unix_ms"}}}, in: schemas.Record{Attributes: map[string]any{"ts": int64(1795255200000)}}, ts: time.UnixMilli(1795255200000).UTC()},
		{name: "timestamp unix float", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"unix"}}}, in: schemas.Record{Attributes: map[string]any{"ts": 1.5}}, ts: time.Unix(1, 5e8).UTC()},
		{name: "timestamp go layout", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"2006-01-02 15:04:05"}}}, in: schemas.Record{Attributes: map[string]any{"ts": "2026-11-21 10:00:00"}}, ts: ts},
		{name: "timestamp layouts in order, strftime", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"RFC3339", "%d/%b/%Y:%H:%M:%S %z"}}},
			in: schemas.Record{Attributes: map[string]any{"ts": "21/Nov/2026:11:00:00 +0100"}}, ts: ts},
		{name: "timestamp strftime fraction", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"%Y-%m-%d %H:%M:%S.%f"}}},
			in: schemas.Record{Attributes: map[string]any{"ts": "2026-11-21 10:00:00.250"}}, ts: ts.Add(250 * time.Millisecond)},
		{name: "timestamp ISO8601 offset without colon", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"ISO8601"}}},
			in: schemas.Record{Attributes: map[string]any{"ts": "2026-11-21T11:00:00.000+0100"}}, ts: ts},
		{name: "timestamp ISO8601 space, no fraction, Z", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"ISO8601"}}},
			in: schemas.Record{Attributes: map[string]any{"ts": "2026-11-21 10:00:00Z"}}, ts: ts},
		{name: "timestamp zone-less in a timezone", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"ISO8601"}, Timezone: "Europe/Paris"}},
			in: schemas.Record{Attributes: map[string]any{"ts": "2026-11-21T11:00:00"}}, ts: ts},
		{name: "timestamp zone in the input wins", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"RFC3339"}, Timezone: "+05:00"}},
			in: schemas.Record{Attributes: map[string]any{"ts": "2026-11-21T10:00:00Z"}}, ts: ts},
		{name: "timestamp no layout matches", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"RFC3339", "unix"}}},
			in: schemas.Record{Attributes: map[string]any{"ts": "yesterday"}}, reason: ReasonTimestamp},
		{name: "klog in a timezone", steps: []StepSpec{{Type: "klog", Timezone: "-03:00"}}, in: schemas.Record{Log: "I1121 07:00:00.000000 1 a.go:1] x", Timestamp: ts},
			ts: ts},
		{name: "timestamp bad", steps: []StepSpec{{Type: "timestamp", Field: "ts", Layouts: []string{"RFC3339"}}}, in: schemas.Record{Attributes: map[string]any{"ts": "x"}}, reason: ReasonTimestamp},
		{name: "set value", steps: []StepSpec{{Type: "set", Field: "env", Value: "prod", HasValue: true}}, want: map[string]any{"env": "prod"}},
		{name: "set expr int", steps: []StepSpec{{Type: "set", Field: "n", Expr: `len(log) * 2`}}, in: schemas.Record{Log: "abc"}, want: map[string]any{"n": int64(6)}},
		{name: "set log", steps: []StepSpec{{Type: "set", Field: "log", Expr: `upper(log)`}}, in: schemas.Record{Log: "abc"}, log: ptr("ABC")},
		{name: "set expr runtime error", steps: []StepSpec{{Type: "set", Field: "n", Expr: `int(attributes.x)`}}, in: schemas.Record{Attributes: map[string]any{"x": "nan"}}, reason: ReasonExpr},
		{name: "set timestamp from non-time", steps: []StepSpec{{Type: "set", Field: "timestamp", Expr: `1`}}, reason: ReasonField},
		{name: "rename", steps: []StepSpec{{Type: "rename", From: "msg", To: "log"}}, in: schemas.Record{Attributes: map[string]any{"msg": "m"}}, log: ptr("m"), absent: []string{"msg"}},
		{name: "rename missing is no-op", steps: []StepSpec{{Type: "rename", From: "a", To: "b"}}, absent: []string{"a", "b"}},
		{name: "rename attribute named log", steps: []StepSpec{{Type: "rename", From: "attributes.log", To: "l"}}, in: schemas.Record{Log: "keep", Attributes: map[string]any{"log": "x"}}, log: ptr("keep"), want: map[string]any{"l": "x"}},
		{name: "copy", steps: []StepSpec{{Type: "copy", From: "log", To: "orig"}}, in: schemas.Record{Log: "x"}, log: ptr("x"), want: map[string]any{"orig": "x"}},
		{name: "remove", steps: []StepSpec{{Type: "remove", Fields: []string{"password", "log"}}}, in: schemas.Record{Log: "x", Attributes: map[string]any{"password": "p", "k": 1}}, log: ptr(""), absent: []string{"password"}},
		{name: "lift", steps: []StepSpec{{Type: "lift", Field: "payload"}}, in: schemas.Record{Attributes: map[string]any{"payload.a": int64(1), "payload.b.c": "x", "payload": "raw", "a": "old"}},
			want: map[string]any{"a": int64(1), "b.c": "x", "payload": "raw"}, absent: []string{"payload.a"}},
		{name: "drop true", steps: []StepSpec{{Type: "drop", If: `attributes.level == "debug"`}}, in: schemas.Record{Attributes: map[string]any{"level": "debug"}}, dropped: true},
		{name: "drop false", steps: []StepSpec{{Type: "drop", If: `attributes.level == "debug"`}}, in: schemas.Record{Attributes: map[string]any{"level": "info"}}},
		{name: "condition without attributes", steps: []StepSpec{{Type: "drop", If: `attributes.level == "debug" || attributes["a.b"] != nil`}}, in: schemas.Record{}},
		{name: "keep", steps: []StepSpec{{Type: "keep", If: `stream == "stderr"`}}, in: schemas.Record{Stream: "stdout"}, dropped: true},
		{name: "condition non-bool at run time", steps: []StepSpec{{Type: "drop", If: `attributes.flag`}}, in: schemas.Record{Attributes: map[string]any{"flag": "yes"}}, reason: ReasonExpr},
		{name: "sample one_in 1 keeps", steps: []StepSpec{{Type: "sample", OneIn: 1}}, in: schemas.Record{ID: "x"}},
		{name: "route first wins", steps: []StepSpec{{Type: "route", If: `true`, Dataset: "a"}, {Type: "route", If: `true`, Dataset: "b"}}, dataset: "a"},
		{name: "route none", steps: []StepSpec{{Type: "route", If: `false`, Dataset: "a"}}, dataset: ""},
		{name: "route then drop", steps: []StepSpec{{Type: "route", If: `true`, Dataset: "a"}, {Type: "drop", If: `true`}}, dropped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPipeline(t, tt.steps...)
			r := tt.in
			res := p.Process(&r)
			if tt.reason != "" {
				if res.DLQ == nil || res.DLQ.Reason != tt.reason {
					t.Fatalf("got %+v, want dlq reason %q", res, tt.reason)
				}
				if !errors.Is(res.DLQ, ErrStep) {
					t.Errorf("failure does not wrap ErrStep: %v", res.DLQ)
				}
				return
			}
			if res.DLQ != nil {
				t.Fatalf("unexpected dlq: %v", res.DLQ)
			}
			if res.Dropped != tt.dropped {
				t.Fatalf("dropped = %v, want %v", res.Dropped, tt.dropped)
			}
			if res.Dataset != tt.dataset {
				t.Errorf("dataset = %q, want %q", res.Dataset, tt.dataset)
			}
			for k, v := range tt.want {
				got, ok := r.Attributes[k]
				if !ok || !sameValue(got, v) {
					t.Errorf("attribute %q = %#v (present %v), want %#v; all: %v", k, got, ok, v, r.Attributes)
				}
			}
			for _, k := range tt.absent {
				if _, ok := r.Attributes[k]; ok {
					t.Errorf("attribute %q present, want absent", k)
				}
			}
			if tt.log != nil && r.Log != *tt.log {
				t.Errorf("log = %q, want %q", r.Log, *tt.log)
			}
			if !tt.ts.IsZero() && !r.Timestamp.Equal(tt.ts) {
				t.Errorf("timestamp = %v, want %v", r.Timestamp, tt.ts)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSampleDeterministic(t *testing.T) {
	p := mustPipeline(t, StepSpec{Type: "sample", OneIn: 10})
	kept := 0
	for i := range 10000 {
		id := "id-" + strconv.Itoa(i)
		r1, r2 := schemas.Record{ID: id}, schemas.Record{ID: id}
		a, b := p.Process(&r1), p.Process(&r2)
		if a.Dropped != b.Dropped {
			t.Fatalf("sample not deterministic for %q", id)
		}
		if !a.Dropped {
			kept++
		}
	}
	if kept < 800 || kept > 1200 {
		t.Errorf("kept %d of 10000 with one_in 10", kept)
	}
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0)) + string(rune('0'+i%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i/100%10)) + string(rune('0'+i/1000%10))
}

func TestOverflow(t *testing.T) {
	p := PassThrough("t")
	r := schemas.Record{Attributes: map[string]any{}}
	for i := range 300 {
		r.Attributes[fmt.Sprintf("k%03d", i)] = int64(i)
	}
	if res := p.Process(&r); res.DLQ != nil || res.Dropped {
		t.Fatalf("unexpected %+v", res)
	}
	if len(r.Attributes) != MaxAttributes {
		t.Fatalf("%d attributes, want %d", len(r.Attributes), MaxAttributes)
	}
	s, ok := r.Attributes[OverflowKey].(string)
	if !ok || !strings.HasPrefix(s, "{") || strings.Count(s, ":") != 300-(MaxAttributes-1) {
		t.Errorf("overflow = %q", s)
	}
}

func TestPanicRecovered(t *testing.T) {
	p := mustPipeline(t, StepSpec{Type: "set", Field: "x", Value: "y", HasValue: true})
	p.steps = append(p.steps, panicStep{})
	p.types = append(p.types, "boom")
	r := schemas.Record{}
	res := p.Process(&r)
	if res.DLQ == nil || res.DLQ.Reason != ReasonPanic || res.DLQ.Step != 1 || res.DLQ.StepType != "boom" {
		t.Fatalf("got %+v", res.DLQ)
	}
}

type panicStep struct{}

func (panicStep) apply(*schemas.Record, *state) *stepError { panic("boom") }

func TestPassThroughUnchanged(t *testing.T) {
	p := PassThrough("t")
	r := schemas.Record{Log: "x", Stream: "stdout", Attributes: map[string]any{"a": int64(1)}}
	if res := p.Process(&r); res.DLQ != nil || res.Dropped || res.Dataset != "" || res.Copies != nil {
		t.Fatalf("got %+v", res)
	}
	if r.Log != "x" || r.Attributes["a"] != int64(1) {
		t.Errorf("record changed: %+v", r)
	}
}

// TestExpressionsKubernetes: expressions read the record's Kubernetes
// metadata as kubernetes, under its JSON field names, the pod metadata of
// schema v3 included; names are checked at compile time, and a record
// without the metadata reads empty values.
func TestExpressionsKubernetes(t *testing.T) {
	p := mustPipeline(t,
		StepSpec{Type: "set", Field: "team", Expr: `kubernetes.namespace_labels["team"]`},
		StepSpec{Type: "set", Field: "owner", Expr: `kubernetes.workload.kind + "/" + kubernetes.workload.name`},
		StepSpec{Type: "set", Field: "image", Expr: `kubernetes.container_image`},
		StepSpec{Type: "set", Field: "app", Expr: `kubernetes.labels["app"] + "@" + kubernetes.pod_name`},
		StepSpec{Type: "set", Field: "labelled", Expr: `"team" in kubernetes.namespace_labels`},
		StepSpec{Type: "set", Field: "json", Expr: `toJSON(kubernetes.workload)`},
		StepSpec{Type: "route", If: `kubernetes.workload.kind == "Deployment" && kubernetes.namespace_labels.team == "shop"`, Dataset: "deployments"},
	)
	r := schemas.Record{Log: "x", Metadata: schemas.MetadataPartial, Kubernetes: schemas.Kubernetes{
		PodName:         "cart-7d9f8b6c5-x2k4q",
		Labels:          map[string]string{"app": "cart"},
		NamespaceLabels: map[string]string{"team": "shop"},
		ContainerImage:  "registry.example.com/shop/cart:1.4.2",
		Workload:        schemas.Workload{Kind: "Deployment", Name: "cart"},
	}}
	res := p.Process(&r)
	if res.DLQ != nil || res.Dataset != "deployments" {
		t.Fatalf("result %+v, want dataset deployments", res)
	}
	want := map[string]any{
		"team": "shop", "owner": "Deployment/cart", "image": "registry.example.com/shop/cart:1.4.2",
		"app": "cart@cart-7d9f8b6c5-x2k4q", "labelled": true,
	}
	for k, v := range want {
		if r.Attributes[k] != v {
			t.Errorf("attribute %s = %#v, want %#v", k, r.Attributes[k], v)
		}
	}
	var w map[string]string
	if s, _ := r.Attributes["json"].(string); json.Unmarshal([]byte(s), &w) != nil || w["kind"] != "Deployment" || w["name"] != "cart" || len(w) != 2 {
		t.Errorf("toJSON(kubernetes.workload) = %q", r.Attributes["json"])
	}

	// Without the metadata: empty values, no failure, not routed.
	r = schemas.Record{Log: "y"}
	if res := p.Process(&r); res.DLQ != nil || res.Dataset != "" {
		t.Fatalf("record without metadata: %+v", res)
	}
	for k, v := range map[string]any{"team": "", "owner": "/", "image": "", "app": "@", "labelled": false} {
		if r.Attributes[k] != v {
			t.Errorf("without metadata: attribute %s = %#v, want %#v", k, r.Attributes[k], v)
		}
	}

	// Field names are the JSON names, checked at compile time.
	for _, src := range []string{`kubernetes.workload.owner == ""`, `kubernetes.NamespaceLabels == nil`, `kubernetes.image == ""`} {
		if _, err := Compile(&Spec{Tenant: "t", Version: 1, Steps: []StepSpec{{Type: "drop", If: src}}}); err == nil {
			t.Errorf("%s compiled", src)
		}
	}

	// The filter of tools (sluice tail --filter) sees the same names.
	f, err := CompileFilter(`kubernetes.workload.name == "cart" && kubernetes.container_image endsWith ":1.4.2"`)
	if err != nil {
		t.Fatal(err)
	}
	r = schemas.Record{Kubernetes: schemas.Kubernetes{ContainerImage: "cart:1.4.2", Workload: schemas.Workload{Kind: "Deployment", Name: "cart"}}}
	if ok, err := f.Match("t", &r); !ok || err != nil {
		t.Fatalf("filter: %v, %v", ok, err)
	}
}

// TestExpressionsKubernetesCost: the whole kubernetes value is charged by
// its size, so large annotations cannot be copied for free.
func TestExpressionsKubernetesCost(t *testing.T) {
	p := mustPipeline(t, StepSpec{Type: "set", Field: "k", Expr: `toJSON(kubernetes) + toJSON(kubernetes) + toJSON(kubernetes) + toJSON(kubernetes)`})
	big := strings.Repeat("a", 3<<20)
	r := schemas.Record{Log: "x", Kubernetes: schemas.Kubernetes{Annotations: map[string]string{"big": big}}}
	res := p.Process(&r)
	if res.DLQ == nil || res.DLQ.Reason != ReasonCostExceeded {
		t.Fatalf("result %+v, want ReasonCostExceeded", res)
	}
	r = schemas.Record{Log: "x", Kubernetes: schemas.Kubernetes{NamespaceLabels: map[string]string{"team": "shop"}}}
	if res := p.Process(&r); res.DLQ != nil {
		t.Fatalf("small record: %+v", res.DLQ)
	}
	var k map[string]any
	s, _ := r.Attributes["k"].(string)
	if err := json.NewDecoder(strings.NewReader(s)).Decode(&k); err != nil {
		t.Fatal(err)
	}
	if nl, _ := k["namespace_labels"].(map[string]any); nl["team"] != "shop" || k["workload"] == nil || k["container_image"] != "" {
		t.Fatalf("toJSON(kubernetes) = %q", s)
	}
}

// TestConcurrentProcess exercises the evaluator pool under -race.
func TestConcurrentProcess(t *testing.T) {
	p := mustPipeline(t, StepSpec{Type: "json"}, StepSpec{Type: "set", Field: "x", Expr: `attributes.a + "-" + tenant`}, StepSpec{Type: "route", If: `attributes.a == "r"`, Dataset: "r"})
	done := make(chan bool)
	for g := range 8 {
		go func() {
			ok := true
			for i := range 500 {
				a := "r"
				if (g+i)%2 == 0 {
					a = "m"
				}
				r := schemas.Record{Log: `{"a":"` + a + `"}`}
				res := p.Process(&r)
				ok = ok && r.Attributes["x"] == a+"-t" && (res.Dataset == "r") == (a == "r")
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Error("wrong result under concurrency")
		}
	}
}

// TestEpochExact: epochs are converted without float rounding, whatever
// their unit and form.
func TestEpochExact(t *testing.T) {
	for _, c := range []struct {
		layout string
		in     any
		want   time.Time
	}{
		{"unix_ms", int64(1795255200123), time.UnixMilli(1795255200123)},
		{"unix_ms", "1795255200123", time.UnixMilli(1795255200123)},
		{"unix_ms", float64(1795255200123), time.UnixMilli(1795255200123)},
		{"unix", "1795255200.123", time.UnixMilli(1795255200123)},
		{"unix", 1795255200.123, time.UnixMilli(1795255200123)},
		{"unix", "1795255200.123456789", time.Unix(1795255200, 123456789)},
		{"unix", "1795255200.1234567891", time.Unix(1795255200, 123456789)},
		{"unix_us", "1795255200123456.7", time.Unix(1795255200, 123456700)},
		{"unix_ns", int64(1795255200123456789), time.Unix(1795255200, 123456789)},
		{"unix", int64(-1), time.Unix(-1, 0)},
		{"unix", "-1.5", time.Unix(-1, -500000000)},
	} {
		ls, err := resolveLayout(c.layout)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseTime(c.in, ls[0], time.UTC)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s %v: %v, %v; want %v", c.layout, c.in, got.Format(time.RFC3339Nano), err, c.want.UTC().Format(time.RFC3339Nano))
		}
	}
	for _, bad := range []any{"", "1e9", "12a", ".", "9223372036854775807", int64(9223372036854775807), true} {
		if _, err := parseTime(bad, timeLayout{scale: 1e9}, time.UTC); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestCSV: a csv step reads CSV and TSV lines into their columns, quoted
// values whole, with types; bad definitions are refused.
func TestCSV(t *testing.T) {
	src := `tenant: t
version: 1
steps:
  - csv: {header: 'time,user,action,amount', types: {amount: float}}
tests:
  - name: quoted values
    line: '2026-11-21T10:00:00Z,"doe, jane",refund,12.50'
    expect: {attributes: {time: '2026-11-21T10:00:00Z', user: 'doe, jane', action: refund, amount: 12.5}}
  - name: fewer values than columns
    line: 'x,y'
    expect: {attributes: {time: x, user: y}, absent: [action, amount]}
  - name: more values than columns
    line: 'a,b,c,1,e'
    expect: {dlq: true}
`
	if _, err := Load([]byte(src)); err != nil {
		t.Fatal(err)
	}
	tsv := "tenant: t\nversion: 1\nsteps:\n  - csv: {columns: [a, b], delimiter: '\\t'}\ntests:\n  - name: tab\n    line: \"1\\t2\"\n    expect: {attributes: {a: '1', b: '2'}}\n"
	if _, err := Load([]byte(tsv)); err != nil {
		t.Fatal(err)
	}
	for doc, want := range map[string]string{
		"  - csv: {}\n":                              "missing columns",
		"  - csv: {columns: [a, a]}\n":               "repeated name",
		"  - csv: {columns: [a], header: 'a'}\n":     "columns or header, not both",
		"  - csv: {columns: [a], delimiter: '::'}\n": "csv.delimiter",
	} {
		if _, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n" + doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
}

// FuzzSplitCSV holds splitCSV to encoding/csv (LazyQuotes, any number of
// fields) on lines without newlines, and checks what it does with them.
func FuzzSplitCSV(f *testing.F) {
	for _, s := range []string{`a,b,c`, `"doe, jane",x`, `"a""b",c`, `"a"b,c`, `"open`, `a"b,"c"`, `,,`, `""`, `"x",`, "é,\xff", `"a"";b"`, "a\tb"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, line string, c uint8) {
		comma := []rune{',', '\t', ';', '|', '§'}[int(c)%5]
		got, err := splitCSV(nil, line, comma)
		if strings.ContainsAny(line, "\r\n") {
			// Newlines: a trailing one is dropped; one outside quotes is
			// an error; either way nothing panics.
			trimmed := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if err == nil && strings.HasSuffix(line, "\n") && !strings.HasSuffix(trimmed, "\n") {
				again, err2 := splitCSV(nil, trimmed, comma)
				if err2 != nil || !slices.Equal(got, again) {
					t.Fatalf("%q: trailing newline changes %q to %q (%v)", line, again, got, err2)
				}
			}
			return
		}
		cr := csv.NewReader(strings.NewReader(line))
		cr.Comma, cr.FieldsPerRecord, cr.LazyQuotes = comma, -1, true
		want, werr := cr.Read()
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: error %v, encoding/csv %v", line, err, werr)
		}
		if err == nil && !slices.Equal(got, want) {
			t.Fatalf("%q: %q, encoding/csv %q", line, got, want)
		}
	})
}

// TestSplitCSVLines: one trailing newline ends the line; a newline
// inside quotes is part of the value; any other is an error.
func TestSplitCSVLines(t *testing.T) {
	for line, want := range map[string][]string{
		"a,b\n":           {"a", "b"},
		"a,b\r\n":         {"a", "b"},
		"\"x\ny\",z":      {"x\ny", "z"},
		"\"x\",\"y\"\r\n": {"x", "y"},
	} {
		if got, err := splitCSV(nil, line, ','); err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %q, %v; want %q", line, got, err, want)
		}
	}
	for _, line := range []string{"a,b\nc,d", "\"a\"\nb", "", "\n"} {
		if got, err := splitCSV(nil, line, ','); err == nil {
			t.Errorf("%q: %q, want an error", line, got)
		}
	}
}
