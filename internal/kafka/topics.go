package kafka

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Kinds of per-tenant topics, the element after the prefix.
const (
	KindRaw    = "raw"    // <prefix>.raw.<tenant>: lines from shippers and external producers
	KindParsed = "parsed" // <prefix>.parsed.<tenant>[.<dataset>]: router output
	KindDLQ    = "dlq"    // <prefix>.dlq.<tenant>: records that could not be processed or indexed
	KindConfig = "config" // <prefix>.config.<tenant>: the tenant's pipeline, written by the tenant
	KindStatus = "status" // <prefix>.status.<tenant>: routers' status of the tenant, read by the tenant
	// KindSchemas is not per tenant: <prefix>.schemas holds the record
	// schema versions writers embed (see Topics.Schemas).
	KindSchemas = "schemas"
	// KindTenants is not per tenant: <prefix>.tenants holds every tenant's
	// index settings (see Topics.Tenants).
	KindTenants = "tenants"
)

// ErrInvalidPrefix is returned (wrapped) by ValidatePrefix.
var ErrInvalidPrefix = errors.New("invalid topic prefix")

// ErrInvalidDataset is returned (wrapped) by ValidateDataset.
var ErrInvalidDataset = errors.New("invalid dataset name")

const (
	// maxTopicLen is Kafka's limit on topic name length.
	maxTopicLen = 249
	// maxIDLen is the longest tenant id or dataset name.
	maxIDLen = 63
	// MaxPrefixLen is the longest prefix with which every Sluice topic name,
	// the longest being <prefix>.parsed.<tenant>.<dataset>, stays within
	// Kafka's 249 characters.
	MaxPrefixLen = maxTopicLen - len(".parsed.") - maxIDLen - len(".") - maxIDLen
)

// prefixRE allows Kafka's topic characters in dot-separated, non-empty
// elements: no leading, trailing or doubled dot.
var prefixRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*$`)

// idPattern is the tenant id and dataset name syntax (see tenantRE), without
// anchors, for building topic regexps.
const idPattern = `[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?`

// ValidatePrefix reports whether p can be a topic prefix: 1 to MaxPrefixLen
// characters of a-z, A-Z, 0-9, '.', '_' and '-', with no leading, trailing or
// doubled dot.
func ValidatePrefix(p string) error {
	if len(p) > MaxPrefixLen {
		return fmt.Errorf("%w %q: longer than %d characters", ErrInvalidPrefix, p, MaxPrefixLen)
	}
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("%w %q: must be dot-separated non-empty elements of a-z, A-Z, 0-9, '_' and '-'", ErrInvalidPrefix, p)
	}
	return nil
}

// ValidateDataset reports whether s is a valid dataset name: what a route
// names, the suffix of its parsed topic <prefix>.parsed.<tenant>.<dataset>
// and of its indices <prefix>-<tenant>.<dataset>-YYYY.MM.DD. The rule is
// the tenant id rule, for the same reasons: no dots, so that a topic name
// parses back unambiguously, and no underscores, which Kafka treats as
// colliding with dots.
func ValidateDataset(s string) error {
	if !tenantRE.MatchString(s) {
		return fmt.Errorf("%w %q: must be 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit", ErrInvalidDataset, s)
	}
	return nil
}

// Topics names Sluice's topics under one prefix: <prefix>.raw.<tenant> (what
// shippers and external producers write), <prefix>.parsed.<tenant>[.<dataset>]
// (what the router writes), <prefix>.dlq.<tenant> (dead letters),
// <prefix>.config.<tenant> (the tenant's pipeline, written by the tenant),
// <prefix>.status.<tenant> (routers' status of the tenant, for the tenant to
// read), <prefix>.status (every router's status and the routers' shared
// pipeline state, for routers and operators), <prefix>.schemas (the record
// schema versions writers use, for every reader), <prefix>.tenants (every
// tenant's index settings, written by administrators, read by indexers) and
// <prefix>.config (the legacy topic of every tenant's pipeline, read-only).
// The name methods do not validate their arguments: validate the prefix once with
// ValidatePrefix (Config.Validate does) and tenant ids and dataset names where
// they enter the system.
type Topics struct {
	Prefix string
}

// Raw returns <prefix>.raw.<tenant>, where shippers and external producers
// write.
func (t Topics) Raw(tenant string) string { return t.Prefix + "." + KindRaw + "." + tenant }

// Parsed returns <prefix>.parsed.<tenant>, the router's default output.
func (t Topics) Parsed(tenant string) string { return t.Prefix + "." + KindParsed + "." + tenant }

// ParsedDataset returns <prefix>.parsed.<tenant>.<dataset>, the output of
// a tenant's route to dataset.
func (t Topics) ParsedDataset(tenant, dataset string) string {
	return t.Parsed(tenant) + "." + dataset
}

// DLQ returns <prefix>.dlq.<tenant>, the tenant's dead-letter topic.
func (t Topics) DLQ(tenant string) string { return t.Prefix + "." + KindDLQ + "." + tenant }

// Config returns <prefix>.config, the legacy compacted topic holding every
// tenant's pipeline under the tenant's key. Routers still read it, for
// tenants that have not stored a pipeline in their own TenantConfig topic;
// nothing writes it any more.
func (t Topics) Config() string { return t.Prefix + ".config" }

// TenantConfig returns <prefix>.config.<tenant>, the compacted topic of the
// tenant's pipeline, which only the tenant (and administrators) may write.
func (t Topics) TenantConfig(tenant string) string {
	return t.Prefix + "." + KindConfig + "." + tenant
}

// Status returns <prefix>.status, the compacted topic of every router's
// status of every tenant and of the routers' shared pipeline state (last
// good and retired versions). Only routers write it; tenants cannot read it.
func (t Topics) Status() string { return t.Prefix + "." + KindStatus }

// TenantStatus returns <prefix>.status.<tenant>, the compacted topic where
// routers publish their status of the tenant for the tenant to read.
func (t Topics) TenantStatus(tenant string) string {
	return t.Prefix + "." + KindStatus + "." + tenant
}

// Schemas returns <prefix>.schemas, the compacted topic where the stages
// that write records publish every LogRecord schema version they embed
// (PublishSchemas), keyed by fingerprint, so that readers built before a
// version existed can still decode it (SchemaSource). Everyone who reads
// records may read it, tenants included.
func (t Topics) Schemas() string { return t.Prefix + "." + KindSchemas }

// Tenants returns <prefix>.tenants, the compacted topic of every tenant's
// index settings (TenantSettings), keyed by tenant id: written by
// administrators (sluice-controller, through PublishTenantSettings), read
// by indexers. No tenant may read or write it (TenantACLRules): it holds
// every tenant's settings.
func (t Topics) Tenants() string { return t.Prefix + "." + KindTenants }

// TenantOf parses a per-tenant topic name under t.Prefix. kind is KindRaw,
// KindParsed, KindDLQ, KindConfig or KindStatus; dataset is set only for a
// dataset's parsed topic. ok is false for any other topic, including
// Config(), Status(), Schemas(), Tenants() and names whose tenant id or
// dataset name is invalid.
func (t Topics) TenantOf(topic string) (tenant, kind, dataset string, ok bool) {
	rest, ok := strings.CutPrefix(topic, t.Prefix+".")
	if !ok || t.Prefix == "" {
		return "", "", "", false
	}
	kind, rest, ok = strings.Cut(rest, ".")
	if !ok {
		return "", "", "", false
	}
	switch kind {
	case KindRaw, KindDLQ, KindConfig, KindStatus:
		tenant = rest
	case KindParsed:
		var hasDataset bool
		tenant, dataset, hasDataset = strings.Cut(rest, ".")
		if hasDataset && ValidateDataset(dataset) != nil {
			return "", "", "", false
		}
	default:
		return "", "", "", false
	}
	if ValidateTenant(tenant) != nil {
		return "", "", "", false
	}
	return tenant, kind, dataset, true
}

// Pattern returns an anchored regular expression matching every tenant's
// topics of kind, for kgo.ConsumeRegex (KindConfig: every
// <prefix>.config.<tenant>, not the legacy <prefix>.config): KindParsed matches both
// <prefix>.parsed.<tenant> and <prefix>.parsed.<tenant>.<dataset>. It returns
// "" for an unknown kind.
func (t Topics) Pattern(kind string) string {
	p := `^` + regexp.QuoteMeta(t.Prefix) + `\.`
	switch kind {
	case KindRaw, KindDLQ, KindConfig, KindStatus:
		return p + kind + `\.` + idPattern + `$`
	case KindParsed:
		return p + kind + `\.` + idPattern + `(?:\.` + idPattern + `)?$`
	}
	return ""
}
