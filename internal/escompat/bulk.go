package escompat

import (
	"bytes"
	"net/http"
	"strconv"
	"time"
)

// BulkItem is one operation of a bulk request.
type BulkItem struct {
	Action string // "create", "index", "update" or "delete"
	Index  string // from the action's _index, else the request path's index
	ID     string // the action's _id; "" when the caller must generate one
	// Source is the document line (update: the update body), with a
	// trailing '\r' removed; nil for delete. It aliases the request body.
	Source []byte
	Line   int // 1-based line number of the action line
}

var bulkParams = map[string]bool{
	"_index": true, "_id": true, "routing": true, "op_type": true, "version": true, "version_type": true,
	"if_seq_no": true, "if_primary_term": true, "retry_on_conflict": true, "pipeline": true,
	"require_alias": true, "require_data_stream": true, "list_executed_pipelines": true, "_source": true,
	"dynamic_templates": true,
}

// maxIDBytes is Elasticsearch's limit on the length of an _id.
const maxIDBytes = 512

// ParseBulk parses an NDJSON bulk request body the way Elasticsearch 8's
// bulk parser does. defaultIndex is the {index} of /{index}/_bulk, or "".
//
// Whole-request errors come back as *Error, worded as Elasticsearch words
// them: illegal_argument_exception for a malformed action line, an unknown
// action or parameter, or a body not terminated by a newline;
// x_content_parse_exception for an action line that is not JSON; and
// action_request_validation_exception for a body with no operations, an
// operation without an index, or an _id over 512 bytes.
//
// Like Elasticsearch (REST API version 8), it accepts an action line with
// trailing content after the action object, skips blank lines between
// operations, and drops a final action whose document line is missing.
// Document lines are not parsed: see ParseDocument. The returned items alias
// body.
func ParseBulk(body []byte, defaultIndex string) ([]BulkItem, *Error) {
	items := make([]BulkItem, 0, bytes.Count(body, []byte{'\n'})/2+1)
	line := 0
	from := 0
	var pending *BulkItem // an action waiting for its document line
	for from < len(body) {
		nl := bytes.IndexByte(body[from:], '\n')
		if nl < 0 {
			return nil, IllegalArgument(`The bulk request must be terminated by a newline [\n]`)
		}
		text := body[from : from+nl]
		from += nl + 1
		line++
		if pending != nil {
			text = bytes.TrimSuffix(text, []byte{'\r'})
			pending.Source = text
			items = append(items, *pending)
			pending = nil
			continue
		}
		item, skip, err := parseAction(text, line, defaultIndex)
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		if item.Action == "delete" {
			items = append(items, item)
			continue
		}
		pending = &item
	}
	var problems []string
	for _, it := range items {
		if it.Index == "" {
			problems = append(problems, "index is missing")
		}
		if len(it.ID) > maxIDBytes {
			problems = append(problems, "id ["+it.ID+"] is too long, must be no longer than 512 bytes but was: "+strconv.Itoa(len(it.ID)))
		}
		if (it.Action == "delete" || it.Action == "update") && it.ID == "" {
			problems = append(problems, "id is missing")
		}
	}
	if len(items) == 0 {
		problems = append(problems, "no requests added")
	}
	if len(problems) > 0 {
		return nil, validationFailed(problems)
	}
	return items, nil
}

// parseAction parses one action/metadata line. skip is true for a blank
// line.
func parseAction(text []byte, line int, defaultIndex string) (item BulkItem, skip bool, _ *Error) {
	malformed := func(format string, args ...any) *Error {
		return IllegalArgument("Malformed action/metadata line [%d], "+format, append([]any{line}, args...)...)
	}
	p := &jsonParser{src: text}
	p.skipSpace()
	if p.pos == len(text) {
		return item, true, nil
	}
	if text[p.pos] != '{' {
		v, serr := p.value()
		if serr != nil {
			return item, false, serr.xcontent(text)
		}
		return item, false, malformed("expected START_OBJECT but found [%s]", v.tokenName())
	}
	p.pos++
	p.skipSpace()
	if p.pos >= len(text) {
		return item, false, (&syntaxError{off: p.pos, msg: "Unexpected end-of-input: expected close marker for Object"}).xcontent(text)
	}
	switch text[p.pos] {
	case '}':
		return item, false, malformed("expected FIELD_NAME but found [END_OBJECT]")
	case '"':
	default:
		return item, false, (&syntaxError{off: p.pos, msg: "Unexpected character " + describeChar(text[p.pos]) + ": was expecting double-quote to start field name"}).xcontent(text)
	}
	action, serr := p.str()
	if serr != nil {
		return item, false, serr.xcontent(text)
	}
	switch action {
	case "create", "index", "update", "delete":
	default:
		return item, false, malformed("expected field [create], [delete], [index] or [update] but found [%s]", action)
	}
	p.skipSpace()
	if p.pos >= len(text) || text[p.pos] != ':' {
		if p.pos >= len(text) {
			return item, false, (&syntaxError{off: p.pos, msg: "Unexpected end-of-input: expected close marker for Object"}).xcontent(text)
		}
		return item, false, (&syntaxError{off: p.pos, msg: "Unexpected character " + describeChar(text[p.pos]) + ": was expecting a colon to separate field name and value"}).xcontent(text)
	}
	p.pos++
	meta, serr := p.value()
	if serr != nil {
		return item, false, serr.xcontent(text)
	}
	item = BulkItem{Action: action, Index: defaultIndex, Line: line}
	if meta.kind != kindObject {
		return item, false, malformed("expected START_OBJECT or END_OBJECT but found [%s]", meta.tokenName())
	}
	opType := ""
	for i, k := range meta.keys {
		v := meta.vals[i]
		switch v.kind {
		case kindNull:
			continue
		case kindArray:
			return item, false, malformed("expected a simple value for field [%s] but found [START_ARRAY]", k)
		case kindObject:
			if k == "_source" || k == "dynamic_templates" {
				continue
			}
			return item, false, malformed("expected a simple value for field [%s] but found [START_OBJECT]", k)
		}
		if !bulkParams[k] {
			return item, false, IllegalArgument("Action/metadata line [%d] contains an unknown parameter [%s]", line, k)
		}
		switch k {
		case "_index":
			item.Index = scalarText(v)
		case "_id":
			item.ID = scalarText(v)
		case "op_type":
			opType = scalarText(v)
		case "version", "if_seq_no", "if_primary_term", "retry_on_conflict":
			if v.kind == kindBool || (v.kind == kindNumber && !isIntegerLiteral(v.text)) {
				return item, false, IllegalArgument("Action/metadata line [%d]: [%s] must be a number", line, k)
			}
			if v.kind == kindString {
				if _, err := strconv.ParseInt(v.text, 10, 64); err != nil {
					return item, false, IllegalArgument(`For input string: "%s"`, v.text)
				}
			}
		}
	}
	if action == "index" && opType != "" {
		switch opType {
		case "create":
			item.Action = "create"
		case "index":
		default:
			return item, false, IllegalArgument("opType must be 'create' or 'index', found: [%s]", opType)
		}
	}
	// Anything after the action object is ignored, with a deprecation
	// warning in Elasticsearch 8.
	return item, false, nil
}

// shardsOK is the _shards of a write: one primary, one unassigned replica.
var shardsOK = obj{{"total", 2}, {"successful", 1}, {"failed", 0}}

// OKItem is the response entry of a bulk operation that succeeded: result
// is "created", "updated", "deleted" or "not_found", status its HTTP status.
func OKItem(it BulkItem, version, seqNo int64, result string, status int) Ordered {
	return obj{{it.Action, obj{
		{"_index", it.Index}, {"_id", it.ID}, {"_version", version}, {"result", result},
		{"_shards", shardsOK}, {"_seq_no", seqNo}, {"_primary_term", 1}, {"status", status},
	}}}
}

// ErrorItem is the response entry of a bulk operation that failed with e.
func ErrorItem(it BulkItem, e *Error) Ordered {
	return obj{{it.Action, obj{{"_index", it.Index}, {"_id", it.ID}, {"status", e.Status}, {"error", e.body(true)}}}}
}

// VersionConflict is the 409 of a create whose _id exists in the index.
func VersionConflict(index, indexUUID, id string, version int64) *Error {
	return &Error{Status: http.StatusConflict, Type: "version_conflict_engine_exception",
		Reason:    "[" + id + "]: version conflict, document already exists (current version [" + strconv.FormatInt(version, 10) + "])",
		IndexUUID: indexUUID, Shard: "0", Index: index}
}

// ReadBulk reads a request to /_bulk or /{index}/_bulk (defaultIndex is
// its {index}, or ""): its refresh parameter, then its body, parsed with
// ParseBulk.
func ReadBulk(r *http.Request, defaultIndex string) ([]BulkItem, *Error) {
	if _, err := ParseRefresh(r.URL.Query()); err != nil {
		return nil, err
	}
	body, err := ReadBody(r)
	if err != nil {
		return nil, err
	}
	return ParseBulk(body, defaultIndex)
}

// ItemResult is the outcome of one bulk operation: Err, or the version,
// sequence number, result ("created", "updated", "deleted", "not_found")
// and status of a success.
type ItemResult struct {
	Err            *Error
	Version, SeqNo int64
	Result         string
	Status         int
}

// Entry renders the outcome of it as an entry of a bulk response (see
// OKItem and ErrorItem).
func (res ItemResult) Entry(it BulkItem) Ordered {
	if res.Err != nil {
		return ErrorItem(it, res.Err)
	}
	return OKItem(it, res.Version, res.SeqNo, res.Result, res.Status)
}

// BulkOp is one operation of a bulk request on its way through a stand-in:
// its item, whether an injected item fault rejected it, and its outcome.
type BulkOp struct {
	Item     BulkItem
	Rejected bool
	Result   ItemResult
}

// Fail sets the outcome of the operation to err.
func (o *BulkOp) Fail(err *Error) { o.Result = ItemResult{Err: err} }

// Writes reports whether the operation writes a document: a create or an
// index that was not rejected.
func (o *BulkOp) Writes() bool {
	return !o.Rejected && (o.Item.Action == "create" || o.Item.Action == "index")
}

// NewBulkOps makes the operations of a bulk request's items. First each is
// rejected, in request order, with probability itemFraction drawn from
// rnd; a rejected one fails with ItemRejected. Then each create and index
// without an _id is given one by newID.
func NewBulkOps(items []BulkItem, itemFraction float64, rnd *Rand, newID func() string) []BulkOp {
	ops := make([]BulkOp, len(items))
	for i, it := range items {
		ops[i] = BulkOp{Item: it, Rejected: rnd.Chance(itemFraction)}
	}
	for i := range ops {
		o := &ops[i]
		if o.Item.ID == "" && (o.Item.Action == "create" || o.Item.Action == "index") {
			o.Item.ID = newID()
		}
		if o.Rejected {
			o.Fail(ItemRejected(o.Item))
		}
	}
	return ops
}

// BulkResponse is the body of a bulk request that took took: the errors
// flag and the entries of ops, in request order.
func BulkResponse(took time.Duration, ops []BulkOp) Ordered {
	items := make([]any, len(ops))
	errors := false
	for i := range ops {
		items[i] = ops[i].Result.Entry(ops[i].Item)
		errors = errors || ops[i].Result.Err != nil
	}
	return obj{{"took", took.Milliseconds()}, {"errors", errors}, {"items", items}}
}
