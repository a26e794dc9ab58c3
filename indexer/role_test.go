package indexer

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTenantRole: the role's first pattern matches the tenant's
// indices and no other tenant's, nor the shared ones; the second, with
// document-level security on the tenant, the shared indices only.
func TestTenantRole(t *testing.T) {
	role := TenantRole("sluice", "shop", true)
	entries := role["indices"].([]any)
	if len(entries) != 2 {
		t.Fatalf("role %v", role)
	}
	pattern := func(i int) *regexp.Regexp {
		name := entries[i].(map[string]any)["names"].([]string)[0]
		return regexp.MustCompile("^(?:" + strings.Trim(name, "/") + ")$")
	}
	own, shared := pattern(0), pattern(1)
	if _, ok := entries[0].(map[string]any)["query"]; ok {
		t.Error("the tenant's own indices are granted with a query")
	}
	if q, _ := json.Marshal(entries[1].(map[string]any)["query"]); string(q) != `{"term":{"tenant":"shop"}}` {
		t.Errorf("shared indices query %s", q)
	}
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		index        string
		own, inShare bool
	}{
		{IndexName("sluice", "shop", "", at, time.UTC), true, false},
		{IndexName("sluice", "shop", "audit", at, time.UTC), true, false},
		{IndexName("sluice", "shop-web", "", at, time.UTC), false, false},
		{IndexName("sluice", "shop-2fa", "", at, time.UTC), false, false},
		{IndexName("sluice", "shopping", "", at, time.UTC), false, false},
		{SharedIndexName("sluice", "", at, time.UTC), false, true},
		{SharedIndexName("sluice", "audit", at, time.UTC), false, true},
		{IndexName("sluice", "shared", "", at, time.UTC), false, false},
	} {
		if got := own.MatchString(tc.index); got != tc.own {
			t.Errorf("own pattern matches %s: %v, want %v", tc.index, got, tc.own)
		}
		if got := shared.MatchString(tc.index); got != tc.inShare {
			t.Errorf("shared pattern matches %s: %v, want %v", tc.index, got, tc.inShare)
		}
	}
	if entries := TenantRole("sluice", "shop", false)["indices"].([]any); len(entries) != 1 {
		t.Errorf("without shared indices: %v", entries)
	}
}
