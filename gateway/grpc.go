package gateway

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// OTLP/gRPC is served by net/http's HTTP/2 server (cleartext HTTP/2 with
// prior knowledge, or h2 over the gateway's TLS), not by
// google.golang.org/grpc: a unary call is one POST whose body is one
// length-prefixed message and whose answer is one message and a
// grpc-status trailer, and linking gRPC's library would cost every
// Sluice process, shippers on each node included, about 4 MB of memory
// at start (see the package documentation). What the gateway speaks is
// what gRPC's PROTOCOL-HTTP2 describes for a unary call: gzip or no
// compression, the credentials in the authorization metadata, errors as
// trailers-only answers with grpc-status-details-bin (RetryInfo when the
// client should wait). A client's deadline (grpc-timeout) is its own to
// keep: a call it gives up on is reset, which cancels the request.

// grpcExportPath is the one method served: LogsService.Export.
const grpcExportPath = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

// grpcStreamsPerConn bounds the calls in progress on one HTTP/2
// connection; with SLUICE_GATEWAY_MAX_CONNECTIONS it bounds the calls
// the gRPC listener holds.
const grpcStreamsPerConn = 16

// serveGRPC serves LogsService.Export: what POST /v1/logs does in
// protobuf, with the credentials in the authorization metadata (Basic or
// Bearer, as the HTTP header) and the idempotency key in idempotency-key.
func (g *Gateway) serveGRPC(w http.ResponseWriter, r *http.Request) {
	received := g.now()
	if r.ProtoMajor != 2 {
		http.Error(w, "OTLP/gRPC needs HTTP/2", http.StatusHTTPVersionNotSupported)
		return
	}
	if mt := mediaType(r.Header.Get("Content-Type")); mt != "application/grpc" && mt != "application/grpc+proto" {
		http.Error(w, fmt.Sprintf("Content-Type %q: gRPC takes application/grpc", r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != grpcExportPath {
		writeGRPCStatus(w, codeUnimplemented, "unknown method "+r.URL.Path+": the gateway serves "+grpcExportPath, nil)
		return
	}
	creds, credErr := g.credentials(r.Header.Get("Authorization"))
	c, f := g.begin(r.Context(), endpointOTLPGRPC, creds, credErr)
	defer c.end()
	if f != nil {
		c.grpcFailure(w, f)
		return
	}
	idem, f := idempotencyKey(r)
	if f != nil {
		c.grpcFailure(w, f)
		return
	}
	body, f := c.readGRPCMessage(r, w)
	if f != nil {
		c.grpcFailure(w, f)
		return
	}
	req, err := decodeOTLP(body, false)
	if err != nil {
		c.grpcFailure(w, &failure{status: http.StatusBadRequest, reason: reasonBadRequest, msg: err.Error()})
		return
	}
	out, f := g.ingestOTLP(r.Context(), c, req, c.idBase(idem, body), len(body), received)
	c.count(out)
	if f != nil {
		c.grpcFailure(w, f)
		return
	}
	msg := exportResponse(out, false)
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Accept-Encoding", "gzip")
	h.Set("Trailer", "Grpc-Status")
	w.WriteHeader(http.StatusOK)
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	_, _ = w.Write(append(frame, msg...))
	h.Set("Grpc-Status", "0")
	c.finish(http.StatusOK, nil)
}

// readGRPCMessage reads a unary call's one length-prefixed message,
// gunzipping it when its flag says so, within the bounds readBody keeps:
// the prefix's length counts against SLUICE_GATEWAY_MAX_BODY_BYTES.
func (c *call) readGRPCMessage(r *http.Request, w http.ResponseWriter) ([]byte, *failure) {
	g := c.g
	var prefix [5]byte
	raw := http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes+int64(len(prefix)))
	if _, err := io.ReadFull(raw, prefix[:]); err != nil {
		return nil, badGRPC("reading the message's length prefix: %v", err)
	}
	n := int64(binary.BigEndian.Uint32(prefix[1:]))
	if n > g.cfg.MaxBodyBytes {
		return nil, bodyTooLarge(g.cfg.MaxBodyBytes)
	}
	var gz bool
	switch prefix[0] {
	case 0:
	case 1:
		if enc := r.Header.Get("Grpc-Encoding"); enc != "gzip" {
			return nil, &failure{status: http.StatusUnsupportedMediaType, reason: reasonUnsupported,
				msg: fmt.Sprintf("grpc-encoding %q is not supported: compress with gzip or not at all", enc)}
		}
		gz = true
	default:
		return nil, badGRPC("the message's compressed flag is %d, not 0 or 1", prefix[0])
	}
	msg, f := c.readBounded(&exactReader{r: raw, n: n}, gz, n)
	if f != nil {
		return nil, f
	}
	if _, err := io.ReadFull(raw, prefix[:1]); err != io.EOF {
		return nil, badGRPC("a unary call carries one message; more follows it")
	}
	return msg, nil
}

func badGRPC(format string, args ...any) *failure {
	return &failure{status: http.StatusBadRequest, reason: reasonBadRequest, msg: fmt.Sprintf(format, args...)}
}

// exactReader reads n bytes of r: fewer is io.ErrUnexpectedEOF.
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	k, err := e.r.Read(p)
	e.n -= int64(k)
	if err == io.EOF && e.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	return k, err
}

// grpcFailure answers f as a gRPC status: the code OTLP maps f's HTTP
// status to (UNIMPLEMENTED for an encoding the gateway does not take,
// as gRPC says), with RetryInfo when f says when to retry (OTLP exporters
// retry RESOURCE_EXHAUSTED only with it).
func (c *call) grpcFailure(w http.ResponseWriter, f *failure) {
	code := grpcCode(f.status)
	if f.reason == reasonUnsupported {
		code = codeUnimplemented
	}
	var details []*anypb.Any
	if f.retryAfter > 0 {
		if d, err := anypb.New(&errdetails.RetryInfo{RetryDelay: durationpb.New(f.retryAfter)}); err == nil {
			details = append(details, d)
		}
	}
	if f.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="sluice"`)
	}
	writeGRPCStatus(w, code, f.msg, details)
	c.finish(f.status, f)
}

// writeGRPCStatus answers a call with a status and no message: gRPC's
// trailers-only answer, the status in the headers.
func writeGRPCStatus(w http.ResponseWriter, code int, msg string, details []*anypb.Any) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Accept-Encoding", "gzip")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", grpcPercentEncode(msg))
	if len(details) > 0 {
		if b, err := proto.Marshal(&rpcstatus.Status{Code: int32(code), Message: msg, Details: details}); err == nil {
			h.Set("Grpc-Status-Details-Bin", base64.RawStdEncoding.EncodeToString(b))
		}
	}
	w.WriteHeader(http.StatusOK)
}

// grpcPercentEncode encodes a grpc-message: bytes outside printable
// ASCII, and '%', as %XX.
func grpcPercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch > 0x7e || ch == '%' {
			fmt.Fprintf(&b, "%%%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}
