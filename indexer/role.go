package indexer

import "regexp"

// RoleName is the name of a tenant's Elasticsearch role, as sluice tenant
// create prints it and sluice-controller makes it.
func RoleName(tenant string) string { return "sluice-" + tenant }

// TenantRole is the body of the Elasticsearch role granting read on a
// tenant's indices and no other tenant's: a regular expression, because a
// wildcard such as sluice-shop-* would also match tenant shop-web's
// indices. With shared, it also grants the shared indices (<prefix>-_shared[.<dataset>]-...)
// with document-level security: only the documents whose tenant field is
// the tenant. The two entries never match the same index, so the one
// without a query never lifts the other's.
func TenantRole(indexPrefix, tenant string, shared bool) map[string]any {
	days := `-[0-9]{4}\.[0-9]{2}\.[0-9]{2}/`
	indices := []any{map[string]any{
		"names":      []string{"/" + regexp.QuoteMeta(indexPrefix) + "-" + tenant + `(\.[a-z0-9-]+)?` + days},
		"privileges": []string{"read", "view_index_metadata"},
	}}
	if shared {
		indices = append(indices, map[string]any{
			"names":      []string{"/" + regexp.QuoteMeta(indexPrefix+"-"+SharedName) + `(\.[a-z0-9-]+)?` + days},
			"privileges": []string{"read", "view_index_metadata"},
			"query":      map[string]any{"term": map[string]any{"tenant": tenant}},
		})
	}
	return map[string]any{"indices": indices}
}
