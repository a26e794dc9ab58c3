package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/sluicelogs/sluice/indexer"
)

// ElasticRoles keeps each tenant's Elasticsearch role, the one sluice
// tenant create prints (indexer.TenantRole): read on the tenant's own
// daily indices, and on its documents in the shared indices when its
// layout is shared. Users or role mappings are the platform's to make
// (they depend on how people sign in); the role is what must follow the
// tenant.
type ElasticRoles struct {
	Client *elasticsearch.Client
	// IndexPrefix and DefaultLayout are the indexers'
	// SLUICE_INDEXER_INDEX_PREFIX and SLUICE_INDEXER_LAYOUT: the names the
	// role must match, and the layout of a tenant whose Tenant sets none.
	IndexPrefix   string
	DefaultLayout string
}

// put makes or updates the role of tenant id, whose layout is layout (""
// for the default), and returns its name.
func (e *ElasticRoles) put(ctx context.Context, id, layout string) (string, error) {
	if layout == "" {
		layout = e.DefaultLayout
	}
	name := indexer.RoleName(id)
	body, err := json.Marshal(indexer.TenantRole(e.IndexPrefix, id, layout == indexer.LayoutShared.String()))
	if err != nil {
		return "", err
	}
	res, err := e.Client.Security.PutRole(name, bytes.NewReader(body), e.Client.Security.PutRole.WithContext(ctx))
	if err != nil {
		return "", fmt.Errorf("put Elasticsearch role %s: %w", name, err)
	}
	return name, answered(res.StatusCode, res.Body, "put Elasticsearch role "+name, false)
}

// delete removes the role of tenant id; one already gone is fine.
func (e *ElasticRoles) delete(ctx context.Context, id string) error {
	name := indexer.RoleName(id)
	res, err := e.Client.Security.DeleteRole(name, e.Client.Security.DeleteRole.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("delete Elasticsearch role %s: %w", name, err)
	}
	return answered(res.StatusCode, res.Body, "delete Elasticsearch role "+name, true)
}

// answered closes a response's body and turns an error status into an
// error naming what was asked, with the start of Elasticsearch's answer.
func answered(status int, body io.ReadCloser, what string, notFoundOK bool) error {
	defer body.Close()
	if status < 300 || (notFoundOK && status == http.StatusNotFound) {
		_, _ = io.Copy(io.Discard, body)
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(body, 512))
	return fmt.Errorf("%s: %d %s: %s", what, status, http.StatusText(status), bytes.TrimSpace(msg))
}
