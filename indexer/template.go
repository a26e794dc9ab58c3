package indexer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/elastic/go-elasticsearch/v8"
)

// templateVersion is the version of the index template this indexer
// installs. Raise it with every change to templateBody: an indexer never
// replaces a template of a higher version (a newer indexer's, during a
// rolling upgrade).
const templateVersion = 4

// templatePriority puts the template above Elastic's built-in templates
// (priority 100) and Fleet's integration templates (200), so that the
// Sluice mappings win for <prefix>-* indices.
const templatePriority = 500

// sharedTemplatePriority puts the shared indices' template above the
// main one, whose pattern (<prefix>-*) also matches them: Elasticsearch
// applies one composable template to an index, the highest in priority,
// and refuses two of the same priority with overlapping patterns.
const sharedTemplatePriority = templatePriority + 1

type templateSettings struct {
	prefix           string
	shared           bool // the template of the shared indices only
	shards, replicas int
	totalFields      int
	ignoreAbove      int
}

// templateName is the name of the index template: <prefix> for the
// daily indices, <prefix>-shared for the shared ones.
func (s templateSettings) templateName() string {
	if s.shared {
		return s.prefix + "-shared"
	}
	return s.prefix
}

// indexTemplates returns the index templates the indexer installs, by
// name: the template of every daily index, and that of the shared ones
// (the same but for its patterns, priority and shards).
func indexTemplates(cfg *Config) []namedTemplate {
	s := templateSettings{prefix: cfg.IndexPrefix, shards: cfg.Shards, replicas: cfg.Replicas,
		totalFields: cfg.TotalFieldsLimit, ignoreAbove: cfg.IgnoreAbove}
	shared := s
	shared.shared, shared.shards = true, cfg.SharedShards
	return []namedTemplate{{s.templateName(), templateBody(s)}, {shared.templateName(), templateBody(shared)}}
}

type namedTemplate struct {
	name string
	body []byte
}

// installTemplates installs or reconciles each template (installTemplate)
// and returns the names of those it wrote.
func installTemplates(ctx context.Context, es *elasticsearch.Client, templates []namedTemplate) (installed []string, err error) {
	for _, t := range templates {
		ok, err := installTemplate(ctx, es, t.name, t.body)
		if err != nil {
			return installed, err
		}
		if ok {
			installed = append(installed, t.name)
		}
	}
	return installed, nil
}

// templateBody returns the composable index template for <prefix>-*
// indices (with s.shared, for the shared indices <prefix>-_shared-* and
// <prefix>-_shared.*, at a higher priority):
//   - @timestamp and sluice.observed_timestamp are dates; log is text;
//     tenant, stream and every kubernetes.* field are keyword;
//     kubernetes.labels.* and kubernetes.annotations.* are keyword (their
//     keys are de-dotted, see appendDedotted);
//   - any other string (parsed attributes) is keyword with ignore_above:
//     exact matches and aggregations, no analysis cost, long values kept in
//     _source only; date and numeric detection are off, so a string never
//     becomes a date or a number by the look of its first value;
//   - any other fraction is double (not Elasticsearch's default float);
//   - sluice.rescued (fields moved out of a document Elasticsearch
//     rejected, as one JSON string) and the router's _overflow attribute
//     are text: searchable, and never in type conflict;
//   - sluice.unknown (fields of a newer record schema version) is kept in
//     _source and not mapped;
//   - the total-fields limit, shards and replicas come from the settings.
func templateBody(s templateSettings) []byte {
	keyword := map[string]any{"type": "keyword", "ignore_above": s.ignoreAbove}
	kw := map[string]any{"type": "keyword"}
	patterns, priority, description := []string{s.prefix + "-*"}, templatePriority, "Sluice daily log indices"
	if s.shared {
		patterns = []string{s.prefix + "-" + SharedName + "-*", s.prefix + "-" + SharedName + ".*"}
		priority, description = sharedTemplatePriority, "Sluice shared daily log indices (tenants in the shared layout)"
	}
	t := map[string]any{
		"index_patterns": patterns,
		"priority":       priority,
		"version":        templateVersion,
		"_meta":          map[string]any{"description": description, "managed_by": "sluice"},
		"template": map[string]any{
			"settings": map[string]any{"index": map[string]any{
				"number_of_shards":   s.shards,
				"number_of_replicas": s.replicas,
				"mapping":            map[string]any{"total_fields": map[string]any{"limit": s.totalFields}},
			}},
			"mappings": map[string]any{
				"dynamic":           true,
				"date_detection":    false,
				"numeric_detection": false,
				"dynamic_templates": []any{
					map[string]any{"kubernetes_labels": map[string]any{"path_match": "kubernetes.labels.*", "mapping": keyword}},
					map[string]any{"kubernetes_annotations": map[string]any{"path_match": "kubernetes.annotations.*", "mapping": keyword}},
					map[string]any{"kubernetes_namespace_labels": map[string]any{"path_match": "kubernetes.namespace_labels.*", "mapping": keyword}},
					map[string]any{"doubles": map[string]any{"match_mapping_type": "double", "mapping": map[string]any{"type": "double"}}},
					map[string]any{"strings": map[string]any{"match_mapping_type": "string", "mapping": keyword}},
				},
				"properties": map[string]any{
					"@timestamp": map[string]any{"type": "date"},
					"tenant":     kw,
					"stream":     kw,
					"log":        map[string]any{"type": "text"},
					"_overflow":  map[string]any{"type": "text"},
					"kubernetes": map[string]any{"properties": map[string]any{
						"pod_name": kw, "namespace_name": kw, "pod_id": kw, "host": kw,
						"container_name": kw, "docker_id": kw, "container_image": kw,
						"labels":           map[string]any{"type": "object"},
						"annotations":      map[string]any{"type": "object"},
						"namespace_labels": map[string]any{"type": "object"},
						"workload": map[string]any{"properties": map[string]any{
							"kind": kw, "name": kw,
						}},
					}},
					"sluice": map[string]any{"properties": map[string]any{
						"observed_timestamp": map[string]any{"type": "date"},
						"truncated":          map[string]any{"type": "boolean"},
						"original_size":      map[string]any{"type": "long"},
						"invalid_utf8":       map[string]any{"type": "boolean"},
						"partial":            map[string]any{"type": "boolean"},
						"metadata":           kw,
						"rescued":            map[string]any{"type": "text"},
						// Fields of a newer record schema version than this
						// indexer knows, as JSON texts: kept in _source, not
						// mapped (no field count, no type conflict).
						"unknown": map[string]any{"type": "object", "enabled": false},
						"source": map[string]any{"properties": map[string]any{
							"path": kw, "offset": map[string]any{"type": "long"}, "format": kw, "shipper": kw,
						}},
					}},
				},
			},
		},
	}
	b, _ := json.MarshalIndent(t, "", "  ") // maps of strings and numbers: cannot fail
	return b
}

// installTemplate reconciles the index template named after the prefix
// with body: it installs it when the cluster holds none, and otherwise
// sets the managed keys (managedTemplateKeys) in the cluster's template
// and keeps everything else an operator set there (refresh_interval, an
// ILM policy, aliases, composed_of, other _meta keys...). A template of a
// higher version (a newer indexer's, during a rolling upgrade) is left
// alone, and so is one whose managed keys already hold body's values: it
// is idempotent, and every replica does it at start. installed reports
// whether it wrote.
func installTemplate(ctx context.Context, es *elasticsearch.Client, name string, body []byte) (installed bool, err error) {
	res, err := es.Indices.GetIndexTemplate(es.Indices.GetIndexTemplate.WithContext(ctx), es.Indices.GetIndexTemplate.WithName(name))
	if err != nil {
		return false, fmt.Errorf("get index template %s: %w", name, err)
	}
	data, _ := io.ReadAll(res.Body)
	res.Body.Close()
	put := body
	switch res.StatusCode {
	case http.StatusOK:
		var got struct {
			IndexTemplates []struct {
				IndexTemplate map[string]any `json:"index_template"`
			} `json:"index_templates"`
		}
		if err := json.Unmarshal(data, &got); err != nil || len(got.IndexTemplates) != 1 {
			break // unreadable: installed anew
		}
		current := got.IndexTemplates[0].IndexTemplate
		if v, _ := current["version"].(float64); v > templateVersion {
			return false, nil
		}
		var want map[string]any
		if err := json.Unmarshal(body, &want); err != nil {
			return false, fmt.Errorf("index template body: %w", err)
		}
		merged, changed := reconcileTemplate(current, want)
		if !changed {
			return false, nil
		}
		put, _ = json.MarshalIndent(merged, "", "  ")
	case http.StatusNotFound:
	default:
		return false, fmt.Errorf("get index template %s: %s: %s", name, res.Status(), errorText(data))
	}
	res, err = es.Indices.PutIndexTemplate(name, bytes.NewReader(put), es.Indices.PutIndexTemplate.WithContext(ctx))
	if err != nil {
		return false, fmt.Errorf("put index template %s: %w", name, err)
	}
	data, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.IsError() {
		return false, fmt.Errorf("put index template %s: %s: %s", name, res.Status(), errorText(data))
	}
	return true, nil
}

// managedTemplateKeys are the paths of the index template the indexer
// owns: what its settings decide and what its documents need. Everything
// else in the cluster's template is the operator's.
var managedTemplateKeys = [][]string{
	{"index_patterns"},
	{"priority"},
	{"version"},
	{"_meta", "managed_by"},
	{"_meta", "description"},
	{"template", "mappings"},
	{"template", "settings", "index", "number_of_shards"},
	{"template", "settings", "index", "number_of_replicas"},
	{"template", "settings", "index", "mapping", "total_fields", "limit"},
}

// reconcileTemplate returns current with want's managed keys set, and
// whether that changes anything. Settings are compared as Elasticsearch
// returns them (numbers as strings).
func reconcileTemplate(current, want map[string]any) (map[string]any, bool) {
	changed := false
	for _, path := range managedTemplateKeys {
		v, ok := lookupPath(want, path)
		if !ok {
			continue
		}
		if old, ok := lookupPath(current, path); ok && sameJSON(old, v) {
			continue
		}
		setPath(current, path, v)
		changed = true
	}
	// A flattened key ("index.number_of_shards") would contradict the
	// nested one just set.
	if settings, ok := lookupPath(current, []string{"template", "settings"}); ok {
		if m, ok := settings.(map[string]any); ok {
			for _, k := range []string{"index.number_of_shards", "index.number_of_replicas", "index.mapping.total_fields.limit"} {
				if _, ok := m[k]; ok {
					delete(m, k)
					changed = true
				}
			}
		}
	}
	return current, changed
}

func lookupPath(m map[string]any, path []string) (any, bool) {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// sameJSON compares two JSON values, a number equal to a string of it
// (Elasticsearch returns settings as strings).
func sameJSON(a, b any) bool {
	norm := func(v any) string {
		switch x := v.(type) {
		case string:
			return x
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		out, _ := json.Marshal(v)
		return string(out)
	}
	return norm(a) == norm(b)
}

// errorText is the Elasticsearch error of a response body, or the body.
func errorText(body []byte) string {
	if e := parseErrorBody(body); e != nil {
		return e.Error()
	}
	if len(body) > 512 {
		body = body[:512]
	}
	return string(body)
}
