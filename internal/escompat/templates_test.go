package escompat_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// TestTemplates: the create parameter is read strictly or leniently, and a
// change Save fails is undone and answered 500.
func TestTemplates(t *testing.T) {
	serve := func(ts *escompat.Templates, method, target, body string) int {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		w := httptest.NewRecorder()
		rs := escompat.NewResponder(w, r)
		var rt escompat.Router
		ts.Register(&rt, rs, r, strings.TrimPrefix(r.URL.Path, "/_index_template/"))
		rt.Serve(rs, r)
		return w.Code
	}
	const body = `{"index_patterns":["logs-*"]}`
	for _, tc := range []struct {
		lenient bool
		create  string
		want    int
	}{
		{false, "yes", http.StatusBadRequest},
		{true, "yes", http.StatusOK},
		{false, "", http.StatusBadRequest}, // "" is true: the template exists
		{true, "", http.StatusOK},
		{false, "false", http.StatusOK},
	} {
		ts := escompat.NewTemplates(nil, escompat.TemplatesOptions{LenientCreate: tc.lenient})
		serve(ts, http.MethodPut, "/_index_template/t", body)
		if got := serve(ts, http.MethodPut, "/_index_template/t?create="+tc.create, body); got != tc.want {
			t.Errorf("lenient %v, create=%q: status %d, want %d", tc.lenient, tc.create, got, tc.want)
		}
	}

	fail := false
	ts := escompat.NewTemplates(nil, escompat.TemplatesOptions{Save: func([]*escompat.IndexTemplate) error {
		if fail {
			return errors.New("disk full")
		}
		return nil
	}})
	serve(ts, http.MethodPut, "/_index_template/t", body)
	fail = true
	if got := serve(ts, http.MethodPut, "/_index_template/u", `{"index_patterns":["metrics-*"]}`); got != http.StatusInternalServerError || ts.Get("u") != nil {
		t.Errorf("failed put: status %d, template %v", got, ts.Get("u"))
	}
	if got := serve(ts, http.MethodDelete, "/_index_template/t", ""); got != http.StatusInternalServerError || ts.Get("t") == nil {
		t.Errorf("failed delete: status %d, template %v", got, ts.Get("t"))
	}
	fail = false
	if got := serve(ts, http.MethodDelete, "/_index_template/t", ""); got != http.StatusOK || ts.Len() != 0 {
		t.Errorf("delete: status %d, %d templates", got, ts.Len())
	}
}
