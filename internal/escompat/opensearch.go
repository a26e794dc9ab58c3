package escompat

import (
	"context"
	"mime"
	"net/http"
	"strings"
)

// Product is the search engine a stand-in answers as. The zero value is
// Elasticsearch, what every stand-in answered as before Product existed.
type Product int

const (
	// Elasticsearch 8: responses carry X-Elastic-Product: Elasticsearch
	// and honour the compatible-with=8 media type.
	Elasticsearch Product = iota
	// OpenSearch 2.x: responses carry no X-Elastic-Product and are typed
	// application/json; charset=UTF-8 whatever the Accept header asks for;
	// a request body typed with a media type OpenSearch does not know
	// (Elastic's application/vnd.elasticsearch+json; compatible-with=8
	// among them) is refused with 406, as is a body without Content-Type.
	OpenSearch
)

// String returns "elasticsearch" or "opensearch".
func (p Product) String() string {
	if p == OpenSearch {
		return "opensearch"
	}
	return "elasticsearch"
}

type productKey struct{}

// WithProduct marks r to be answered as p by the Responder NewResponder
// (and so Gate.Admit) makes for it. A stand-in answering as OpenSearch
// marks each request before it passes its Gate, then calls
// CheckContentType once the Gate admitted it.
func WithProduct(r *http.Request, p Product) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), productKey{}, p))
}

// ProductOf is the product r is to be answered as: Elasticsearch unless
// WithProduct marked it.
func ProductOf(r *http.Request) Product {
	p, _ := r.Context().Value(productKey{}).(Product)
	return p
}

// openSearchMediaTypes are the request media types OpenSearch 2.x reads
// (its XContentType list); anything else is refused with 406.
var openSearchMediaTypes = map[string]bool{
	"application/json":     true,
	"application/x-ndjson": true,
	"application/smile":    true,
	"application/yaml":     true,
	"application/cbor":     true,
}

// OpenSearchContentType is the Content-Type of OpenSearch's JSON
// responses.
const OpenSearchContentType = "application/json; charset=UTF-8"

// CheckContentType answers, for OpenSearch (rs.Product()), a request with a
// body whose Content-Type is missing or not one OpenSearch reads, as
// OpenSearch does: 406 {"error":"Content-Type header [...] is not
// supported","status":406}, the header echoed as sent. It reports whether
// it answered. For Elasticsearch it never answers: the stand-ins read any
// JSON body.
func CheckContentType(rs *Responder, r *http.Request) bool {
	if rs.product != OpenSearch || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return false
	}
	values := r.Header.Values("Content-Type")
	msg := ""
	switch {
	case len(values) == 0:
		msg = "Content-Type header is missing"
	default:
		mt, _, err := mime.ParseMediaType(values[0])
		if len(values) == 1 && err == nil && openSearchMediaTypes[strings.ToLower(mt)] {
			return false
		}
		msg = "Content-Type header [" + strings.Join(values, ",") + "] is not supported"
	}
	rs.Raw(http.StatusNotAcceptable, Encode(obj{{"error", msg}, {"status", http.StatusNotAcceptable}}, nil))
	return true
}

// OpenSearchClusterInfo is the body of GET / of an OpenSearch node of the
// given version, e.g. "2.17.1": version.distribution is "opensearch",
// which is how clients tell it from Elasticsearch.
func OpenSearchClusterInfo(nodeName, clusterName, clusterUUID, version string) Ordered {
	return obj{
		{"name", nodeName},
		{"cluster_name", clusterName},
		{"cluster_uuid", clusterUUID},
		{"version", obj{
			{"distribution", "opensearch"},
			{"number", version},
			{"build_type", "tar"},
			{"build_hash", "1893d20797e30110e5877170e44d42275ce5951e"},
			{"build_date", "2024-09-26T21:59:52.691008096Z"},
			{"build_snapshot", false},
			{"lucene_version", "9.11.1"},
			{"minimum_wire_compatibility_version", "7.10.0"},
			{"minimum_index_compatibility_version", "7.0.0"},
		}},
		{"tagline", "The OpenSearch Project: https://opensearch.org/"},
	}
}
