package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/schemas"
)

// Endpoints, the endpoint label of sluice_gateway_requests_total.
const (
	endpointOTLP     = "otlp_http"
	endpointOTLPGRPC = "otlp_grpc"
	endpointLines    = "lines"
)

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 256

// Handler returns the gateway's routes: POST /v1/logs (OTLP/HTTP) and
// POST /v1/lines.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/logs", g.serveOTLP)
	mux.HandleFunc("POST /v1/lines", g.serveLines)
	return mux
}

// failure is why a request is refused: its HTTP status, the reason label,
// the message for the client, and how long to wait before a retry (0: no
// Retry-After).
type failure struct {
	status     int
	reason     string
	msg        string
	retryAfter time.Duration
}

func (f *failure) Error() string { return f.msg }

// unauthorized is the one answer to every credential that does not pass:
// missing, malformed, naming no tenant, unknown user, wrong password.
var unauthorized = &failure{status: http.StatusUnauthorized, reason: reasonUnauthorized,
	msg: "invalid credentials: authenticate with the tenant's Kafka user name and password (HTTP basic authentication) or a bearer token"}

// call is one request on its way: what it holds of the gateway's bounds,
// released by end.
type call struct {
	g        *Gateway
	endpoint string
	start    time.Time
	slot     bool
	client   *client
	tenant   *tenantState
	tslot    bool
	held     int64
	// bodyRead: the request body was read to its end; an answer before
	// closes the connection rather than reading what the client still
	// sends.
	bodyRead bool
	// bufs are the pooled buffers of the call (see buf).
	bufs []*[]byte
}

// tenantName is the tenant label of the call's metrics ("" before
// authentication).
func (c *call) tenantName() string {
	if c.tenant == nil {
		return ""
	}
	return c.tenant.name
}

// begin takes a request slot, authenticates the request and takes one of
// its tenant's slots, in that order, each without waiting.
func (g *Gateway) begin(ctx context.Context, endpoint string, creds credentials, credErr error) (*call, *failure) {
	c := &call{g: g, endpoint: endpoint, start: g.now()}
	if !g.lim.startRequest() {
		return c, &failure{status: http.StatusTooManyRequests, reason: reasonRequests,
			msg: "the gateway is handling as many requests as it may (SLUICE_GATEWAY_MAX_CONCURRENT_REQUESTS): retry later", retryAfter: g.cfg.RetryAfter}
	}
	c.slot = true
	if credErr != nil {
		g.m.auth.WithLabelValues("denied").Inc()
		return c, unauthorized
	}
	cl, err := g.pool.acquire(ctx, creds.user, creds.password)
	var unavailable *kafkaUnavailable
	switch {
	case errors.Is(err, errUnauthorized):
		return c, unauthorized
	case errors.Is(err, errTooManyClients):
		return c, &failure{status: http.StatusTooManyRequests, reason: reasonClients,
			msg: "the gateway holds as many tenants' Kafka clients as it may (SLUICE_GATEWAY_MAX_CLIENTS), all in use: retry later", retryAfter: g.cfg.RetryAfter}
	case errors.As(err, &unavailable):
		g.log.Warn("Kafka did not answer a credentials check", "user", creds.user, "err", err)
		return c, &failure{status: http.StatusServiceUnavailable, reason: reasonUnavailable,
			msg: "Kafka is not available: retry later", retryAfter: g.cfg.RetryAfter}
	case err != nil:
		return c, &failure{status: http.StatusServiceUnavailable, reason: reasonUnavailable, msg: err.Error(), retryAfter: g.cfg.RetryAfter}
	}
	c.client, c.tenant = cl, cl.tenant
	if !g.lim.startTenantRequest(c.tenant) {
		return c, &failure{status: http.StatusTooManyRequests, reason: reasonTenantRequests,
			msg: "this tenant has as many requests in progress as it may (SLUICE_GATEWAY_TENANT_MAX_CONCURRENT_REQUESTS): retry later", retryAfter: g.cfg.RetryAfter}
	}
	c.tslot = true
	if d := c.tenant.throttled(g.now()); d > 0 {
		return c, &failure{status: http.StatusTooManyRequests, reason: reasonThrottled,
			msg: "Kafka throttles this tenant (its produce quota): retry later", retryAfter: d}
	}
	return c, nil
}

// end gives back what the call holds.
func (c *call) end() {
	g := c.g
	if c.tenant != nil {
		g.lim.give(c.tenant, c.held)
		c.held = 0
		if c.tslot {
			g.lim.endTenantRequest(c.tenant)
		}
	}
	if c.client != nil {
		g.pool.release(c.client)
	}
	if c.slot {
		g.lim.endRequest()
	}
	c.putBufs()
}

// credentials returns the credentials of an HTTP request: basic
// authentication, or a bearer token of SLUICE_GATEWAY_TOKENS_FILE.
func (g *Gateway) credentials(auth string) (credentials, error) {
	scheme, rest, _ := strings.Cut(auth, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		r := http.Request{Header: http.Header{"Authorization": {auth}}}
		user, pass, ok := r.BasicAuth()
		if !ok {
			return credentials{}, errUnauthorized
		}
		return credentials{user: user, password: pass}, nil
	case strings.EqualFold(scheme, "Bearer") && g.tokens != nil:
		c, ok, err := g.tokens.lookup(strings.TrimSpace(rest))
		if err != nil {
			g.log.Warn("tokens file not read again; the tokens read before stay in force", "err", err)
		}
		if !ok {
			return credentials{}, errUnauthorized
		}
		return c, nil
	}
	return credentials{}, errUnauthorized
}

// readBody reads a request body within the bounds, decompressing gzip,
// charging it to the call's tenant.
func (c *call) readBody(r *http.Request, w http.ResponseWriter) ([]byte, *failure) {
	g := c.g
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity", "gzip":
	default:
		return nil, &failure{status: http.StatusUnsupportedMediaType, reason: reasonUnsupported,
			msg: fmt.Sprintf("Content-Encoding %q is not supported: send gzip or none", enc)}
	}
	if r.ContentLength > g.cfg.MaxBodyBytes {
		return nil, bodyTooLarge(g.cfg.MaxBodyBytes)
	}
	return c.readBounded(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes), enc == "gzip", r.ContentLength)
}

// readBounded reads rd to its end, gunzipped when gz, within
// SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES and the tenant's and the
// gateway's in-flight bytes, into a pooled buffer; size is rd's length
// when known (else < 0). rd bounds the bytes on the wire itself.
func (c *call) readBounded(rd io.Reader, gz bool, size int64) ([]byte, *failure) {
	g := c.g
	if gz {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, readFailure(err, g.cfg.MaxBodyBytes, "gzip")
		}
		defer zr.Close()
		rd = zr
	}
	br := &budgetReader{r: io.LimitReader(rd, g.cfg.MaxDecompressedBytes+1), l: g.lim, t: c.tenant}
	defer func() { c.held += br.held }()
	hint := 64 << 10
	if size > 0 {
		hint = int(min(size+bytes.MinRead, g.cfg.MaxDecompressedBytes+1))
	}
	p := c.buf(hint)
	buf := bytes.NewBuffer(*p)
	_, err := buf.ReadFrom(br)
	*p = buf.Bytes()[:0] // keep what ReadFrom grew
	if err != nil {
		if errors.Is(err, errBudget) {
			return nil, c.backpressure()
		}
		return nil, readFailure(err, g.cfg.MaxBodyBytes, "")
	}
	if int64(buf.Len()) > g.cfg.MaxDecompressedBytes {
		return nil, &failure{status: http.StatusRequestEntityTooLarge, reason: reasonDecompressed,
			msg: fmt.Sprintf("the request body is larger than %d bytes decompressed (SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES)", g.cfg.MaxDecompressedBytes)}
	}
	c.bodyRead = true
	g.m.bytes.WithLabelValues(c.tenant.name).Add(float64(buf.Len()))
	return buf.Bytes(), nil
}

func bodyTooLarge(n int64) *failure {
	return &failure{status: http.StatusRequestEntityTooLarge, reason: reasonBodyTooLarge,
		msg: fmt.Sprintf("the request body is larger than %d bytes (SLUICE_GATEWAY_MAX_BODY_BYTES): send fewer records per request", n)}
}

// readFailure explains an error of reading a body.
func readFailure(err error, maxBody int64, what string) *failure {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return bodyTooLarge(maxBody)
	}
	if what == "" && (errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader)) {
		what = "gzip"
	}
	msg := "reading the request body: " + err.Error()
	if what != "" {
		msg = "the body is not valid gzip: " + err.Error()
	}
	return &failure{status: http.StatusBadRequest, reason: reasonBadRequest, msg: msg}
}

func (c *call) backpressure() *failure {
	return &failure{status: http.StatusTooManyRequests, reason: reasonBackpressure,
		msg: "this tenant (or the gateway) has as many bytes in flight as it may (SLUICE_GATEWAY_TENANT_MAX_INFLIGHT_BYTES): retry later", retryAfter: c.g.cfg.RetryAfter}
}

// idBase is the input of the record ids of a request: the tenant, the
// endpoint, and the request's Idempotency-Key header if it has one, else
// the digest of its (decompressed) body. A client's retry of a request
// therefore gives its records the ids it gave them the first time, and
// the indexer stores them once (see the package doc).
func (c *call) idBase(idemKey string, body []byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	field := func(kind string, b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write([]byte(kind))
		h.Write(n[:])
		h.Write(b)
	}
	field("tenant", []byte(c.tenant.name))
	field("endpoint", []byte(c.endpoint))
	if idemKey != "" {
		field("idempotency-key", []byte(idemKey))
	} else {
		field("body", body)
	}
	var base [sha256.Size]byte
	h.Sum(base[:0])
	return base
}

// recordID is the id of the record at index i of a request with idBase
// base: 32 hex digits, like the router's.
func recordID(base *[sha256.Size]byte, i int) string {
	var b [sha256.Size + 8]byte
	copy(b[:], base[:])
	binary.BigEndian.PutUint64(b[sha256.Size:], uint64(i))
	sum := sha256.Sum256(b[:])
	return hex.EncodeToString(sum[:16])
}

// outcome is the result of a request's records.
type outcome struct {
	accepted int
	// rejected are the records refused alone (partial success), with why.
	rejected []rejection
}

// rejection is one record refused alone.
type rejection struct {
	index  int
	reason string
	msg    string
}

// message is the client's summary of the rejections: how many, and the
// first few reasons.
func (o *outcome) message() string {
	if len(o.rejected) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d records rejected", len(o.rejected), len(o.rejected)+o.accepted)
	for i, r := range o.rejected {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(o.rejected)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(r.msg)
	}
	return b.String()
}

// encoder turns a request's records into Kafka values, charging them to
// the tenant, and rejects those that cannot go.
type encoder struct {
	c        *call
	base     [sha256.Size]byte
	maxBytes int
	bufp     *[]byte // the pooled buffer buf grows from, given the grown one back
	buf      []byte
	ends     []int // end of each encoded record in buf
	keys     [][]byte
	index    []int // each encoded record's index in the request
	out      outcome
	received time.Time
	// The key of the last record with a pod, for the next of the same
	// container.
	lastKey                []byte
	lastPod, lastContainer string
}

// newEncoder returns an encoder of n records from a body of size bytes
// (the encoding takes about as much as the body).
func (c *call) newEncoder(base [sha256.Size]byte, n, size int, received time.Time) *encoder {
	p := c.buf(size + size/4 + 4096)
	return &encoder{c: c, base: base, maxBytes: c.g.cfg.MaxRecordBytes, received: received, bufp: p, buf: *p,
		ends: make([]int, 0, n), keys: make([][]byte, 0, n), index: make([]int, 0, n)}
}

// add encodes rec, the request's record i.
func (e *encoder) add(i int, rec *schemas.Record) {
	if rec.ID == "" {
		rec.ID = recordID(&e.base, i)
	}
	start := len(e.buf)
	var err error
	e.buf, err = schemas.AppendSingleObject(e.buf, rec)
	switch {
	case err != nil:
		e.reject(i, reasonRecordInvalid, fmt.Sprintf("record %d: %v", i, err))
		return
	case len(e.buf)-start > e.maxBytes:
		size := len(e.buf) - start
		e.buf = e.buf[:start]
		e.reject(i, reasonRecordTooLarge, fmt.Sprintf("record %d: %d bytes encoded, more than %d (SLUICE_GATEWAY_MAX_RECORD_BYTES)", i, size, e.maxBytes))
		return
	}
	e.ends = append(e.ends, len(e.buf))
	e.index = append(e.index, i)
	// The key is the container's, as the shipper keys by container: a
	// container's records stay in order in one partition. Records
	// without a pod go where the producer batches best.
	k := &rec.Kubernetes
	if k.PodID != "" && (e.lastKey == nil || k.PodID != e.lastPod || k.ContainerName != e.lastContainer) {
		e.lastKey = []byte(k.PodID + "/" + k.ContainerName)
		e.lastPod, e.lastContainer = k.PodID, k.ContainerName
	}
	var key []byte
	if k.PodID != "" {
		key = e.lastKey
	}
	e.keys = append(e.keys, key)
}

func (e *encoder) reject(i int, reason, msg string) {
	e.out.rejected = append(e.out.rejected, rejection{index: i, reason: reason, msg: msg})
}

// contentType says how values are encoded, as the shipper's do.
var contentTypeHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/vnd.sluice.record+avro")}}

// produce sends the encoded records as the call's tenant and waits until
// Kafka acknowledged or failed every one. What the call holds becomes the
// values' size first: a request whose values do not fit its tenant's
// bound is refused whole (429). A record Kafka refuses for good
// (too large for the topic, invalid) is rejected alone; any other failure
// fails the request: 401 (the credentials are no longer good), 403 (the
// user may not write its raw topic), 404 (no raw topic) or 503.
func (e *encoder) produce(ctx context.Context) (outcome, *failure) {
	// Once every record is acknowledged or failed, Kafka's client holds
	// none of buf: its grown capacity goes back to the pool with the call.
	defer func() { *e.bufp = e.buf[:0] }()
	c := e.c
	g := c.g
	// From now on the records are held (the body's charge was for them
	// and the body).
	switch need := int64(len(e.buf)); {
	case need > c.held:
		if !g.lim.take(c.tenant, need-c.held) {
			return e.out, c.backpressure()
		}
		c.held = need
	case need < c.held:
		g.lim.give(c.tenant, c.held-need)
		c.held = need
	}
	n := len(e.ends)
	if n == 0 {
		return e.out, nil
	}
	topic := g.cfg.Kafka.Topics().Raw(c.tenant.name)
	recs := make([]kgo.Record, n)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []failedRecord
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			failures = append(failures, failedRecord{r: r, err: err})
			mu.Unlock()
		}
		wg.Done()
	}
	wg.Add(n)
	start := 0
	for i, end := range e.ends {
		recs[i] = kgo.Record{Topic: topic, Key: e.keys[i], Value: e.buf[start:end:end], Headers: contentTypeHeaders, Timestamp: e.received}
		start = end
		c.client.cl.Produce(ctx, &recs[i], promise)
	}
	wg.Wait()
	out := e.out
	out.accepted = n - len(failures)
	if len(failures) == 0 {
		return out, nil
	}
	var fatal *failure
	for _, f := range failures {
		i := e.index[recIndex(recs, f.r)]
		switch {
		case errors.Is(f.err, kerr.MessageTooLarge), errors.Is(f.err, kerr.InvalidRecord), errors.Is(f.err, kerr.CorruptMessage),
			errors.Is(f.err, kerr.InvalidTimestamp), errors.Is(f.err, kerr.PolicyViolation):
			out.rejected = append(out.rejected, rejection{index: i, reason: reasonRecordRefused, msg: fmt.Sprintf("record %d: Kafka refused it: %v", i, f.err)})
		case fatal != nil:
		case errors.Is(f.err, kerr.TopicAuthorizationFailed):
			fatal = &failure{status: http.StatusForbidden, reason: reasonForbidden,
				msg: fmt.Sprintf("Kafka does not let user %q write %s", c.tenant.name, topic)}
		case errors.Is(f.err, kerr.UnknownTopicOrPartition):
			fatal = &failure{status: http.StatusNotFound, reason: reasonTopicMissing,
				msg: fmt.Sprintf("tenant %s has no topic %s (sluice tenant create %s makes it)", c.tenant.name, topic, c.tenant.name)}
		case errors.Is(f.err, kerr.SaslAuthenticationFailed):
			g.pool.forget(c.client)
			fatal = unauthorized
		default:
			fatal = &failure{status: http.StatusServiceUnavailable, reason: reasonUnavailable,
				msg:        fmt.Sprintf("Kafka did not acknowledge %d of %d records: %v; retry (the records keep their ids)", len(failures), n, f.err),
				retryAfter: g.cfg.RetryAfter}
		}
	}
	if fatal != nil {
		return out, fatal
	}
	return out, nil
}

type failedRecord struct {
	r   *kgo.Record
	err error
}

// recIndex returns the index of r in recs.
func recIndex(recs []kgo.Record, r *kgo.Record) int {
	for i := range recs {
		if &recs[i] == r {
			return i
		}
	}
	return 0
}

// countRecords counts a call's outcome in the metrics.
func (c *call) count(out outcome) {
	m := c.g.m
	t := c.tenantName()
	if out.accepted > 0 {
		m.records.WithLabelValues(t, "accepted").Add(float64(out.accepted))
	}
	if len(out.rejected) > 0 {
		m.records.WithLabelValues(t, "rejected").Add(float64(len(out.rejected)))
		for _, r := range out.rejected {
			m.rejections.WithLabelValues(t, r.reason).Inc()
		}
	}
}

// finish counts an answered request.
func (c *call) finish(code int, f *failure) {
	m := c.g.m
	t := c.tenantName()
	m.answered(t, c.endpoint, code)
	if f != nil {
		m.rejections.WithLabelValues(t, f.reason).Inc()
		if f.status >= 500 {
			c.g.log.Warn("request failed", "tenant", t, "endpoint", c.endpoint, "status", f.status, "err", f.msg)
		}
		return
	}
	if code == http.StatusOK {
		m.ackSeconds.WithLabelValues(t).Observe(c.g.now().Sub(c.start).Seconds())
	}
}

// failureHeaders sets the headers of an answer refusing the call: a
// connection whose body was not read to its end is closed, and
// Retry-After says when to try again, in whole seconds, at least one.
func (c *call) failureHeaders(h http.Header, f *failure) {
	if !c.bodyRead {
		h.Set("Connection", "close")
	}
	if f.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Basic realm="sluice"`)
	}
	if f.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(max(f.retryAfter, time.Second).Seconds()))))
	}
}

// mediaType returns the media type of a Content-Type header, lower case,
// without parameters.
func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	return mt
}
