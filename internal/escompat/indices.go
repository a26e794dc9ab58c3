package escompat

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"
)

// invalidFilenameChars is how Elasticsearch prints the characters an index
// name must not hold.
const invalidFilenameChars = `[ , ", *, \, <, |, ,, >, /, ?]`

// ValidateIndexName checks an index name as Elasticsearch does on creation,
// answering invalid_index_name_exception. A valid name is also a valid file
// name: lower-case, at most 255 bytes, none of \ / * ? " < > | space , # :,
// not starting with '_', '-' or '+', and neither "." nor "..".
func ValidateIndexName(name string) *Error {
	bad := func(why string) *Error {
		return &Error{Status: http.StatusBadRequest, Type: "invalid_index_name_exception",
			Reason: "Invalid index name [" + name + "], " + why, IndexUUID: "_na_", Index: name}
	}
	switch {
	case strings.ContainsAny(name, `\/*?"<>| ,`):
		return bad("must not contain the following characters " + invalidFilenameChars)
	case name == "":
		return bad("must not be empty")
	case strings.Contains(name, "#"):
		return bad("must not contain '#'")
	case strings.Contains(name, ":"):
		return bad("must not contain ':'")
	case name[0] == '_' || name[0] == '-' || name[0] == '+':
		return bad("must not start with '_', '-', or '+'")
	case len(name) > 255:
		return bad("index name is too long, (" + itoa(len(name)) + " > 255)")
	case name == "." || name == "..":
		return bad("must not be '.' or '..'")
	case strings.ToLower(name) != name:
		return bad("must be lowercase")
	}
	return nil
}

// IndexExists is the 400 resource_already_exists_exception of creating an
// index that exists.
func IndexExists(name, uuid string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "resource_already_exists_exception",
		Reason: "index [" + name + "/" + uuid + "] already exists", IndexUUID: uuid, Index: name}
}

// IndicesOptions says how an index expression resolves, as the
// ignore_unavailable and allow_no_indices parameters do.
type IndicesOptions struct {
	// IgnoreUnavailable skips concrete names that do not exist instead of
	// failing with index_not_found_exception.
	IgnoreUnavailable bool
	// AllowNoIndices lets wildcard expressions, _all or the whole
	// expression resolve to no index; when false that fails with
	// index_not_found_exception.
	AllowNoIndices bool
}

// DefaultIndices is how most APIs resolve an expression by default: a
// missing concrete name fails, wildcards may match nothing.
var DefaultIndices = IndicesOptions{AllowNoIndices: true}

// ResolveIndices expands a comma-separated index expression over the
// existing indices: concrete names, '*' wildcards, _all (also "" and "*"),
// and "-pattern" exclusions, which remove what the parts before them
// added. It returns the names sorted.
func ResolveIndices[V any](expr string, indices map[string]V, opts IndicesOptions) ([]string, *Error) {
	if expr == "" {
		expr = "_all"
	}
	seen := make(map[string]bool)
	wildcard := false
	for i, part := range strings.Split(expr, ",") {
		if part == "" {
			continue
		}
		if i > 0 && part[0] == '-' && len(part) > 1 {
			// An exclusion: Elasticsearch treats "-x" as a name only as the
			// first part of an expression.
			for name := range seen {
				if GlobMatch(part[1:], name) {
					delete(seen, name)
				}
			}
			continue
		}
		if part == "_all" || strings.Contains(part, "*") {
			wildcard = true
			if part == "_all" {
				part = "*"
			}
			n := 0
			for name := range indices {
				if GlobMatch(part, name) {
					seen[name] = true
					n++
				}
			}
			if n == 0 && !opts.AllowNoIndices {
				return nil, IndexNotFound(part)
			}
			continue
		}
		if _, ok := indices[part]; !ok {
			if opts.IgnoreUnavailable {
				continue
			}
			return nil, IndexNotFound(part)
		}
		seen[part] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 && !opts.AllowNoIndices && !wildcard {
		return nil, IndexNotFound(expr)
	}
	return names, nil
}

// ParseCreateIndex parses the body of PUT /{index}: its settings and
// mappings as JSON (nil when absent). aliases are accepted and ignored.
func ParseCreateIndex(body []byte) (settings, mappings json.RawMessage, _ *Error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, nil, nil
	}
	p := &jsonParser{src: body}
	root, serr := p.value()
	if serr != nil {
		return nil, nil, serr.xcontent(body)
	}
	if root.kind != kindObject {
		return nil, nil, NewError(http.StatusBadRequest, "parse_exception", "Failed to derive xcontent")
	}
	for i, k := range root.keys {
		v := root.vals[i]
		switch k {
		case "settings":
			settings = Encode(v, nil)
		case "mappings":
			mappings = Encode(v, nil)
		case "aliases":
		default:
			return nil, nil, NewError(http.StatusBadRequest, "parse_exception", "unknown key [%s] for create index", k)
		}
	}
	return settings, mappings, nil
}

// ReadCreateIndex reads a request to PUT /{index} for the index name: the
// name is checked (ValidateIndexName), then the body read and parsed with
// ParseCreateIndex.
func ReadCreateIndex(r *http.Request, name string) (settings, mappings json.RawMessage, _ *Error) {
	if err := ValidateIndexName(name); err != nil {
		return nil, nil, err
	}
	body, err := ReadBody(r)
	if err != nil {
		return nil, nil, err
	}
	return ParseCreateIndex(body)
}

// MergeSettings overlays b's flattened settings on a's; either may be nil.
func MergeSettings(a, b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	fa, fb := FlattenSettings(a), FlattenSettings(b)
	for k, v := range fb {
		fa[k] = v
	}
	keys := make([]string, 0, len(fa))
	for k := range fa {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	o := make(obj, 0, len(keys))
	for _, k := range keys {
		o = append(o, kv{"index." + k, fa[k]})
	}
	return Encode(o, nil)
}

// IndexDescription is one index's entry in GET /{index}: aliases, mappings
// and settings, with the settings Elasticsearch adds (creation_date, uuid,
// one shard, no replica).
func IndexDescription(name, uuid string, created time.Time, settings json.RawMessage, m *Mapping) Ordered {
	s := obj{
		{"creation_date", itoa64(created.UnixMilli())},
		{"number_of_shards", "1"},
		{"number_of_replicas", "0"},
		{"uuid", uuid},
		{"version", obj{{"created", "8512000"}}},
		{"provided_name", name},
	}
	flat := FlattenSettings(settings)
	for _, k := range []string{"number_of_shards", "number_of_replicas", "uuid", "creation_date", "provided_name"} {
		delete(flat, k)
	}
	s = append(s, nestSettings(flat)...)
	return obj{
		{"aliases", obj{}},
		{"mappings", m.Describe()},
		{"settings", obj{{"index", s}}},
	}
}

// Describe renders the mapping as GET /{index}/_mapping shows it under
// "mappings".
func (m *Mapping) Describe() Ordered {
	if o := m.toJSON(); o != nil {
		return o
	}
	return obj{}
}

// nestSettings turns flattened settings back into nested objects, sorted
// by key.
func nestSettings(flat map[string]string) obj {
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out obj
	for _, k := range keys {
		parts := strings.Split(k, ".")
		cur := &out
		for _, p := range parts[:len(parts)-1] {
			var next *obj
			for i := range *cur {
				if (*cur)[i].k == p {
					if o, ok := (*cur)[i].v.(*obj); ok {
						next = o
					}
				}
			}
			if next == nil {
				next = &obj{}
				*cur = append(*cur, kv{p, next})
			}
			cur = next
		}
		*cur = append(*cur, kv{parts[len(parts)-1], flat[k]})
	}
	return derefSettings(out)
}

func derefSettings(o obj) obj {
	for i := range o {
		if p, ok := o[i].v.(*obj); ok {
			o[i].v = derefSettings(*p)
		}
	}
	return o
}

// luceneVersions maps Elasticsearch minor versions to their Lucene version.
var luceneVersions = map[string]string{
	"8.0": "9.0.0", "8.1": "9.0.0", "8.2": "9.1.0", "8.3": "9.2.0", "8.4": "9.3.0", "8.5": "9.4.1",
	"8.6": "9.4.2", "8.7": "9.5.0", "8.8": "9.6.0", "8.9": "9.7.0", "8.10": "9.7.0", "8.11": "9.8.0",
	"8.12": "9.9.2", "8.13": "9.10.0", "8.14": "9.10.0", "8.15": "9.11.1", "8.16": "9.12.0",
	"8.17": "9.12.0", "8.18": "9.12.1", "8.19": "9.12.2",
}

// ClusterInfo is the body of GET /: node and cluster names, cluster UUID and
// version (e.g. "8.15.0", with the matching Lucene version).
func ClusterInfo(nodeName, clusterName, clusterUUID, version string) Ordered {
	parts := strings.SplitN(version, ".", 3)
	lucene := "9.11.1"
	if len(parts) >= 2 {
		if v, ok := luceneVersions[parts[0]+"."+parts[1]]; ok {
			lucene = v
		}
	}
	return obj{
		{"name", nodeName},
		{"cluster_name", clusterName},
		{"cluster_uuid", clusterUUID},
		{"version", obj{
			{"number", version},
			{"build_flavor", "default"},
			{"build_type", "docker"},
			{"build_hash", "1a77947f34deddb41af25e6f0ddb8e830159c179"},
			{"build_date", "2024-08-05T10:05:34.233336849Z"},
			{"build_snapshot", false},
			{"lucene_version", lucene},
			{"minimum_wire_compatibility_version", "7.17.0"},
			{"minimum_index_compatibility_version", "7.0.0"},
		}},
		{"tagline", "You Know, for Search"},
	}
}

// ClusterHealth is the body of GET /_cluster/health of a one-node cluster
// whose indices have one primary shard each and no replica: green.
func ClusterHealth(clusterName string, shards int) Ordered {
	return obj{
		{"cluster_name", clusterName},
		{"status", "green"},
		{"timed_out", false},
		{"number_of_nodes", 1},
		{"number_of_data_nodes", 1},
		{"active_primary_shards", shards},
		{"active_shards", shards},
		{"relocating_shards", 0},
		{"initializing_shards", 0},
		{"unassigned_shards", 0},
		{"unassigned_primary_shards", 0},
		{"delayed_unassigned_shards", 0},
		{"number_of_pending_tasks", 0},
		{"number_of_in_flight_fetch", 0},
		{"task_max_waiting_in_queue_millis", 0},
		{"active_shards_percent_as_number", 100.0},
	}
}
