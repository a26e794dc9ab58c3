package gateway

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	common "go.opentelemetry.io/proto/otlp/common/v1"
	logs "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelogs/sluice/schemas"
)

// maxNesting bounds how deeply an OTLP request's values may nest (arrays
// and key-value lists within each other); deeper is a bad request. Logs
// nest a few levels; the bound keeps the decoders' recursion short.
const maxNesting = 64

var (
	protoOptions = proto.UnmarshalOptions{RecursionLimit: maxNesting + 8}
	// OTLP/JSON: receivers ignore fields they do not know, enums come as
	// numbers, 64-bit integers as strings or numbers.
	jsonOptions = protojson.UnmarshalOptions{DiscardUnknown: true, RecursionLimit: maxNesting + 8}
)

// decodeOTLP decodes an ExportLogsServiceRequest in the protobuf or the
// JSON encoding of OTLP/HTTP. Errors say what is wrong with the request,
// for a 400 answer.
//
// The request is decoded as the logs package's LogsData, which has the
// same one field (repeated ResourceLogs resource_logs = 1) in both
// encodings: the collector package that defines the request also holds
// the gRPC service, and importing it links google.golang.org/grpc into
// every process (see the package documentation).
func decodeOTLP(body []byte, asJSON bool) (*logs.LogsData, error) {
	req := &logs.LogsData{}
	if !asJSON {
		if err := protoOptions.Unmarshal(body, req); err != nil {
			return nil, fmt.Errorf("not an OTLP ExportLogsServiceRequest in protobuf: %w", err)
		}
		return req, nil
	}
	if err := jsonOptions.Unmarshal(body, req); err != nil {
		return nil, fmt.Errorf("not an OTLP ExportLogsServiceRequest in JSON: %w", err)
	}
	// OTLP/JSON writes trace and span ids as hex, which protojson (for
	// which bytes are base64) read as base64: turn them back.
	for _, rl := range req.ResourceLogs {
		for _, sl := range rl.GetScopeLogs() {
			for i, lr := range sl.GetLogRecords() {
				var err error
				if lr.TraceId, err = hexID(lr.TraceId, 16); err != nil {
					return nil, fmt.Errorf("log record %d: traceId: %w", i, err)
				}
				if lr.SpanId, err = hexID(lr.SpanId, 8); err != nil {
					return nil, fmt.Errorf("log record %d: spanId: %w", i, err)
				}
			}
		}
	}
	return req, nil
}

// hexID returns the id of n bytes that OTLP/JSON wrote in hex (2n
// characters), given what protojson made of those characters as base64.
// Every hex digit is a base64 character and 2n hex characters are a whole
// number of base64 quanta for n of 8 and 16, so the text is recovered
// exactly.
func hexID(b []byte, n int) ([]byte, error) {
	switch len(b) {
	case 0:
		return nil, nil
	case 2 * n * 3 / 4: // 2n hex characters read as base64
		id, err := hex.DecodeString(base64.StdEncoding.EncodeToString(b))
		if err != nil {
			return nil, fmt.Errorf("want %d hex digits", 2*n)
		}
		return id, nil
	}
	return nil, fmt.Errorf("want %d hex digits", 2*n)
}

// mapper maps the records of an OTLP request to Records.
type mapper struct {
	tenant      string
	received    time.Time
	maxLogBytes int
	version     string
	// attrs is the attribute map of every record, cleared for each: a
	// record is encoded before the next is made.
	attrs map[string]any
}

// resourceInfo is what a resource's attributes give every record of it.
type resourceInfo struct {
	kube   schemas.Kubernetes
	attrs  map[string]any
	stream string
	path   string
}

// kubeAttrs are the resource (and record) attributes the record has fields
// for: they fill the field rather than an attribute.
const (
	attrNamespace = "k8s.namespace.name"
	attrPod       = "k8s.pod.name"
	attrPodUID    = "k8s.pod.uid"
	attrContainer = "k8s.container.name"
	attrNode      = "k8s.node.name"
	attrID        = "container.id"
	attrImage     = "container.image.name"
	attrImageTag  = "container.image.tag"
	attrStream    = "log.iostream"
	attrPath      = "log.file.path"
)

// workloads are the attributes naming a pod's owner, in the order the
// record's workload is taken from (the first one present).
var workloads = []struct{ attr, kind string }{
	{"k8s.deployment.name", "Deployment"},
	{"k8s.statefulset.name", "StatefulSet"},
	{"k8s.daemonset.name", "DaemonSet"},
	{"k8s.cronjob.name", "CronJob"},
	{"k8s.job.name", "Job"},
	{"k8s.replicaset.name", "ReplicaSet"},
}

// labelPrefixes map attribute prefixes to the record's label maps (the
// semantic conventions' k8s.pod.label.<key>, and their newer plural form).
var labelPrefixes = []struct {
	prefix string
	field  func(*schemas.Kubernetes) *map[string]string
}{
	{"k8s.pod.label.", func(k *schemas.Kubernetes) *map[string]string { return &k.Labels }},
	{"k8s.pod.labels.", func(k *schemas.Kubernetes) *map[string]string { return &k.Labels }},
	{"k8s.pod.annotation.", func(k *schemas.Kubernetes) *map[string]string { return &k.Annotations }},
	{"k8s.pod.annotations.", func(k *schemas.Kubernetes) *map[string]string { return &k.Annotations }},
	{"k8s.namespace.label.", func(k *schemas.Kubernetes) *map[string]string { return &k.NamespaceLabels }},
	{"k8s.namespace.labels.", func(k *schemas.Kubernetes) *map[string]string { return &k.NamespaceLabels }},
}

// resource maps a resource's attributes: those the record has a field for
// fill it, the others become attributes.
func (m *mapper) resource(attrs []*common.KeyValue) resourceInfo {
	var ri resourceInfo
	ri.attrs = make(map[string]any, len(attrs))
	// The workload is the first of workloads present.
	workload := len(workloads)
	for _, kv := range attrs {
		if _, ok := kv.GetValue().GetValue().(*common.AnyValue_StringValue); ok {
			if i := workloadIndex(kv.GetKey()); i >= 0 && i < workload {
				workload = i
			}
		}
	}
	var image, tag string
	for _, kv := range attrs {
		key := kv.GetKey()
		if key == "" {
			continue
		}
		s, ok := kv.GetValue().GetValue().(*common.AnyValue_StringValue)
		if !ok {
			addAttr(ri.attrs, key, kv.GetValue(), 0)
			continue
		}
		v := s.StringValue
		switch key {
		case attrNamespace:
			ri.kube.NamespaceName = v
		case attrPod:
			ri.kube.PodName = v
		case attrPodUID:
			ri.kube.PodID = v
		case attrContainer:
			ri.kube.ContainerName = v
		case attrNode:
			ri.kube.Host = v
		case attrID:
			ri.kube.DockerID = v
		case attrImage:
			image = v
		case attrImageTag:
			tag = v
		case attrStream:
			ri.stream = v
		case attrPath:
			ri.path = v
		default:
			if workload < len(workloads) && key == workloads[workload].attr {
				ri.kube.Workload = schemas.Workload{Kind: workloads[workload].kind, Name: v}
				continue
			}
			if label, name := labelField(&ri.kube, key); label != nil {
				if *label == nil {
					*label = make(map[string]string)
				}
				(*label)[name] = v
				continue
			}
			ri.attrs[key] = v
		}
	}
	switch {
	case image != "" && tag != "":
		ri.kube.ContainerImage = image + ":" + tag
	case image != "":
		ri.kube.ContainerImage = image
	case tag != "":
		ri.attrs[attrImageTag] = tag
	}
	// Every record of the resource carries the same metadata: encode it
	// once.
	ri.kube.CacheEncoding()
	return ri
}

func workloadIndex(key string) int {
	for i, w := range workloads {
		if w.attr == key {
			return i
		}
	}
	return -1
}

// labelField returns the label map whose prefix key has, and the label's
// own key; nil if key has none of labelPrefixes.
func labelField(k *schemas.Kubernetes, key string) (*map[string]string, string) {
	for _, lp := range labelPrefixes {
		if name, ok := strings.CutPrefix(key, lp.prefix); ok && name != "" {
			return lp.field(k), name
		}
	}
	return nil, ""
}

// maxAttributes bounds the attributes of one record, its resource's and
// scope's included (after key-value lists are flattened). The resource's
// and scope's are copied into each of their records: without a bound, a
// request of many attributes and many records would cost their product.
const maxAttributes = 1000

// errTooManyAttributes rejects a record over maxAttributes.
var errTooManyAttributes = fmt.Errorf("more than %d attributes (resource, scope and record together)", maxAttributes)

// record maps one OTLP log record of resource ri to a Record; base is
// what its resource and scope give it (scopeAttributes).
func (m *mapper) record(ri *resourceInfo, base map[string]any, lr *logs.LogRecord) (schemas.Record, error) {
	if len(base)+len(lr.Attributes) > maxAttributes {
		return schemas.Record{}, errTooManyAttributes
	}
	rec := schemas.Record{
		Tenant:     m.tenant,
		Stream:     ri.stream,
		Kubernetes: ri.kube,
		Source:     schemas.Source{Path: ri.path, Format: "otlp", Shipper: m.version},
	}
	// The event time, else when it was observed. A record with neither
	// keeps no time of its own: the router gives it the observed one (the
	// time the gateway received it), and its id then does not depend on
	// when a retry came.
	switch {
	case lr.TimeUnixNano != 0:
		rec.Timestamp = unixNano(lr.TimeUnixNano)
	case lr.ObservedTimeUnixNano != 0:
		rec.Timestamp = unixNano(lr.ObservedTimeUnixNano)
	}
	if lr.ObservedTimeUnixNano != 0 {
		rec.ObservedTimestamp = unixNano(lr.ObservedTimeUnixNano)
	} else {
		rec.ObservedTimestamp = m.received
	}
	rec.Log = bodyText(lr.Body)
	if len(rec.Log) > m.maxLogBytes {
		rec.OriginalSize = int64(len(rec.Log))
		rec.Log, rec.Truncated = truncateUTF8(rec.Log, m.maxLogBytes), true
	}

	// One map serves every record of the request (see each).
	attrs := m.attrs
	if attrs == nil {
		attrs = make(map[string]any, len(base)+len(lr.Attributes)+4)
		m.attrs = attrs
	}
	clear(attrs)
	maps.Copy(attrs, base)
	for _, kv := range lr.Attributes {
		key := kv.GetKey()
		if key == "" {
			continue
		}
		if s, ok := kv.GetValue().GetValue().(*common.AnyValue_StringValue); ok {
			switch key {
			case attrStream:
				rec.Stream = s.StringValue
				continue
			case attrPath:
				rec.Source.Path = s.StringValue
				continue
			}
		}
		addAttr(attrs, key, kv.GetValue(), 0)
	}
	if lr.SeverityText != "" {
		attrs["severity_text"] = lr.SeverityText
	}
	if lr.SeverityNumber != 0 {
		attrs["severity_number"] = int64(lr.SeverityNumber)
	}
	if len(lr.TraceId) > 0 {
		attrs["trace_id"] = hex.EncodeToString(lr.TraceId)
	}
	if len(lr.SpanId) > 0 {
		attrs["span_id"] = hex.EncodeToString(lr.SpanId)
	}
	if lr.Flags != 0 {
		attrs["trace_flags"] = int64(lr.Flags & 0xff)
	}
	if lr.EventName != "" {
		attrs["event_name"] = lr.EventName
	}
	if len(attrs) > maxAttributes {
		return schemas.Record{}, errTooManyAttributes
	}
	if len(attrs) > 0 {
		rec.Attributes = attrs
	}
	return rec, nil
}

// scopeAttributes returns the attributes every record of a scope starts
// from: its resource's, then the scope's own, which win. They are merged
// once for all the scope's records rather than for each.
func scopeAttributes(resource map[string]any, sc *common.InstrumentationScope) map[string]any {
	if sc == nil || (len(sc.Attributes) == 0 && sc.Name == "" && sc.Version == "") {
		return resource
	}
	attrs := make(map[string]any, len(resource)+len(sc.Attributes)+2)
	maps.Copy(attrs, resource)
	for _, kv := range sc.Attributes {
		if kv.GetKey() != "" {
			addAttr(attrs, kv.GetKey(), kv.GetValue(), 0)
		}
	}
	if sc.Name != "" {
		attrs["otel.scope.name"] = sc.Name
	}
	if sc.Version != "" {
		attrs["otel.scope.version"] = sc.Version
	}
	return attrs
}

func unixNano(ns uint64) time.Time {
	if ns > math.MaxInt64 {
		ns = math.MaxInt64
	}
	return time.Unix(0, int64(ns)).UTC()
}

// truncateUTF8 returns s cut to at most n bytes, on a UTF-8 boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// addAttr adds an OTLP attribute to attrs in the record's flat form: a
// scalar as it is (bytes as base64), an array of scalars as a list, a
// key-value list as one attribute per key under key + "." + its key, and
// an array holding arrays or lists as its JSON text.
func addAttr(attrs map[string]any, key string, v *common.AnyValue, depth int) {
	if kvl, ok := v.GetValue().(*common.AnyValue_KvlistValue); ok && depth < maxNesting {
		for _, kv := range kvl.KvlistValue.GetValues() {
			if kv.GetKey() != "" {
				addAttr(attrs, key+"."+kv.GetKey(), kv.GetValue(), depth+1)
			}
		}
		return
	}
	attrs[key] = anyAttr(v)
}

// anyAttr is the attribute value of v (see addAttr); a key-value list is
// its JSON text.
func anyAttr(v *common.AnyValue) any {
	switch x := v.GetValue().(type) {
	case nil:
		return nil
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_BoolValue:
		return x.BoolValue
	case *common.AnyValue_IntValue:
		return x.IntValue
	case *common.AnyValue_DoubleValue:
		return x.DoubleValue
	case *common.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case *common.AnyValue_ArrayValue:
		vals := x.ArrayValue.GetValues()
		list := make([]any, 0, len(vals))
		for _, e := range vals {
			switch e.GetValue().(type) {
			case *common.AnyValue_ArrayValue, *common.AnyValue_KvlistValue:
				return string(appendAnyJSON(nil, v, 0))
			}
			list = append(list, anyAttr(e))
		}
		return list
	}
	return string(appendAnyJSON(nil, v, 0))
}

// bodyText is the log message of a body: a string as it is, any other
// value as its JSON text, nothing as "".
func bodyText(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case nil:
		return ""
	case *common.AnyValue_StringValue:
		return x.StringValue
	}
	return string(appendAnyJSON(nil, v, 0))
}

// appendAnyJSON appends v as JSON: a key-value list as an object, an array
// as an array, bytes as a base64 string, a double that JSON cannot hold
// (NaN, infinities) as a string; nothing, and what nests deeper than
// maxNesting, as null.
func appendAnyJSON(b []byte, v *common.AnyValue, depth int) []byte {
	if depth > maxNesting {
		return append(b, "null"...)
	}
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return schemas.AppendJSONString(b, x.StringValue)
	case *common.AnyValue_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case *common.AnyValue_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *common.AnyValue_DoubleValue:
		f := x.DoubleValue
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return schemas.AppendJSONString(b, strconv.FormatFloat(f, 'g', -1, 64))
		}
		return schemas.AppendJSONFloat(b, f)
	case *common.AnyValue_BytesValue:
		return schemas.AppendJSONString(b, base64.StdEncoding.EncodeToString(x.BytesValue))
	case *common.AnyValue_ArrayValue:
		b = append(b, '[')
		for i, e := range x.ArrayValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendAnyJSON(b, e, depth+1)
		}
		return append(b, ']')
	case *common.AnyValue_KvlistValue:
		b = append(b, '{')
		for i, kv := range x.KvlistValue.GetValues() {
			if i > 0 {
				b = append(b, ',')
			}
			b = schemas.AppendJSONString(b, kv.GetKey())
			b = append(b, ':')
			b = appendAnyJSON(b, kv.GetValue(), depth+1)
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

// each calls fn with every record of req, in order, with its index, or
// with the error that rejects it. The records share one attribute map:
// fn must be done with a record (encode it) before it returns.
func (m *mapper) each(req *logs.LogsData, fn func(i int, rec *schemas.Record, err error)) {
	i := 0
	for _, rl := range req.ResourceLogs {
		ri := m.resource(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			base := scopeAttributes(ri.attrs, sl.GetScope())
			for _, lr := range sl.GetLogRecords() {
				rec, err := m.record(&ri, base, lr)
				fn(i, &rec, err)
				i++
			}
		}
	}
}
