package indexer

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// Index names are <prefix>-<tenant>[.<dataset>]-YYYY.MM.DD, and in the
// shared layout <prefix>-_shared[.<dataset>]-YYYY.MM.DD (see layout.go).
// The dataset is what a route names (the name Elasticsearch's data streams
// give the part of an index name that says what the data is).
//
// With a dash, <prefix>-<tenant>[-<dataset>]-..., tenant "shop" with
// dataset "web" and tenant "shop-web" would write to the same index.
// Tenant ids and dataset names never contain a dot, so a dot between them
// keeps every tenant's indices apart, like the topic names
// (<prefix>.parsed.<tenant>.<dataset>) do.
//
// Wildcard patterns cannot grant one tenant its indices alone (sluice-shop-*
// also matches tenant shop-web's, sluice-shop-2* tenant shop-2fa's): an
// Elasticsearch role for tenant shop uses the regular expression
// /sluice-shop(\.[a-z0-9-]+)?-[0-9]{4}\.[0-9]{2}\.[0-9]{2}/ (see docs/indexer.md).

// ErrInvalidIndexPrefix is returned (wrapped) by ValidateIndexPrefix.
var ErrInvalidIndexPrefix = errors.New("invalid index prefix")

// maxIndexPrefix keeps the longest index name, with a 63-character tenant
// and dataset, within Elasticsearch's 255 bytes.
const maxIndexPrefix = 255 - len("-") - 63 - len(".") - 63 - len("-2006.01.02")

var indexPrefixRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// builtinPrefixes are the names of Elastic's built-in index templates for
// data streams (logs-*-*, metrics-*-*, ...): an index prefix that made names
// they match would have its indices captured by them.
var builtinPrefixes = []string{"logs", "metrics", "traces", "synthetics", "profiling"}

// ValidateIndexPrefix reports whether p can prefix index names: lower-case
// letters, digits, '_' and '-', starting with a letter or digit, at most
// maxIndexPrefix characters, and not one of the prefixes of Elastic's
// built-in data stream templates (logs, metrics, ...), alone or followed by
// a dash.
func ValidateIndexPrefix(p string) error {
	if len(p) > maxIndexPrefix {
		return fmt.Errorf("%w %q: longer than %d characters", ErrInvalidIndexPrefix, p, maxIndexPrefix)
	}
	if !indexPrefixRE.MatchString(p) {
		return fmt.Errorf("%w %q: must be lower-case letters, digits, '_' and '-', starting with a letter or digit", ErrInvalidIndexPrefix, p)
	}
	for _, b := range builtinPrefixes {
		if p == b || strings.HasPrefix(p, b+"-") {
			return fmt.Errorf("%w %q: Elastic's built-in %s-*-* template would capture its indices", ErrInvalidIndexPrefix, p, b)
		}
	}
	return nil
}

// dayLayout is the date part of an index name.
const dayLayout = "2006.01.02"

// namer picks the index of a document. Safe for concurrent use.
type namer struct {
	prefix string
	loc    *time.Location
	past   time.Duration // how far before the ingest time an event time may be
	ahead  time.Duration // and after
	routes routes        // each topic's layout and index family (layout.go)
}

// indexTime returns the time whose day (in n.loc) names the index of a
// document with event time event, read by the shipper (or router) at
// observed and produced to its parsed topic at produced (the Kafka record
// timestamp).
//
// The ingest time is observed, or produced when observed is missing or
// itself outside the window around produced. The event time picks the day
// when it lies within [ingest-past, ingest+ahead]; otherwise the ingest time
// does, and clamped is true. Measuring the window from the record's own
// ingest time rather than from the clock means that a record indexed again
// (a replay, a restart) always lands in the same index, so Elasticsearch
// recognises it as a duplicate.
func (n *namer) indexTime(event, observed, produced time.Time) (t time.Time, clamped bool) {
	ingest := observed
	if ingest.IsZero() || !within(ingest, produced, n.past, n.ahead) {
		ingest = produced
	}
	if event.IsZero() || !within(event, ingest, n.past, n.ahead) {
		return ingest, true
	}
	return event, false
}

func within(t, ref time.Time, past, ahead time.Duration) bool {
	return !t.Before(ref.Add(-past)) && !t.After(ref.Add(ahead))
}

// appendIndex appends the name of the index for tenant (SharedName for
// the shared indices) and dataset ("" for the main parsed topic) on the
// day of t.
func (n *namer) appendIndex(dst []byte, tenant, dataset string, t time.Time) []byte {
	dst = append(dst, n.prefix...)
	dst = append(dst, '-')
	dst = append(dst, tenant...)
	if dataset != "" {
		dst = append(dst, '.')
		dst = append(dst, dataset...)
	}
	dst = append(dst, '-')
	year, month, day := t.In(n.loc).Date()
	if year < 0 || year > 9999 {
		return t.In(n.loc).AppendFormat(dst, dayLayout)
	}
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '.')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '.')
	return appendDigits(dst, day, 2)
}

// IndexName returns the index name for tenant and dataset ("" for none)
// on the day of t in loc: <prefix>-<tenant>[.<dataset>]-YYYY.MM.DD.
func IndexName(prefix, tenant, dataset string, t time.Time, loc *time.Location) string {
	n := namer{prefix: prefix, loc: loc}
	return string(n.appendIndex(nil, tenant, dataset, t))
}

// SharedIndexName returns the name of the shared index for dataset ("" for
// none) on the day of t in loc: <prefix>-_shared[.<dataset>]-YYYY.MM.DD.
func SharedIndexName(prefix, dataset string, t time.Time, loc *time.Location) string {
	return IndexName(prefix, SharedName, dataset, t, loc)
}

// ParseIndexName reads an index name made by IndexName or SharedIndexName
// under prefix; tenant is SharedName for a shared index. ok is false for
// any other name, so that retention never touches an index Sluice did not
// make.
func ParseIndexName(prefix, name string) (tenant, dataset string, day time.Time, ok bool) {
	rest, ok := strings.CutPrefix(name, prefix+"-")
	if !ok || len(rest) < len("-"+dayLayout)+1 {
		return "", "", time.Time{}, false
	}
	cut := len(rest) - len(dayLayout)
	if rest[cut-1] != '-' {
		return "", "", time.Time{}, false
	}
	day, err := time.Parse(dayLayout, rest[cut:])
	if err != nil {
		return "", "", time.Time{}, false
	}
	tenant, dataset, hasDataset := strings.Cut(rest[:cut-1], ".")
	if (tenant != SharedName && kafka.ValidateTenant(tenant) != nil) || (hasDataset && kafka.ValidateDataset(dataset) != nil) {
		return "", "", time.Time{}, false
	}
	return tenant, dataset, day, true
}
