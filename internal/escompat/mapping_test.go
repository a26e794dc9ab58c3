package escompat_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// typed is a mapping with one field of each checked type.
const typed = `{"properties":{
  "status": {"type":"long"},
  "small": {"type":"byte"},
  "ratio": {"type":"float"},
  "strict_n": {"type":"integer","coerce":false},
  "lenient": {"type":"long","ignore_malformed":true},
  "flag": {"type":"boolean"},
  "name": {"type":"keyword","fields":{"n":{"type":"long"}}},
  "body": {"type":"text"},
  "ts": {"type":"date"},
  "day": {"type":"date","format":"yyyy-MM-dd"},
  "custom": {"type":"date","format":"dd/MM/yyyy"},
  "addr": {"type":"ip"},
  "loc": {"type":"geo_point"},
  "http": {"properties":{"status":{"type":"long"}}},
  "raw": {"type":"object","enabled":false},
  "opaque": {"type":"keyword","enabled":false}
}}`

func mustMapping(t *testing.T, settings, mappings string) *escompat.Mapping {
	t.Helper()
	var s, m json.RawMessage
	if settings != "" {
		s = json.RawMessage(settings)
	}
	if mappings != "" {
		m = json.RawMessage(mappings)
	}
	mp, err := escompat.NewMapping(s, m)
	if err != nil {
		t.Fatalf("NewMapping: %v", err)
	}
	return mp
}

// check parses and checks doc; it returns the error reason ("" when the
// document is accepted) and applies accepted documents.
func check(t *testing.T, m *escompat.Mapping, id, doc string) (*escompat.Error, *escompat.Update) {
	t.Helper()
	d, err := escompat.ParseDocument([]byte(doc))
	if err != nil {
		return err, nil
	}
	u, err := m.Check(id, d)
	if err != nil {
		return err, nil
	}
	m.Apply(u)
	return nil, u
}

func TestMappingCoercion(t *testing.T) {
	cases := []struct {
		doc    string
		reason string // "" when accepted
	}{
		{`{"status":200}`, ""},
		{`{"status":"200"}`, ""},
		{`{"status":1.9}`, ""},
		{`{"status":"1.5"}`, ""},
		{`{"status":"1e3"}`, ""},
		{`{"status":-9223372036854775808}`, ""},
		{`{"status":"oops"}`, "[1:11] failed to parse field [status] of type [long] in document with id 'abc'. Preview of field's value: 'oops'"},
		{`{"status":""}`, "[1:11] failed to parse field [status] of type [long] in document with id 'abc'. Preview of field's value: ''"},
		{`{"status":true}`, "[1:11] failed to parse field [status] of type [long] in document with id 'abc'. Preview of field's value: 'true'"},
		{`{"status":9223372036854775808}`, "[1:11] failed to parse field [status] of type [long] in document with id 'abc'. Preview of field's value: '9223372036854775808'"},
		{`{"status":{"code":1}}`, "[1:20] failed to parse field [status] of type [long] in document with id 'abc'. Preview of field's value: '{code=1}'"},
		{`{"status":[1,"2",null,[3]]}`, ""},
		{`{"status":[1,"x"]}`, "[1:14] failed to parse field [status] of type [long] in document with id 'abc'. Preview of field's value: 'x'"},
		{`{"small":127}`, ""},
		{`{"small":128}`, "[1:10] failed to parse field [small] of type [byte] in document with id 'abc'. Preview of field's value: '128'"},
		{`{"ratio":0.5}`, ""},
		{`{"ratio":"2.5"}`, ""},
		{`{"ratio":1e39}`, "[1:10] failed to parse field [ratio] of type [float] in document with id 'abc'. Preview of field's value: '1.0E39'"},
		{`{"strict_n":3}`, ""},
		{`{"strict_n":"3"}`, "[1:13] failed to parse field [strict_n] of type [integer] in document with id 'abc'. Preview of field's value: '3'"},
		{`{"strict_n":3.5}`, "[1:13] failed to parse field [strict_n] of type [integer] in document with id 'abc'. Preview of field's value: '3.5'"},
		{`{"lenient":"not a number"}`, ""},
		{`{"flag":true}`, ""},
		{`{"flag":"false"}`, ""},
		{`{"flag":""}`, ""},
		{`{"flag":"yes"}`, "[1:9] failed to parse field [flag] of type [boolean] in document with id 'abc'. Preview of field's value: 'yes'"},
		{`{"flag":1}`, "[1:9] failed to parse field [flag] of type [boolean] in document with id 'abc'. Preview of field's value: '1'"},
		{`{"name":"x"}`, "[1:9] failed to parse field [name.n] of type [long] in document with id 'abc'. Preview of field's value: 'x'"},
		{`{"name":42}`, ""},
		{`{"name":{"b":1}}`, "[1:15] failed to parse field [name] of type [keyword] in document with id 'abc'. Preview of field's value: '{b=1}'"},
		{`{"body":false}`, ""},
		{`{"body":["a",{"x":[1,2]}]}`, "[1:24] failed to parse field [body] of type [text] in document with id 'abc'. Preview of field's value: '{x=[1, 2]}'"},
		{`{"ts":"2024-05-01T10:11:12.123456789+05:30"}`, ""},
		{`{"ts":"2024-05-01T10:11:12Z"}`, ""},
		{`{"ts":"2024-05-01"}`, ""},
		{`{"ts":"2024-02-29T00:00"}`, ""},
		{`{"ts":1714557072000}`, ""},
		{`{"ts":"1714557072000"}`, ""},
		{`{"ts":"2023-02-29"}`, "[1:7] failed to parse field [ts] of type [date] in document with id 'abc'. Preview of field's value: '2023-02-29'"},
		{`{"ts":"2024-05-01T10:11:12.1234567890Z"}`, "[1:7] failed to parse field [ts] of type [date] in document with id 'abc'. Preview of field's value: '2024-05-01T10:11:12.1234567890Z'"},
		{`{"ts":"yesterday"}`, "[1:7] failed to parse field [ts] of type [date] in document with id 'abc'. Preview of field's value: 'yesterday'"},
		{`{"ts":true}`, "[1:7] failed to parse field [ts] of type [date] in document with id 'abc'. Preview of field's value: 'true'"},
		{`{"day":"2024-05-01"}`, ""},
		{`{"day":"2024-05-01T00:00:00Z"}`, "[1:8] failed to parse field [day] of type [date] in document with id 'abc'. Preview of field's value: '2024-05-01T00:00:00Z'"},
		{`{"custom":"01/05/2024"}`, ""},
		{`{"addr":"10.0.0.1"}`, ""},
		{`{"addr":"::1"}`, ""},
		{`{"addr":"10.0.0.256"}`, "[1:9] failed to parse field [addr] of type [ip] in document with id 'abc'. Preview of field's value: '10.0.0.256'"},
		{`{"loc":{"lat":1,"lon":2}}`, ""},
		{`{"http":{"status":"201"}}`, ""},
		{`{"http":5}`, "[1:9] object mapping for [http] tried to parse field [http] as object, but found a concrete value"},
		{`{"http":{"status":{"x":1}}}`, "[1:25] failed to parse field [http.status] of type [long] in document with id 'abc'. Preview of field's value: '{x=1}'"},
		{`{"http":[{"status":1},{"status":2}]}`, ""},
		{`{"http":null,"status":null,"ts":null}`, ""},
		{`{"raw":{"anything":[1,{"goes":true}]}}`, ""},
		{`{"raw":"even a scalar"}`, ""},
		{`{"opaque":{"x":1}}`, ""},
	}
	for _, tc := range cases {
		m := mustMapping(t, "", typed)
		before := m.Fields()
		err, _ := check(t, m, "abc", tc.doc)
		got := ""
		if err != nil {
			got = err.Reason
			if err.Type != "document_parsing_exception" || err.Status != 400 {
				t.Errorf("%s: error %s/%d", tc.doc, err.Type, err.Status)
			}
			if !reflect.DeepEqual(m.Fields(), before) {
				t.Errorf("%s: a refused document changed the mapping", tc.doc)
			}
		}
		if got != tc.reason {
			t.Errorf("%s:\n got  %q\n want %q", tc.doc, got, tc.reason)
		}
	}
}

func TestMappingCausedBy(t *testing.T) {
	cases := []struct{ doc, typ, reason string }{
		{`{"status":"oops"}`, "illegal_argument_exception", `For input string: "oops"`},
		{`{"small":300}`, "illegal_argument_exception", "Value [300] is out of range for a byte"},
		{`{"flag":"yes"}`, "illegal_argument_exception", "Failed to parse value [yes] as only [true] or [false] are allowed."},
		{`{"ts":"x-y"}`, "illegal_argument_exception", "failed to parse date field [x-y] with format [strict_date_optional_time||epoch_millis]"},
		{`{"name":{"b":1}}`, "illegal_state_exception", "Can't get text on a START_OBJECT at 1:9"},
		{`{"status":true}`, "x_content_parse_exception", "[1:11] Current token (VALUE_TRUE) not numeric, can not use numeric value accessors"},
	}
	for _, tc := range cases {
		err, _ := check(t, mustMapping(t, "", typed), "abc", tc.doc)
		if err == nil || err.CausedBy == nil {
			t.Errorf("%s: no caused_by (%v)", tc.doc, err)
			continue
		}
		if err.CausedBy.Type != tc.typ || err.CausedBy.Reason != tc.reason {
			t.Errorf("%s: caused_by %s %q, want %s %q", tc.doc, err.CausedBy.Type, err.CausedBy.Reason, tc.typ, tc.reason)
		}
	}
}

func TestMappingDynamic(t *testing.T) {
	cases := []struct {
		name, settings, mappings string
		docs                     []string // all but the last must be accepted
		errType, reason          string   // for the last document; "" when accepted
		fields                   map[string]string
	}{
		{
			name: "json types", docs: []string{`{"s":"x","n":1,"f":1.5,"b":true,"o":{"in":"y"},"nil":null,"empty":[],"when":"2024-05-01T00:00:00Z","e":{}}`},
			fields: map[string]string{"s": "keyword", "n": "long", "f": "float", "b": "boolean", "o": "object", "o.in": "keyword", "when": "date", "e": "object"},
		},
		{
			name: "dotted keys are object paths", docs: []string{`{"http.status":200,"http.req":{"method":"GET"}}`},
			fields: map[string]string{"http": "object", "http.status": "long", "http.req": "object", "http.req.method": "keyword"},
		},
		{
			name: "dotted key below a leaf", docs: []string{`{"a":"text"}`, `{"a.b":1}`},
			errType: "document_parsing_exception",
			reason:  "[1:8] failed to parse field [a] of type [keyword] in document with id 'x'. Preview of field's value: '{b=1}'",
			fields:  map[string]string{"a": "keyword"},
		},
		{
			name: "object given to a leaf", docs: []string{`{"a":"text"}`, `{"a":{"b":1}}`},
			errType: "document_parsing_exception",
			reason:  "[1:12] failed to parse field [a] of type [keyword] in document with id 'x'. Preview of field's value: '{b=1}'",
			fields:  map[string]string{"a": "keyword"},
		},
		{
			name: "scalar given to a dynamic object", docs: []string{`{"a":{"b":1}}`, `{"a":{"b":{"c":true}}}`},
			errType: "document_parsing_exception",
			reason:  "[1:20] failed to parse field [a.b] of type [long] in document with id 'x'. Preview of field's value: '{c=true}'",
			fields:  map[string]string{"a": "object", "a.b": "long"},
		},
		{
			name: "nested object given a scalar", docs: []string{`{"a":{"b":{"c":1}}}`, `{"a":{"b":"flat"}}`},
			errType: "document_parsing_exception",
			reason:  "[1:11] object mapping for [a.b] tried to parse field [b] as object, but found a concrete value",
			fields:  map[string]string{"a": "object", "a.b": "object", "a.b.c": "long"},
		},
		{
			name: "first array element decides", docs: []string{`{"v":[1,"two"]}`},
			errType: "document_parsing_exception",
			reason:  "[1:9] failed to parse field [v] of type [long] in document with id 'x'. Preview of field's value: 'two'",
			fields:  map[string]string{},
		},
		{
			name: "new field conflicting within one document", docs: []string{`{"a.b":1,"a":{"b":"x"}}`},
			errType: "document_parsing_exception",
			reason:  "[1:19] failed to parse field [a.b] of type [long] in document with id 'x'. Preview of field's value: 'x'",
			fields:  map[string]string{},
		},
		{
			name: "date detection off", mappings: `{"date_detection":false}`, docs: []string{`{"when":"2024-05-01"}`},
			fields: map[string]string{"when": "keyword"},
		},
		{
			name: "numeric detection", mappings: `{"numeric_detection":true}`, docs: []string{`{"n":"12","f":"1.5","s":"x12"}`},
			fields: map[string]string{"n": "long", "f": "float", "s": "keyword"},
		},
		{
			name: "dynamic templates",
			mappings: `{"dynamic_templates":[
				{"labels":{"path_match":"labels.*","mapping":{"type":"keyword"}}},
				{"counts":{"match":"*_count","mapping":{"type":"integer"}}},
				{"regex":{"match_pattern":"regex","match":"^ip_.*$","mapping":{"type":"ip"}}},
				{"rt":{"match":"rt_*","runtime":{"type":"keyword"}}},
				{"no_text":{"match_mapping_type":"string","unmatch":"keep_*","mapping":{"type":"keyword","fields":{"len":{"type":"token_count"}}}}},
				{"floats":{"match_mapping_type":"double","mapping":{"type":"double"}}},
				{"flat":{"match_mapping_type":"object","match":"kv","mapping":{"type":"flattened"}}},
				{"dyn":{"match":"d_*","mapping":{"type":"{dynamic_type}","doc_values":false}}}
			]}`,
			docs: []string{`{"labels":{"team":7,"tier":true},"err_count":"5","msg":"hi","keep_me":"x","p":0.5,"ip_src":"1.2.3.4","kv":{"a":{"b":1}},"rt_x":{"y":1},"rt_s":"v","d_n":1}`},
			fields: map[string]string{
				"labels": "object", "labels.team": "keyword", "labels.tier": "keyword", "err_count": "integer",
				"msg": "keyword", "msg.len": "token_count", "keep_me": "keyword", "rt_s": "keyword",
				"p": "double", "ip_src": "ip", "kv": "flattened", "rt_x": "object", "rt_x.y": "long", "d_n": "long",
			},
		},
		{
			name: "dynamic template refuses a value", mappings: `{"dynamic_templates":[{"ips":{"match":"ip_*","mapping":{"type":"ip"}}}]}`,
			docs:    []string{`{"ip_src":"nope"}`},
			errType: "document_parsing_exception",
			reason:  "[1:11] failed to parse field [ip_src] of type [ip] in document with id 'x'. Preview of field's value: 'nope'",
			fields:  map[string]string{},
		},
		{
			name: "strict root", mappings: `{"dynamic":"strict","properties":{"a":{"type":"long"}}}`,
			docs:    []string{`{"a":1}`, `{"a":2,"b":3}`},
			errType: "strict_dynamic_mapping_exception",
			reason:  "[1:12] mapping set to strict, dynamic introduction of [b] within [_doc] is not allowed",
			fields:  map[string]string{"a": "long"},
		},
		{
			name: "strict object", mappings: `{"properties":{"o":{"dynamic":"strict","properties":{"a":{"type":"long"}}}}}`,
			docs:    []string{`{"top":1,"o":{"a":1}}`, `{"o":{"z":{"y":1}}}`},
			errType: "strict_dynamic_mapping_exception",
			reason:  "[1:11] mapping set to strict, dynamic introduction of [z] within [o] is not allowed",
			fields:  map[string]string{"o": "object", "o.a": "long", "top": "long"},
		},
		{
			name: "dynamic false ignores new fields", mappings: `{"dynamic":false}`,
			docs:   []string{`{"a":1,"b":{"c":"x"},"d.e":true}`},
			fields: map[string]string{},
		},
		{
			name: "dynamic runtime", mappings: `{"dynamic":"runtime"}`,
			docs:   []string{`{"a":1,"b":{"c":"x"}}`, `{"a":"not checked"}`},
			fields: map[string]string{"a": "long", "b.c": "keyword"},
		},
		{
			name: "total fields limit", settings: `{"index":{"mapping":{"total_fields":{"limit":"4"}}}}`,
			docs:    []string{`{"a":1,"b":{"c":1}}`, `{"d":1,"e":{"f":1}}`},
			errType: "illegal_argument_exception",
			reason:  "Limit of total fields [4] has been exceeded while adding new fields [3]",
			fields:  map[string]string{"a": "long", "b": "object", "b.c": "long"},
		},
		{
			name: "total fields limit, flat setting", settings: `{"index.mapping.total_fields.limit":2}`,
			docs:    []string{`{"a":1,"b":"x","c":true}`},
			errType: "illegal_argument_exception",
			reason:  "Limit of total fields [2] has been exceeded while adding new fields [3]",
			fields:  map[string]string{},
		},
		{
			name:     "total fields limit, ignore beyond",
			settings: `{"index.mapping.total_fields.limit":2,"index.mapping.total_fields.ignore_dynamic_beyond_limit":true}`,
			docs:     []string{`{"a":1,"b":"x","c":true}`},
			fields:   map[string]string{"a": "long", "b": "keyword"},
		},
		{
			name: "depth limit", settings: `{"index.mapping.depth.limit":2}`,
			docs:    []string{`{"a":{"b":{"c":1}}}`},
			errType: "illegal_argument_exception",
			reason:  "Limit of mapping depth [2] has been exceeded due to object field [a.b]",
			fields:  map[string]string{},
		},
		{
			name: "metadata field", docs: []string{`{"_id":"x"}`},
			errType: "document_parsing_exception",
			reason:  "[1:2] Field [_id] is a metadata field and cannot be added inside a document. Use the index API request parameters.",
			fields:  map[string]string{},
		},
		{
			name: "underscore field that is not metadata", docs: []string{`{"_meta_like":1}`},
			fields: map[string]string{"_meta_like": "long"},
		},
		{
			name: "dots only", docs: []string{`{"..":1}`},
			errType: "document_parsing_exception", reason: "[1:2] failed to parse: field name cannot contain only dots",
			fields: map[string]string{},
		},
		{
			name: "leading dot", docs: []string{`{".a":1}`},
			errType: "document_parsing_exception", reason: "[1:2] failed to parse: field name cannot contain only whitespace: ['.a']",
			fields: map[string]string{},
		},
		{
			name: "trailing dot is dropped", docs: []string{`{"a.":1}`},
			fields: map[string]string{"a": "long"},
		},
		{
			name: "empty field name", docs: []string{`{"":1}`},
			errType: "document_parsing_exception", reason: "[1:2] failed to parse: field name cannot be an empty string",
			fields: map[string]string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mustMapping(t, tc.settings, tc.mappings)
			for i, doc := range tc.docs {
				err, _ := check(t, m, "x", doc)
				last := i == len(tc.docs)-1
				if !last || tc.reason == "" {
					if err != nil {
						t.Fatalf("doc %d refused: %v", i, err)
					}
					continue
				}
				if err == nil {
					t.Fatalf("doc %d accepted, want %s", i, tc.reason)
				}
				if err.Type != tc.errType || err.Reason != tc.reason || err.Status != 400 {
					t.Errorf("error %s %d %q,\n want %s %q", err.Type, err.Status, err.Reason, tc.errType, tc.reason)
				}
			}
			if got := m.Fields(); !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("fields %v,\n want %v", got, tc.fields)
			}
		})
	}
}

func TestMappingUpdateAndJSON(t *testing.T) {
	m := mustMapping(t, "", `{"_doc":{"properties":{"a":{"type":"keyword","ignore_above":10}}}}`)
	err, u := check(t, m, "1", `{"b":{"c":1},"a":"x"}`)
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 || !reflect.DeepEqual(u.Fields(), map[string]string{"b": "object", "b.c": "long"}) {
		t.Errorf("update %v", u.Fields())
	}
	if m.Len() != 3 {
		t.Errorf("Len = %d", m.Len())
	}
	b, jerr := json.Marshal(m)
	if jerr != nil {
		t.Fatal(jerr)
	}
	want := `{"properties":{"a":{"type":"keyword","ignore_above":10},"b":{"properties":{"c":{"type":"long"}}}}}`
	if string(b) != want {
		t.Errorf("JSON %s\n want %s", b, want)
	}
}

func TestNewMappingErrors(t *testing.T) {
	cases := []struct{ settings, mappings, typ, reason string }{
		{"", `{"properties":{"a":{"type":"nope"}}}`, "mapper_parsing_exception", "No handler for type [nope] declared on field [a]"},
		{"", `{"properties":{"a":"keyword"}}`, "mapper_parsing_exception", "Expected map for property [fields] on field [a] but got a class java.lang.String"},
		{"", `{"colour":"red"}`, "mapper_parsing_exception", "Root mapping definition has unsupported parameters:  [colour : red]"},
		{"", `{"dynamic_templates":[{"t":{"match_mapping_type":"text","mapping":{}}}]}`, "mapper_parsing_exception",
			"No field type matched on [text], possible values are [object, string, long, double, boolean, date, binary]"},
		{"", `{"properties":{"a":{"type":"keyword","properties":{}}}}`, "mapper_parsing_exception",
			"unknown parameter [properties] on mapper [a] of type [keyword]"},
		{`{"index.mapping.total_fields.limit":1}`, `{"properties":{"a":{"type":"long"},"b":{"type":"long"}}}`,
			"illegal_argument_exception", "Limit of total fields [1] has been exceeded"},
		{`{"index.mapping.total_fields.limit":"many"}`, "", "illegal_argument_exception",
			"Failed to parse value [many] for setting [index.mapping.total_fields.limit] must be >= 0"},
	}
	for _, tc := range cases {
		var s, m json.RawMessage
		if tc.settings != "" {
			s = json.RawMessage(tc.settings)
		}
		if tc.mappings != "" {
			m = json.RawMessage(tc.mappings)
		}
		_, err := escompat.NewMapping(s, m)
		if err == nil || err.Type != tc.typ || err.Reason != tc.reason {
			t.Errorf("%s %s: got %v, want %s %q", tc.settings, tc.mappings, err, tc.typ, tc.reason)
		}
	}
}

func TestParseDocument(t *testing.T) {
	cases := []struct{ src, reason string }{
		{`{"a":1}`, ""},
		{` {"a":"\u00e9\ud83d\ude00\n"} `, ""},
		{``, "failed to parse, document is empty"},
		{`[1]`, "[1:1] failed to parse: Malformed content, must start with an object"},
		{`{"a":1}{}`, "[1:8] failed to parse: Malformed content, found extra data after parsing: START_OBJECT"},
		{`{"a":1,"a":2}`, "[1:8] failed to parse: Duplicate field 'a'"},
		{`{"a":01}`, "[1:6] failed to parse: Invalid numeric value: Leading zeroes not allowed"},
		{`{"a":tru}`, "[1:6] failed to parse: Unrecognized token 'tru': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"},
		{`{"a":1`, "[1:7] failed to parse: Unexpected end-of-input: expected close marker for Object"},
		{`{a:1}`, "[1:2] failed to parse: Unexpected character ('a' (code 97)): was expecting double-quote to start field name"},
		{"{\"a\":\"x\ty\"}", "[1:8] failed to parse: Illegal unquoted character (CTRL-CHAR, code 9): has to be escaped using backslash to be included in string value"},
		{"{\"a\":\"\xff\"}", "[1:7] failed to parse: Invalid UTF-8 middle byte in string value"},
		{"{\"a\":\"\\n\xff\"}", "[1:6] failed to parse: Invalid UTF-8 middle byte in string value"},
		{`{"a":"x\q"}`, "[1:9] failed to parse: Unrecognized character escape ('q' (code 113))"},
		{`{"a":"\u12x4"}`, "[1:8] failed to parse: Unexpected character in character escape sequence: expected a hex-digit for character escape sequence"},
		{`{"a":"x\`, "[1:9] failed to parse: Unexpected end-of-input in character escape sequence"},
		{`{"a":"x`, "[1:8] failed to parse: Unexpected end-of-input: was expecting closing quote for a string value"},
		{`{"a":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `}`,
			"[1:1005] failed to parse: Document nesting depth (1001) exceeds the maximum allowed (1000, from `StreamReadConstraints.getMaxNestingDepth()`)"},
	}
	for _, tc := range cases {
		d, err := escompat.ParseDocument([]byte(tc.src))
		got := ""
		if err != nil {
			got = err.Reason
			if err.Type != "document_parsing_exception" {
				t.Errorf("%q: type %s", tc.src, err.Type)
			}
		}
		if got != tc.reason {
			t.Errorf("%.40q:\n got  %q\n want %q", tc.src, got, tc.reason)
		}
		if err == nil && d.Keys()[0] != "a" {
			t.Errorf("%q: keys %v", tc.src, d.Keys())
		}
	}
}
