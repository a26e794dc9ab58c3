package escompat_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/escompat"
	"github.com/sluicelogs/sluice/internal/escompat/estest"
)

func TestParseBulk(t *testing.T) {
	type item struct{ action, index, id, source string }
	cases := []struct {
		name, body, defaultIndex string
		want                     []item
	}{
		{
			name: "create index delete", defaultIndex: "d",
			body: "{\"create\":{\"_id\":\"1\"}}\n{\"a\":1}\n{\"index\":{\"_index\":\"x\"}}\n{}\n{\"delete\":{\"_id\":\"2\"}}\n",
			want: []item{{"create", "d", "1", `{"a":1}`}, {"index", "x", "", `{}`}, {"delete", "d", "2", ""}},
		},
		{
			name: "crlf and blank lines",
			body: "\n{\"create\":{\"_index\":\"x\",\"_id\":\"1\"}}\r\n{\"a\":1}\r\n\n",
			want: []item{{"create", "x", "1", `{"a":1}`}},
		},
		{
			name: "empty action object uses the defaults", defaultIndex: "d",
			body: "{\"index\":{}}\n{}\n",
			want: []item{{"index", "d", "", `{}`}},
		},
		{
			name: "op_type create", body: "{\"index\":{\"_index\":\"x\",\"op_type\":\"create\"}}\n{}\n",
			want: []item{{"create", "x", "", `{}`}},
		},
		{
			name: "numeric id and ignored parameters",
			body: "{\"index\":{\"_index\":\"x\",\"_id\":7,\"routing\":\"r\",\"pipeline\":null,\"_source\":{\"includes\":[\"a\"]}}}\n{}\n",
			want: []item{{"index", "x", "7", `{}`}},
		},
		{
			name: "trailing content after the action is ignored",
			body: "{\"create\":{\"_index\":\"x\"},\"extra\":1}\n{}\n",
			want: []item{{"create", "x", "", `{}`}},
		},
		{
			name: "final action without a document is dropped",
			body: "{\"create\":{\"_index\":\"x\"}}\n{}\n{\"create\":{\"_index\":\"x\"}}\n",
			want: []item{{"create", "x", "", `{}`}},
		},
		{
			name: "document lines are not parsed",
			body: "{\"create\":{\"_index\":\"x\"}}\nnot json at all\n",
			want: []item{{"create", "x", "", `not json at all`}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			items, err := escompat.ParseBulk([]byte(tc.body), tc.defaultIndex)
			if err != nil {
				t.Fatal(err)
			}
			var got []item
			for _, it := range items {
				got = append(got, item{it.Action, it.Index, it.ID, string(it.Source)})
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseBulkErrors(t *testing.T) {
	cases := []struct{ body, typ, reason string }{
		{"{\"delete\":{\"_index\":\"x\"}}\n", "action_request_validation_exception", "Validation Failed: 1: id is missing;"},
		{"{\"create\":{\"_index\":\"x\",\"_id\":\"" + strings.Repeat("i", 513) + "\"}}\n{}\n", "action_request_validation_exception",
			"Validation Failed: 1: id [" + strings.Repeat("i", 513) + "] is too long, must be no longer than 512 bytes but was: 513;"},
		{"{\"create\":{}}\n{}\n{\"index\":{}}\n{}\n", "action_request_validation_exception",
			"Validation Failed: 1: index is missing;2: index is missing;"},
		{"{\"index\":{\"_index\":\"x\",\"op_type\":\"upsert\"}}\n{}\n", "illegal_argument_exception",
			"opType must be 'create' or 'index', found: [upsert]"},
		{"{\"index\":{\"_index\":\"x\",\"_type\":\"_doc\"}}\n{}\n", "illegal_argument_exception",
			"Action/metadata line [1] contains an unknown parameter [_type]"},
		{"{}\n", "illegal_argument_exception", "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]"},
		{"{\"create\"}\n", "x_content_parse_exception",
			"[1:10] Unexpected character ('}' (code 125)): was expecting a colon to separate field name and value"},
		{"{\"create\":{\"_index\":\"x\",\"version\":\"v\"}}\n{}\n", "illegal_argument_exception", `For input string: "v"`},
	}
	for _, tc := range cases {
		_, err := escompat.ParseBulk([]byte(tc.body), "")
		if err == nil || err.Type != tc.typ || err.Reason != tc.reason || err.Status != 400 {
			t.Errorf("%.60q: got %v, want %s %q", tc.body, err, tc.typ, tc.reason)
		}
	}
}

// FuzzParseBulk feeds arbitrary bodies to the NDJSON bulk parser, then the
// document lines to the document parser and a mapping: none may panic, and
// every error must be a 400 with a type and a reason.
func FuzzParseBulk(f *testing.F) {
	for _, s := range estest.BulkBodies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := escompat.ParseBulk(body, "fuzz")
		if err != nil {
			if err.Status != 400 || err.Type == "" || err.Reason == "" {
				t.Fatalf("parse error %+v", err)
			}
			return
		}
		if len(items) == 0 {
			t.Fatal("no items and no error")
		}
		for _, it := range items {
			switch it.Action {
			case "create", "index", "update", "delete":
			default:
				t.Fatalf("action %q", it.Action)
			}
			if it.Index == "" || it.Line < 1 || bytes.IndexByte(it.Source, '\n') >= 0 {
				t.Fatalf("item %+v", it)
			}
			if it.Action == "delete" {
				continue
			}
			d, derr := escompat.ParseDocument(it.Source)
			if derr != nil {
				if derr.Status != 400 || derr.Reason == "" {
					t.Fatalf("document error %+v", derr)
				}
				continue
			}
			// A document that parses is valid JSON, and so is its rendering.
			if !json.Valid(it.Source) || !json.Valid(escompat.Encode(d, nil)) {
				t.Fatalf("document %q accepted but not valid JSON", it.Source)
			}
			m, merr := escompat.NewMapping(nil, json.RawMessage(`{"properties":{"n":{"type":"long"},"t":{"type":"date"}}}`))
			if merr != nil {
				t.Fatal(merr)
			}
			if u, cerr := m.Check(it.ID, d); cerr == nil {
				m.Apply(u)
			} else if cerr.Status != 400 || cerr.Reason == "" {
				t.Fatalf("check error %+v", cerr)
			}
		}
	})
}

// TestNewBulkOps: item faults are drawn first, in request order, then _ids
// generated for creates and indexes without one; the response carries
// every outcome in request order.
func TestNewBulkOps(t *testing.T) {
	items, err := escompat.ParseBulk([]byte("{\"create\":{\"_index\":\"a\"}}\n{}\n{\"index\":{\"_index\":\"a\",\"_id\":\"x\"}}\n{}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"y\"}}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	newID := func() string { n++; return "gen" + strconv.Itoa(n) }
	ops := escompat.NewBulkOps(items, 1, escompat.NewRand(1), newID)
	for i, o := range ops {
		if !o.Rejected || o.Result.Err == nil || o.Result.Err.Status != 429 || o.Writes() {
			t.Errorf("op %d: %+v, want rejected with a 429", i, o)
		}
	}
	ops = escompat.NewBulkOps(items, 0, escompat.NewRand(1), newID)
	if ids := []string{ops[0].Item.ID, ops[1].Item.ID, ops[2].Item.ID}; !reflect.DeepEqual(ids, []string{"gen2", "x", "y"}) {
		t.Errorf("ids %q", ids)
	}
	ops[0].Result = escompat.ItemResult{Version: 1, Result: "created", Status: 201}
	ops[1].Fail(escompat.IllegalArgument("no"))
	ops[2].Result = escompat.ItemResult{Version: 1, SeqNo: 1, Result: "not_found", Status: 404}
	got := string(escompat.Encode(escompat.BulkResponse(0, ops), escompat.ParseFilterPath("errors,items.*.status,items.*._id")))
	want := `{"errors":true,"items":[{"create":{"_id":"gen2","status":201}},{"index":{"_id":"x","status":400}},{"delete":{"_id":"y","status":404}}]}`
	if got != want {
		t.Errorf("response\n%s\nwant\n%s", got, want)
	}
}
