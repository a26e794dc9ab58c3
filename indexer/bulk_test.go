package indexer

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestParseBulkResponse(t *testing.T) {
	ok, res, err := parseBulkResponse([]byte(`{"errors":false,"items":[{"create":{"status":201}}]}`), 1)
	if !ok || res != nil || err != nil {
		t.Fatalf("all ok: %v %v %v", ok, res, err)
	}
	body := `{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[a]: version conflict"}}},` +
		`{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"[1:9] failed to parse field [n] of type [long]","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"x\""}}}}]}`
	ok, res, err = parseBulkResponse([]byte(body), 3)
	if ok || err != nil || len(res) != 3 || res[0].Status != 201 || res[1].Status != 409 || res[2].Error.CausedBy.Type != "illegal_argument_exception" {
		t.Fatalf("errors: %v %+v %v", ok, res, err)
	}
	for _, bad := range []string{
		``, `[]`, `{"items":[]}`, `{"errors":true,"items":[{"create":{"status":201}}]}`,
		`{"errors":true,"items":[{}, {}]}`, `{"errors":true,"items":"x"}`, `<html>`,
	} {
		if _, _, err := parseBulkResponse([]byte(bad), 2); !errors.Is(err, errBadResponse) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestClassify(t *testing.T) {
	for status, want := range map[int]int{
		200: outcomeStored, 201: outcomeStored, 409: outcomeDuplicate,
		429: outcomeRetry, 500: outcomeRetry, 503: outcomeRetry, 401: outcomeRetry, 403: outcomeRetry, 404: outcomeRetry, 408: outcomeRetry, 0: outcomeRetry,
		400: outcomeRejected, 413: outcomeRejected, 422: outcomeRejected,
	} {
		if got, _ := classify(status); got != want {
			t.Errorf("%d: %d, want %d", status, got, want)
		}
	}
}

func TestOffendingFields(t *testing.T) {
	for _, tc := range []struct {
		e    *esError
		want []string
	}{
		{&esError{Type: "document_parsing_exception", Reason: "[1:27] failed to parse field [http.status] of type [long] in document with id 'abc'. Preview of field's value: 'oops'"}, []string{"http.status"}},
		{&esError{Type: "document_parsing_exception", Reason: "[1:10] object mapping for [a] tried to parse field [a] as object, but found a concrete value"}, []string{"a", "a"}},
		{&esError{Type: "mapper_parsing_exception", Reason: "Could not dynamically add mapping for field [a.b]. Existing mapping for [a] must be of type object but found [keyword]."}, []string{"a.b", "a"}},
		{&esError{Type: "illegal_argument_exception", Reason: "mapper [level] cannot be changed from type [long] to [keyword]"}, []string{"level"}},
		{&esError{Type: "illegal_argument_exception", Reason: "Limit of total fields [2000] has been exceeded while adding new fields [3]"}, []string{moveAll}},
		{&esError{Type: "x", Reason: "something else [1:2]"}, []string{moveAll}},
		{&esError{Type: "document_parsing_exception", Reason: "[1:2] failed to parse", CausedBy: &esError{Reason: "failed to parse field [ts] of type [date]"}}, []string{"ts"}},
		{nil, []string{moveAll}},
	} {
		if got := offendingFields(tc.e); !slices.Equal(got, tc.want) {
			t.Errorf("%v: %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestParseErrorBody(t *testing.T) {
	e := parseErrorBody([]byte(`{"error":{"root_cause":[],"type":"es_rejected_execution_exception","reason":"rejected"},"status":429}`))
	if e == nil || e.Type != "es_rejected_execution_exception" {
		t.Fatalf("%v", e)
	}
	if e := parseErrorBody([]byte(`{"error":"plain","status":400}`)); e == nil || e.Reason != "plain" {
		t.Fatalf("%v", e)
	}
	if e := parseErrorBody([]byte(`not json`)); e != nil {
		t.Fatalf("%v", e)
	}
}

// FuzzBulkResponse: whatever Elasticsearch (or something in its place)
// answers, reading it never panics, and a success covers every item.
func FuzzBulkResponse(f *testing.F) {
	f.Add([]byte(`{"errors":false,"items":[{"create":{"status":201}}]}`), 1)
	f.Add([]byte(`{"errors":true,"items":[{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"x"}}}]}`), 1)
	f.Add([]byte(`{"error":{"type":"x","reason":"failed to parse field [a] of type [long]","caused_by":{"reason":"mapping for [b]"}},"status":400}`), 0)
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if n < 0 || n > 1000 {
			return
		}
		ok, res, err := parseBulkResponse(body, n)
		if err == nil && !ok && len(res) != n {
			t.Fatalf("%d results for %d items", len(res), n)
		}
		if e := parseErrorBody(body); e != nil {
			_ = e.Error()
			if fields := offendingFields(e); len(fields) == 0 {
				t.Fatal("no fields to move")
			}
		}
	})
}

// TestClassifyItem: the error type decides before the status: blocks
// (403 and 429), closed indices (400) and a missing pipeline (400) are
// the index's state, retried; a processor's failure is the document's,
// dead-lettered at once; a mapping error is rescued.
func TestClassifyItem(t *testing.T) {
	parse := func(s string) *esError {
		var e esError
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			t.Fatal(err)
		}
		return &e
	}
	for _, tc := range []struct {
		status  int
		err     string
		outcome int
		class   string
	}{
		{403, `{"type":"cluster_block_exception","reason":"index [a] blocked by: [FORBIDDEN/8/index write (api)];"}`, outcomeRetry, classBlocked},
		{429, `{"type":"cluster_block_exception","reason":"index [a] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}`, outcomeRetry, classBlocked},
		{429, `{"type":"es_rejected_execution_exception","reason":"rejected execution"}`, outcomeRetry, classThrottled},
		{400, `{"type":"index_closed_exception","reason":"closed"}`, outcomeRetry, classClosed},
		{404, `{"type":"index_not_found_exception","reason":"no such index [a]"}`, outcomeRetry, classMissing},
		{403, `{"type":"security_exception","reason":"action [indices:data/write/bulk[s]] is unauthorized"}`, outcomeRetry, classForbidden},
		{400, `{"type":"validation_exception","reason":"Validation Failed: 1: this action would add [2] shards, but this cluster currently has [1000]/[1000] maximum normal shards open;"}`, outcomeRetry, classIndexConfig},
		{400, `{"type":"illegal_argument_exception","reason":"pipeline with id [p] does not exist"}`, outcomeRetry, classIndexConfig},
		{500, `{"type":"fail_processor_exception","reason":"no","header":{"processor_type":"fail"}}`, outcomeRefused, classPipeline},
		{500, `{"type":"exception","reason":"java.lang.IllegalArgumentException: x","caused_by":{"type":"illegal_argument_exception","reason":"x","header":{"processor_type":"grok"}}}`, outcomeRefused, classPipeline},
		{400, `{"type":"illegal_argument_exception","reason":"Provided Grok expressions do not match field value","header":{"processor_type":"grok","pipeline_origin":["p"]}}`, outcomeRefused, classPipeline},
		{503, `{"type":"unavailable_shards_exception","reason":"primary shard is not active"}`, outcomeRetry, classServerError},
		{400, `{"type":"document_parsing_exception","reason":"failed to parse field [a] of type [long]"}`, outcomeRejected, ""},
		{400, `{"type":"validation_exception","reason":"Validation Failed: 1: id is too long"}`, outcomeRejected, ""},
	} {
		outcome, class := classifyItem(tc.status, parse(tc.err))
		if outcome != tc.outcome || class != tc.class {
			t.Errorf("%d %s: outcome %d class %q, want %d %q", tc.status, tc.err, outcome, class, tc.outcome, tc.class)
		}
	}
	if outcome, class := classifyItem(500, nil); outcome != outcomeRetry || class != classServerError {
		t.Errorf("500 without an error: %d %q", outcome, class)
	}
}
