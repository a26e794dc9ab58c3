package elastic

// # OpenSearch
//
// SLUICE_ELASTICSEARCH_FLAVOR=opensearch points Sluice at OpenSearch 2.x
// through the same go-elasticsearch v8 client as Elasticsearch 8, not
// through opensearch-go. What Sluice asks of the server is the same on
// both: bulk (create actions, filter_path), composable index templates
// (GET and PUT /_index_template/{name}), create and delete index
// (ignore_unavailable), GET /_cat/indices (format=json, h=), search
// (query_string, sort with unmapped_type, search_after, ignore_unavailable,
// allow_no_indices), cluster health and GET /. OpenSearch 2.x forked from
// Elasticsearch 7.10 after all of these existed and serves them with the
// same paths, parameters and bodies. One client keeps one code path: every
// caller (indexer, retention, sluice search, the load test's accounting)
// builds its requests once and is tested against both kinds of server,
// and the choice is a setting rather than a second implementation of
// each request, error classification and test.
//
// go-elasticsearch needs two things to talk to OpenSearch, both done by
// flavorTransport below the client:
//
//   - Its product check: it refuses every 2xx response without
//     X-Elastic-Product: Elasticsearch until one has it, and OpenSearch
//     never sends it. With opensearch the transport adds the header to
//     responses that lack it.
//   - No Elastic-only media types: go-elasticsearch sends
//     application/vnd.elasticsearch+json; compatible-with=8 as Content-Type
//     and Accept in compatibility mode (EnableCompatibilityMode, or
//     ELASTIC_CLIENT_APIVERSIONING=true in the environment), and OpenSearch
//     answers such a body 406. NewClient leaves compatibility mode off; with
//     opensearch the transport also rewrites those media types to the plain
//     ones, whatever turned the mode on. go-elasticsearch v8 sends no other
//     header OpenSearch refuses (no Elastic-Api-Version; its telemetry
//     header X-Elastic-Client-Meta is ignored by OpenSearch, and not sent
//     with opensearch).
//
// With elasticsearch (the default) and a server that is not
// Elasticsearch, go-elasticsearch's refusal ("the client noticed that the
// server is not Elasticsearch and we do not support this unknown product")
// names no cause; the transport returns a *ProductError instead, which asks
// the server's root endpoint what it is and names the setting to change.

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// The values of SLUICE_ELASTICSEARCH_FLAVOR.
const (
	FlavorElasticsearch = "elasticsearch"
	FlavorOpenSearch    = "opensearch"
)

// productHeader is the response header go-elasticsearch v8 checks.
const productHeader = "X-Elastic-Product"

// flavor returns c's flavor, lower case; "" is elasticsearch.
func (c Config) flavor() string {
	if c.Flavor == "" {
		return FlavorElasticsearch
	}
	return strings.ToLower(c.Flavor)
}

// flavorTransport adapts the exchanges of go-elasticsearch to the flavor of
// the server; see the comment at the top of this file.
type flavorTransport struct {
	next       http.RoundTripper
	openSearch bool
	nodes      []string // the configured URLs, to name the node of a response
	// accepted is set by the first 2xx response with the product header:
	// go-elasticsearch checks no response after that one.
	accepted atomic.Bool
}

func newFlavorTransport(c Config, next http.RoundTripper) *flavorTransport {
	return &flavorTransport{next: next, openSearch: c.flavor() == FlavorOpenSearch, nodes: c.URLs}
}

func (t *flavorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.openSearch {
		res, err := t.next.RoundTrip(withoutCompatMediaTypes(req))
		if err == nil && res.Header.Get(productHeader) != "Elasticsearch" {
			res.Header.Set(productHeader, "Elasticsearch")
		}
		return res, err
	}
	res, err := t.next.RoundTrip(req)
	if err != nil || t.accepted.Load() || res.StatusCode < 200 || res.StatusCode > 299 {
		return res, err
	}
	if res.Header.Get(productHeader) == "Elasticsearch" {
		t.accepted.Store(true)
		return res, nil
	}
	// go-elasticsearch would refuse this response without saying why.
	res.Body.Close()
	return nil, t.explain(req)
}

// withoutCompatMediaTypes returns req, or a copy of it whose Content-Type
// and Accept no longer name Elastic's compatibility media types
// (application/vnd.elasticsearch+json; compatible-with=8 becomes
// application/json).
func withoutCompatMediaTypes(req *http.Request) *http.Request {
	var out *http.Request
	for _, k := range []string{"Content-Type", "Accept"} {
		mt, _, err := mime.ParseMediaType(req.Header.Get(k))
		if err != nil {
			continue
		}
		sub, ok := strings.CutPrefix(strings.ToLower(mt), "application/vnd.elasticsearch+")
		if !ok {
			continue
		}
		if out == nil {
			out = req.Clone(req.Context()) // the header is copied; the request must not be changed
		}
		out.Header.Set(k, "application/"+sub)
	}
	if out == nil {
		return req
	}
	return out
}

// ProductError is the error of a request sent with
// SLUICE_ELASTICSEARCH_FLAVOR=elasticsearch whose successful response did
// not carry X-Elastic-Product: Elasticsearch, which go-elasticsearch v8
// refuses. It tells what the node's root endpoint (GET /) says the server
// is, and what to set.
type ProductError struct {
	URL          string // the node, as configured
	Distribution string // version.distribution of GET /, e.g. "opensearch"; "" for Elasticsearch or when unknown
	Version      string // version.number of GET /; "" when unknown
	Reason       string // why GET / did not tell, when it did not
}

func (e *ProductError) Error() string {
	switch {
	case e.Distribution == FlavorOpenSearch:
		return fmt.Sprintf("the server at %s is OpenSearch %s; set %s=opensearch", e.URL, e.Version, varFlavor)
	case e.Distribution != "":
		return fmt.Sprintf("the server at %s is %s %s, not Elasticsearch; %s supports elasticsearch (Elasticsearch 8) and opensearch (OpenSearch 2)",
			e.URL, e.Distribution, e.Version, varFlavor)
	case e.Version != "":
		return fmt.Sprintf("the server at %s says it is Elasticsearch %s but does not answer X-Elastic-Product: Elasticsearch, which the client requires "+
			"(Elasticsearch before 7.14, or a proxy that drops the header); Sluice needs Elasticsearch 8, or OpenSearch 2 with %s=opensearch",
			e.URL, e.Version, varFlavor)
	default:
		return fmt.Sprintf("the server at %s does not answer X-Elastic-Product: Elasticsearch, which the client requires with %s=elasticsearch, "+
			"and GET / did not tell what it is (%s); if it is OpenSearch, set %s=opensearch", e.URL, varFlavor, e.Reason, varFlavor)
	}
}

// maxRootBody bounds the GET / body read by explain.
const maxRootBody = 1 << 20

// explain asks the node req went to what it is, with req's credentials and
// within its time limit.
func (t *flavorTransport) explain(req *http.Request) *ProductError {
	node := t.nodeOf(req.URL)
	e := &ProductError{URL: node}
	probe, err := http.NewRequestWithContext(req.Context(), http.MethodGet, node+"/", nil)
	if err != nil {
		e.Reason = err.Error()
		return e
	}
	if auth := req.Header.Get("Authorization"); auth != "" {
		probe.Header.Set("Authorization", auth)
	}
	probe.Header.Set("Accept", "application/json")
	res, err := t.next.RoundTrip(probe)
	if err != nil {
		e.Reason = err.Error()
		return e
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.Reason = "it answered " + res.Status
		return e
	}
	var root struct {
		Version struct {
			Distribution string `json:"distribution"`
			Number       string `json:"number"`
		} `json:"version"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxRootBody)).Decode(&root); err != nil {
		e.Reason = "its answer is not the JSON of a search engine: " + err.Error()
		return e
	}
	e.Distribution, e.Version = root.Version.Distribution, root.Version.Number
	if strings.EqualFold(e.Distribution, FlavorOpenSearch) {
		e.Distribution = FlavorOpenSearch
	} else if strings.EqualFold(e.Distribution, FlavorElasticsearch) {
		e.Distribution = ""
	}
	if e.Distribution == "" && e.Version == "" {
		e.Reason = "its answer has no version"
	}
	return e
}

// nodeOf returns the configured URL (without a trailing slash) of the node
// u was sent to.
func (t *flavorTransport) nodeOf(u *url.URL) string {
	for _, s := range t.nodes {
		if n, err := url.Parse(s); err == nil && n.Scheme == u.Scheme && n.Host == u.Host {
			return strings.TrimSuffix(redactURL(s), "/")
		}
	}
	return u.Scheme + "://" + u.Host
}
