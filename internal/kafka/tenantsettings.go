package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The tenants topic, <prefix>.tenants.
//
// A tenant's index settings (its index layout and retention) are decided
// by the platform team, in a Tenant resource that sluice-controller
// reconciles. Indexers must learn them without a restart and without
// depending on the controller, so the controller publishes them to this
// compacted topic (PublishTenantSettings) and every indexer follows it
// from its start. Each record is one tenant's settings: the key is the
// tenant id, the value TenantSettings as JSON (Encode), a tombstone
// (DeleteTenantSettings) means the tenant has none any more and takes the
// indexers' defaults. Compaction keeps the latest record of each tenant, so
// reading the topic from its start to its end gives every tenant's current
// settings. Only administrators write it and indexers read it: it says
// something of every tenant, so no tenant may read or write it.

// TenantSettingsVersion is the format of the <prefix>.tenants records this
// build writes and reads: the value's "v". A reader refuses other versions
// rather than guess at them: a format that changes meaning gets a new one.
const TenantSettingsVersion = 1

// Values of TenantSettings.Layout: the index layouts of the indexer.
const (
	// TenantLayoutDefault leaves the tenant to the indexers' default
	// layout (SLUICE_INDEXER_LAYOUT).
	TenantLayoutDefault   = ""
	TenantLayoutDedicated = "dedicated"
	TenantLayoutShared    = "shared"
)

// MaxTenantRetentionDays bounds TenantSettings.RetentionDays (a hundred
// years): anything above is a mistake, not a policy.
const MaxTenantRetentionDays = 36500

// ErrInvalidTenantSettings is returned (wrapped) by TenantSettings.Validate,
// Encode and Decode.
var ErrInvalidTenantSettings = errors.New("invalid tenant settings")

// TenantSettings are a tenant's index settings, the value of its record in
// <prefix>.tenants:
//
//	{"v":1,"layout":"shared","retentionDays":30}
//
// An indexer applies them unless its own per-tenant settings
// (SLUICE_INDEXER_LAYOUT_OVERRIDES, SLUICE_INDEXER_RETENTION_OVERRIDES)
// name the tenant: the indexer operator's word wins.
type TenantSettings struct {
	// Layout is TenantLayoutDedicated, TenantLayoutShared or
	// TenantLayoutDefault ("": the indexers' default).
	Layout string
	// RetentionDays, when set, is how many days the tenant's dedicated
	// daily indices are kept (0: forever), as
	// SLUICE_INDEXER_RETENTION_OVERRIDES would say; nil takes the
	// indexers' default. The shared indices hold every shared tenant's
	// documents and always go by the indexers' default.
	RetentionDays *int
}

// Validate reports whether s can be published: a known layout, and days
// from 0 to MaxTenantRetentionDays.
func (s TenantSettings) Validate() error {
	var errs []error
	switch s.Layout {
	case TenantLayoutDefault, TenantLayoutDedicated, TenantLayoutShared:
	default:
		errs = append(errs, fmt.Errorf("%w: layout %q: want %q, %q or \"\" (the indexers' default)",
			ErrInvalidTenantSettings, s.Layout, TenantLayoutDedicated, TenantLayoutShared))
	}
	if d := s.RetentionDays; d != nil && (*d < 0 || *d > MaxTenantRetentionDays) {
		errs = append(errs, fmt.Errorf("%w: retentionDays %d: want 0 (keep forever) to %d, or null (the indexers' default)",
			ErrInvalidTenantSettings, *d, MaxTenantRetentionDays))
	}
	return errors.Join(errs...)
}

// Equal reports whether s and o say the same.
func (s TenantSettings) Equal(o TenantSettings) bool {
	if s.Layout != o.Layout || (s.RetentionDays == nil) != (o.RetentionDays == nil) {
		return false
	}
	return s.RetentionDays == nil || *s.RetentionDays == *o.RetentionDays
}

// tenantSettingsJSON is the record value as written: every field, always,
// so that a reader never has to guess what a missing one meant.
type tenantSettingsJSON struct {
	V             int    `json:"v"`
	Layout        string `json:"layout"`
	RetentionDays *int   `json:"retentionDays"`
}

// Encode returns the record value of s, after Validate.
func (s TenantSettings) Encode() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(tenantSettingsJSON{V: TenantSettingsVersion, Layout: s.Layout, RetentionDays: s.RetentionDays})
}

// Decode reads a record value into s, strictly: one JSON object with "v"
// equal to TenantSettingsVersion and, optionally, "layout" (a string or
// null) and "retentionDays" (a whole number or null), each once, spelt
// exactly so, nothing else, no trailing data, and values that pass
// Validate. The error names the problem. On error s is unchanged. A
// tombstone (nil value) is not settings: callers handle it before.
func (s *TenantSettings) Decode(value []byte) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidTenantSettings, fmt.Sprintf(format, args...))
	}
	if len(bytes.TrimSpace(value)) == 0 {
		return bad("empty value: want a JSON object such as {\"v\":%d,\"layout\":\"shared\",\"retentionDays\":null}", TenantSettingsVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("not a JSON object")
	}
	var (
		out     TenantSettings
		version *int
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("not JSON: %v", err)
		}
		key, _ := tok.(string) // object keys are strings
		if seen[key] {
			return bad("field %q appears twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad("not JSON: %v", err)
		}
		null := bytes.Equal(raw, []byte("null"))
		switch key {
		case "v":
			var v int
			if err := json.Unmarshal(raw, &v); err != nil || null {
				return bad("v %s: want the format version, a whole number", raw)
			}
			version = &v
		case "layout":
			if !null && json.Unmarshal(raw, &out.Layout) != nil {
				return bad("layout %s: want a string", raw)
			}
		case "retentionDays":
			if !null {
				var d int
				if err := json.Unmarshal(raw, &d); err != nil {
					return bad("retentionDays %s: want a whole number of days or null", raw)
				}
				out.RetentionDays = &d
			}
		default:
			return bad("unknown field %q (known: v, layout, retentionDays)", key)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return bad("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the JSON object")
	}
	switch {
	case version == nil:
		return bad("no \"v\": want the format version %d", TenantSettingsVersion)
	case *version != TenantSettingsVersion:
		return bad("format version %d: this build reads version %d", *version, TenantSettingsVersion)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*s = out
	return nil
}

// PublishTenantSettings writes the settings of tenant to t.Tenants() and
// waits until Kafka has them. The topic is created (compacted, one
// partition) when it does not exist and cl's principal may create it.
// Invalid settings or tenant ids are refused before anything is written.
// cl must not be transactional.
func PublishTenantSettings(ctx context.Context, cl *kgo.Client, t Topics, tenant string, s TenantSettings) error {
	if err := ValidateTenant(tenant); err != nil {
		return err
	}
	v, err := s.Encode()
	if err != nil {
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
	topic := t.Tenants()
	if err := ensureCompactedTopic(ctx, cl, topic); err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(tenant), Value: v}).FirstErr(); err != nil {
		return fmt.Errorf("publish the settings of tenant %s to %s: %w", tenant, topic, err)
	}
	return nil
}

// DeleteTenantSettings writes a tombstone for tenant to t.Tenants(), and
// waits until Kafka has it: indexers take their defaults for the tenant
// again. Without the topic there is nothing to delete, and nothing is
// done. cl must not be transactional.
func DeleteTenantSettings(ctx context.Context, cl *kgo.Client, t Topics, tenant string) error {
	if err := ValidateTenant(tenant); err != nil {
		return err
	}
	topic := t.Tenants()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	switch {
	case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return nil
	case d.Err != nil:
		return fmt.Errorf("describe topic %s: %w", topic, d.Err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(tenant)}).FirstErr(); err != nil {
		return fmt.Errorf("delete the settings of tenant %s from %s: %w", tenant, topic, err)
	}
	return nil
}
