package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelogs/sluice/internal/lineinput"
	"github.com/sluicelogs/sluice/schemas"
)

// Media types of OTLP/HTTP.
const (
	mediaProtobuf = "application/x-protobuf"
	mediaJSON     = "application/json"
)

// serveOTLP is POST /v1/logs: OTLP/HTTP, protobuf or JSON.
func (g *Gateway) serveOTLP(w http.ResponseWriter, r *http.Request) {
	received := g.now()
	var asJSON bool
	switch mediaType(r.Header.Get("Content-Type")) {
	case mediaProtobuf, "application/protobuf":
	case mediaJSON:
		asJSON = true
	default:
		c := &call{g: g, endpoint: endpointOTLP}
		f := &failure{status: http.StatusUnsupportedMediaType, reason: reasonUnsupported,
			msg: fmt.Sprintf("Content-Type %q: OTLP/HTTP takes application/x-protobuf or application/json", r.Header.Get("Content-Type"))}
		writeOTLPFailure(w, c, f, false)
		return
	}
	creds, credErr := g.credentials(r.Header.Get("Authorization"))
	c, f := g.begin(r.Context(), endpointOTLP, creds, credErr)
	defer c.end()
	if f != nil {
		writeOTLPFailure(w, c, f, asJSON)
		return
	}
	idem, f := idempotencyKey(r)
	if f != nil {
		writeOTLPFailure(w, c, f, asJSON)
		return
	}
	body, f := c.readBody(r, w)
	if f != nil {
		writeOTLPFailure(w, c, f, asJSON)
		return
	}
	req, err := decodeOTLP(body, asJSON)
	if err != nil {
		writeOTLPFailure(w, c, &failure{status: http.StatusBadRequest, reason: reasonBadRequest, msg: err.Error()}, asJSON)
		return
	}
	out, f := g.ingestOTLP(r.Context(), c, req, c.idBase(idem, body), len(body), received)
	c.count(out)
	if f != nil {
		writeOTLPFailure(w, c, f, asJSON)
		return
	}
	writeOTLP(w, http.StatusOK, exportResponse(out, asJSON), asJSON)
	c.finish(http.StatusOK, nil)
}

// exportResponse is OTLP's ExportLogsServiceResponse for out: empty when
// every record was taken, else partial_success with rejected_log_records
// and error_message. It is encoded here, two fields by hand, for the
// reason decodeOTLP decodes LogsData: the message's own type lives in the
// package that links gRPC. TestExportResponseEncoding holds it to that
// type's encodings.
func exportResponse(out outcome, asJSON bool) []byte {
	rejected := int64(len(out.rejected))
	if asJSON {
		if rejected == 0 {
			return []byte("{}")
		}
		type partialSuccess struct {
			RejectedLogRecords int64  `json:"rejectedLogRecords,string"` // int64 is a string in OTLP/JSON
			ErrorMessage       string `json:"errorMessage,omitempty"`
		}
		b, _ := json.Marshal(struct {
			PartialSuccess partialSuccess `json:"partialSuccess"`
		}{partialSuccess{rejected, out.message()}})
		return b
	}
	if rejected == 0 {
		return nil
	}
	ps := protowire.AppendTag(nil, 1, protowire.VarintType) // rejected_log_records
	ps = protowire.AppendVarint(ps, uint64(rejected))
	if msg := out.message(); msg != "" {
		ps = protowire.AppendTag(ps, 2, protowire.BytesType) // error_message
		ps = protowire.AppendString(ps, msg)
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType) // partial_success
	return protowire.AppendBytes(b, ps)
}

// ingestOTLP produces the records of an OTLP request as c's tenant.
func (g *Gateway) ingestOTLP(ctx context.Context, c *call, req *logs.LogsData, base [sha256.Size]byte, size int, received time.Time) (outcome, *failure) {
	n := 0
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.GetScopeLogs() {
			n += len(sl.GetLogRecords())
		}
	}
	if n > g.cfg.MaxRecords {
		return outcome{}, tooManyRecords(n, g.cfg.MaxRecords)
	}
	m := mapper{tenant: c.tenant.name, received: received, maxLogBytes: g.cfg.MaxLogBytes, version: g.version}
	e := c.newEncoder(base, n, size, received)
	m.each(req, func(i int, rec *schemas.Record, err error) {
		if err != nil {
			e.reject(i, reasonRecordInvalid, fmt.Sprintf("record %d: %v", i, err))
			return
		}
		e.add(i, rec)
	})
	return e.produce(ctx)
}

func tooManyRecords(n, limit int) *failure {
	return &failure{status: http.StatusRequestEntityTooLarge, reason: reasonTooManyRecords,
		msg: fmt.Sprintf("the request has %d log records, more than %d (SLUICE_GATEWAY_MAX_RECORDS_PER_REQUEST): send fewer per request", n, limit)}
}

// idempotencyKey returns the request's Idempotency-Key header.
func idempotencyKey(r *http.Request) (string, *failure) {
	k := r.Header.Get("Idempotency-Key")
	if len(k) > maxIdempotencyKey {
		return "", &failure{status: http.StatusBadRequest, reason: reasonBadRequest,
			msg: fmt.Sprintf("the Idempotency-Key header is longer than %d bytes", maxIdempotencyKey)}
	}
	return k, nil
}

// writeOTLP writes an encoded OTLP message in the request's encoding.
func writeOTLP(w http.ResponseWriter, status int, b []byte, asJSON bool) {
	if asJSON {
		w.Header().Set("Content-Type", mediaJSON)
	} else {
		w.Header().Set("Content-Type", mediaProtobuf)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeOTLPFailure answers f as OTLP/HTTP says: its status, and a
// google.rpc.Status in the request's encoding.
func writeOTLPFailure(w http.ResponseWriter, c *call, f *failure, asJSON bool) {
	c.failureHeaders(w.Header(), f)
	st := &rpcstatus.Status{Code: int32(grpcCode(f.status)), Message: f.msg}
	var b []byte
	if asJSON {
		b, _ = protojson.Marshal(st)
	} else {
		b, _ = proto.Marshal(st)
	}
	writeOTLP(w, f.status, b, asJSON)
	c.finish(f.status, f)
}

// gRPC status codes (google.rpc.Code) the gateway answers with.
const (
	codeInvalidArgument   = 3
	codeNotFound          = 5
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeUnimplemented     = 12
	codeInternal          = 13
	codeUnavailable       = 14
	codeUnauthenticated   = 16
)

// grpcCode is the gRPC status code of an HTTP status, as OTLP maps them.
func grpcCode(status int) int {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return codeInvalidArgument
	case http.StatusRequestEntityTooLarge:
		return codeResourceExhausted
	case http.StatusUnauthorized:
		return codeUnauthenticated
	case http.StatusForbidden:
		return codePermissionDenied
	case http.StatusNotFound:
		return codeNotFound
	case http.StatusTooManyRequests:
		return codeResourceExhausted
	case http.StatusServiceUnavailable:
		return codeUnavailable
	}
	return codeInternal
}

// linesResponse is the answer of /v1/lines.
type linesResponse struct {
	Accepted int      `json:"accepted"`
	Rejected int      `json:"rejected"`
	Errors   []string `json:"errors,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// maxLineErrors bounds the errors a /v1/lines answer lists.
const maxLineErrors = 20

// serveLines is POST /v1/lines: a JSON object per line
// (application/x-ndjson) or a record per line of text (text/plain), as
// sluice produce sends them.
func (g *Gateway) serveLines(w http.ResponseWriter, r *http.Request) {
	received := g.now()
	var ndjson bool
	switch mediaType(r.Header.Get("Content-Type")) {
	case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/json-seq", mediaJSON:
		ndjson = true
	case "text/plain", "":
	default:
		c := &call{g: g, endpoint: endpointLines}
		writeLinesFailure(w, c, &failure{status: http.StatusUnsupportedMediaType, reason: reasonUnsupported,
			msg: fmt.Sprintf("Content-Type %q: /v1/lines takes application/x-ndjson (a JSON object per line) or text/plain (a record per line)", r.Header.Get("Content-Type"))})
		return
	}
	creds, credErr := g.credentials(r.Header.Get("Authorization"))
	c, f := g.begin(r.Context(), endpointLines, creds, credErr)
	defer c.end()
	if f != nil {
		writeLinesFailure(w, c, f)
		return
	}
	idem, f := idempotencyKey(r)
	if f != nil {
		writeLinesFailure(w, c, f)
		return
	}
	body, f := c.readBody(r, w)
	if f != nil {
		writeLinesFailure(w, c, f)
		return
	}
	n := bytes.Count(body, []byte{'\n'}) + 1
	if n > g.cfg.MaxRecords {
		// Blank lines count too: an upper bound before reading any.
		lines := 0
		for line := range bytes.Lines(body) {
			if len(bytes.TrimSpace(line)) > 0 {
				lines++
			}
		}
		if lines > g.cfg.MaxRecords {
			writeLinesFailure(w, c, tooManyRecords(lines, g.cfg.MaxRecords))
			return
		}
	}
	e := c.newEncoder(c.idBase(idem, body), n, len(body), received)
	i := -1
	for line := range bytes.Lines(body) {
		i++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := decodeLine(line, ndjson)
		if err != nil {
			e.reject(i, reasonRecordInvalid, fmt.Sprintf("line %d: %v", i+1, err))
			continue
		}
		g.fillLine(&rec, c.tenant.name, received, ndjson)
		e.add(i, &rec)
	}
	out, f := e.produce(r.Context())
	c.count(out)
	if f != nil {
		writeLinesFailure(w, c, f)
		return
	}
	resp := linesResponse{Accepted: out.accepted, Rejected: len(out.rejected)}
	for _, rj := range out.rejected[:min(len(out.rejected), maxLineErrors)] {
		resp.Errors = append(resp.Errors, rj.msg)
	}
	status := http.StatusOK
	if out.accepted == 0 && len(out.rejected) > 0 {
		status = http.StatusBadRequest
		resp.Error = "no line was accepted"
	}
	writeJSON(w, status, resp)
	var rf *failure
	if status != http.StatusOK {
		rf = &failure{status: status, reason: reasonBadRequest}
	}
	c.finish(status, rf)
}

// errNotObject is an NDJSON line that is no JSON object.
var errNotObject = errors.New("not a JSON object")

// decodeLine decodes one line of /v1/lines: in NDJSON a JSON object, in
// text anything, with the rules of lineinput.Decode.
func decodeLine(line []byte, ndjson bool) (schemas.Record, error) {
	if ndjson && schemas.Sniff(line) != schemas.FormatJSON {
		return schemas.Record{}, errNotObject
	}
	return lineinput.Decode(line)
}

// fillLine completes the record of a line: the tenant is the
// credentials', whatever the line says; what the line does not say is
// when the gateway received it (the router takes the event time from
// there too) and that the gateway read it.
func (g *Gateway) fillLine(rec *schemas.Record, tenant string, received time.Time, ndjson bool) {
	rec.Tenant = tenant
	if rec.ObservedTimestamp.IsZero() {
		rec.ObservedTimestamp = received
	}
	if rec.Source.Format == "" {
		rec.Source.Format = "text"
		if ndjson {
			rec.Source.Format = "ndjson"
		}
	}
	if rec.Source.Shipper == "" {
		rec.Source.Shipper = g.version
	}
	if len(rec.Log) > g.cfg.MaxLogBytes {
		rec.OriginalSize = int64(len(rec.Log))
		rec.Log, rec.Truncated = truncateUTF8(rec.Log, g.cfg.MaxLogBytes), true
	}
}

func writeLinesFailure(w http.ResponseWriter, c *call, f *failure) {
	c.failureHeaders(w.Header(), f)
	writeJSON(w, f.status, linesResponse{Error: f.msg})
	c.finish(f.status, f)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
