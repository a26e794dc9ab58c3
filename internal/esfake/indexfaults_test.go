package esfake_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/esfake"
)

// TestIndexFaults: each index fault answers writes to its indices alone
// with Elasticsearch's status and error type; other indices are written.
func TestIndexFaults(t *testing.T) {
	for _, tc := range []struct {
		fault  esfake.IndexFault
		status int
		typ    string
	}{
		{esfake.WriteBlock, 403, "cluster_block_exception"},
		{esfake.FloodStage, 429, "cluster_block_exception"},
		{esfake.Closed, 400, "index_closed_exception"},
		{esfake.NoAutoCreate, 404, "index_not_found_exception"},
		{esfake.ShardLimit, 400, "validation_exception"},
		{esfake.PipelineFails, 500, "fail_processor_exception"},
		{esfake.PipelineMissing, 400, "illegal_argument_exception"},
	} {
		s := esfake.Start(t)
		s.SetIndexFault("bad-*", tc.fault)
		body := `{"create":{"_index":"bad-1","_id":"a"}}` + "\n" + `{"x":1}` + "\n" +
			`{"create":{"_index":"good-1","_id":"a"}}` + "\n" + `{"x":1}` + "\n"
		res, err := http.Post(s.URL()+"/_bulk", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Items []map[string]struct {
				Status int `json:"status"`
				Error  struct {
					Type string `json:"type"`
				} `json:"error"`
			} `json:"items"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if err != nil || len(out.Items) != 2 {
			t.Fatalf("fault %d: %v %+v", tc.fault, err, out)
		}
		if got := out.Items[0]["create"]; got.Status != tc.status || got.Error.Type != tc.typ {
			t.Errorf("fault %d: bad-1 answered %d %s, want %d %s", tc.fault, got.Status, got.Error.Type, tc.status, tc.typ)
		}
		if got := out.Items[1]["create"]; got.Status != 201 {
			t.Errorf("fault %d: good-1 answered %d", tc.fault, got.Status)
		}
		s.SetIndexFault("bad-*", esfake.NoIndexFault)
		if got := bulkStatus(t, s, "bad-1"); got != 201 {
			t.Errorf("fault %d cleared: bad-1 answered %d", tc.fault, got)
		}
	}
	// Faults on creation only let an existing index be written.
	s := esfake.Start(t)
	s.CreateIndex("bad-2")
	s.SetIndexFault("bad-*", esfake.NoAutoCreate)
	if got := bulkStatus(t, s, "bad-2"); got != 201 {
		t.Errorf("existing index answered %d", got)
	}
	if got := bulkStatus(t, s, "bad-3"); got != 404 {
		t.Errorf("missing index answered %d", got)
	}
}

// bulkStatus writes one document to index and returns its item status.
func bulkStatus(t *testing.T, s *esfake.Server, index string) int {
	t.Helper()
	body := `{"create":{"_index":"` + index + `"}}` + "\n" + `{"x":1}` + "\n"
	res, err := http.Post(s.URL()+"/_bulk", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		Items []map[string]struct {
			Status int `json:"status"`
		} `json:"items"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || len(out.Items) != 1 {
		t.Fatalf("bulk response: %v %+v", err, out)
	}
	return out.Items[0]["create"].Status
}
