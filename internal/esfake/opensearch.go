package esfake

import (
	"net/http"
	"regexp"

	"github.com/sluicelogs/sluice/internal/escompat"
)

// OpenSearch makes the server answer as an OpenSearch 2.x node (version
// 2.17.1 unless Version says otherwise) rather than as Elasticsearch 8:
//
//   - no response carries X-Elastic-Product, so go-elasticsearch v8 refuses
//     the server unless told otherwise;
//   - GET / answers OpenSearch's body: version.distribution "opensearch",
//     its version fields and tagline, no build_flavor;
//   - JSON responses are typed application/json; charset=UTF-8, whatever
//     the Accept header asks for (OpenSearch falls back to JSON for a media
//     type it does not know, compatible-with=8 included);
//   - a request body of a media type OpenSearch does not read, such as
//     Elastic's application/vnd.elasticsearch+json; compatible-with=8, or
//     without Content-Type, is answered 406 {"error":"Content-Type header
//     [...] is not supported","status":406};
//   - with RequireAuth, a request without the expected Authorization is
//     answered as the security plugin answers it: 401, text/plain
//     "Unauthorized", WWW-Authenticate: Basic realm="OpenSearch Security";
//   - bulk item errors of a document that does not parse or fit the
//     mapping are mapper_parsing_exception (Elasticsearch 8:
//     document_parsing_exception), their reasons without Elasticsearch 8's
//     leading [line:column].
//
// Everything else (endpoints, bodies, other errors, faults) is as for
// Elasticsearch: on the subset the fake serves, OpenSearch 2.x answers the
// same.
func OpenSearch() Option { return func(s *Server) { s.product = escompat.OpenSearch } }

// serveOpenSearch serves a request as OpenSearch does: the gate (faults),
// the media type of the body, the security plugin's authentication, then
// the endpoint.
func (s *Server) serveOpenSearch(w http.ResponseWriter, r *http.Request) {
	r = escompat.WithProduct(r, escompat.OpenSearch)
	rs, path, ok := s.gate.Admit(w, r)
	if !ok || escompat.CheckContentType(rs, r) {
		return
	}
	if s.auth != "" && r.Header.Get("Authorization") != s.auth {
		rs.Header().Set("WWW-Authenticate", `Basic realm="OpenSearch Security"`)
		rs.Text(http.StatusUnauthorized, "Unauthorized")
		return
	}
	s.route(rs, r, path)
}

// location is the [line:column] Elasticsearch 8 puts before the reason of
// a document's errors.
var location = regexp.MustCompile(`^\[\d+:\d+\] `)

// openSearchItemError returns a copy of e as OpenSearch 2.x words it, or e
// itself when the two agree.
func openSearchItemError(e *escompat.Error) *escompat.Error {
	if e == nil {
		return nil
	}
	o := *e
	if o.Type == "document_parsing_exception" {
		o.Type = "mapper_parsing_exception"
	}
	o.Reason = location.ReplaceAllString(o.Reason, "")
	o.CausedBy = openSearchItemError(e.CausedBy)
	return &o
}
