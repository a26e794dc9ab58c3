package schemas

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"time"
	"unicode/utf8"
)

// DeadLetter is the JSON document written to <prefix>.dlq.<tenant> for a
// record that a stage could not send (shipper), process (router) or store
// (indexer). Tenants read their dead letters to see their own errors; every
// dead letter names the stage, the reason, the error and where the record
// came from, and carries the record itself so it can be replayed.
type DeadLetter struct {
	// Reason is a short, bounded cause (also the metrics label): decode,
	// parse, expr, too_large, rejected, ...
	Reason string `json:"reason"`
	// Error is the full error text.
	Error string `json:"error"`
	// Stage is "shipper", "router" or "indexer"; Instance names the replica.
	Stage    string `json:"stage"`
	Instance string `json:"instance"`

	// Step, StepType and PipelineVersion are set by the router: the index of
	// the pipeline step that failed (-1: not a step, e.g. decoding) and its
	// type, and the version of the tenant's pipeline that was in force.
	Step            int    `json:"step"`
	StepType        string `json:"step_type,omitempty"`
	PipelineVersion int64  `json:"pipeline_version,omitempty"`

	// Index and Status are set by the indexer: the Elasticsearch index the
	// document was meant for and the status Elasticsearch answered.
	Index  string `json:"index,omitempty"`
	Status int    `json:"status,omitempty"`
	// Document is the document Elasticsearch rejected (indexer), when it is
	// at most MaxDeadLetterDocument bytes.
	Document json.RawMessage `json:"document,omitempty"`

	// Topic, Partition, Offset and Timestamp say where the record was read.
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	// LastOffset is set for a record joined from several lines (router
	// multiline): the offset of its last line; Payload then holds every
	// line's payload, newline-separated.
	LastOffset int64 `json:"last_offset,omitempty"`
	// Payload is the original value: as text when it is UTF-8, else base64
	// (PayloadEncoding says which); cut to MaxDeadLetterPayload bytes, with
	// PayloadTruncated and the full PayloadSize, when longer. SetPayload
	// fills these.
	Payload          string `json:"payload"`
	PayloadEncoding  string `json:"payload_encoding"`
	PayloadTruncated bool   `json:"payload_truncated,omitempty"`
	PayloadSize      int    `json:"payload_size,omitempty"`

	raw []byte // the payload given to SetPayload, for Marshal to cut further
}

// Dead letters must fit in one Kafka record (the default limit is 1 MiB):
// a payload is cut to MaxDeadLetterPayload bytes, a rejected document is
// kept only up to MaxDeadLetterDocument bytes, and Marshal keeps the whole
// dead letter within MaxDeadLetterBytes (escaping can make JSON several
// times longer than its content).
const (
	MaxDeadLetterPayload  = 512 << 10
	MaxDeadLetterDocument = 128 << 10
	MaxDeadLetterBytes    = 900 << 10
)

// SetPayload stores value in d as described at Payload.
func (d *DeadLetter) SetPayload(value []byte) {
	d.setPayload(value, len(value), MaxDeadLetterPayload)
}

// SetCutPayload stores value, the first bytes of a payload of size bytes
// that was cut before it reached the stage, as truncated.
func (d *DeadLetter) SetCutPayload(value []byte, size int) {
	d.setPayload(value, max(size, len(value)), MaxDeadLetterPayload)
}

func (d *DeadLetter) setPayload(value []byte, size, limit int) {
	d.raw = value
	d.PayloadEncoding, d.PayloadTruncated, d.PayloadSize = "utf-8", false, 0
	if size > len(value) {
		d.PayloadSize, d.PayloadTruncated = size, true
	}
	if len(value) > limit {
		// The dead letter itself must fit in Kafka: keep the head.
		d.PayloadSize, d.PayloadTruncated = size, true
		value = value[:limit]
		for !utf8.Valid(value) && utf8.Valid(d.raw) && len(value) > 0 {
			value = value[:len(value)-1] // cut text on a character boundary
		}
	}
	d.Payload = string(value)
	if !utf8.Valid(value) {
		d.Payload, d.PayloadEncoding = base64.StdEncoding.EncodeToString(value), "base64"
	}
}

// SetDocument stores doc (a JSON document) in d when it is valid JSON of at
// most MaxDeadLetterDocument bytes.
func (d *DeadLetter) SetDocument(doc []byte) {
	d.Document = nil
	if len(doc) <= MaxDeadLetterDocument && json.Valid(doc) {
		d.Document = json.RawMessage(doc)
	}
}

// Marshal returns d's JSON form, at most MaxDeadLetterBytes long: when it
// would be longer, the document is left out, then the payload cut further
// (PayloadTruncated and PayloadSize say so).
func (d *DeadLetter) Marshal() []byte {
	v := d.marshal()
	limit := min(len(d.raw), MaxDeadLetterPayload)
	for len(v) > MaxDeadLetterBytes {
		switch {
		case d.Document != nil:
			d.Document = nil
		case limit > 0:
			limit /= 2
			d.setPayload(d.raw, len(d.raw), limit)
		default:
			// Only the error text can be this long.
			d.Error = d.Error[:len(d.Error)/2]
		}
		v = d.marshal()
	}
	return v
}

func (d *DeadLetter) marshal() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(d) // strings, numbers, a time and valid raw JSON: cannot fail
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
