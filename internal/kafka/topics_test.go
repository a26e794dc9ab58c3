package kafka

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestTopicNames(t *testing.T) {
	tests := []struct {
		prefix                               string
		raw, parsed, dataset, dlq, configTop string
		statusTop                            string
	}{
		{"logs", "logs.raw.acme", "logs.parsed.acme", "logs.parsed.acme.audit", "logs.dlq.acme", "logs.config", "logs.status"},
		{"prod.sluice", "prod.sluice.raw.acme", "prod.sluice.parsed.acme", "prod.sluice.parsed.acme.audit", "prod.sluice.dlq.acme", "prod.sluice.config", "prod.sluice.status"},
	}
	for _, tt := range tests {
		tp := Topics{Prefix: tt.prefix}
		for _, c := range []struct{ got, want string }{
			{tp.Raw("acme"), tt.raw},
			{tp.Parsed("acme"), tt.parsed},
			{tp.ParsedDataset("acme", "audit"), tt.dataset},
			{tp.DLQ("acme"), tt.dlq},
			{tp.Config(), tt.configTop},
			{tp.TenantConfig("acme"), tt.configTop + ".acme"},
			{tp.Status(), tt.statusTop},
			{tp.TenantStatus("acme"), tt.statusTop + ".acme"},
			{tp.Tenants(), tt.prefix + ".tenants"},
		} {
			if c.got != c.want {
				t.Errorf("prefix %q: got %q, want %q", tt.prefix, c.got, c.want)
			}
		}
	}
}

func TestTenantOf(t *testing.T) {
	tp := Topics{Prefix: "logs"}
	tests := []struct {
		topic                 string
		tenant, kind, dataset string
		ok                    bool
	}{
		{"logs.raw.acme", "acme", KindRaw, "", true},
		{"logs.parsed.acme", "acme", KindParsed, "", true},
		{"logs.parsed.acme.audit", "acme", KindParsed, "audit", true},
		{"logs.dlq.team-7", "team-7", KindDLQ, "", true},
		{"logs.config", "", "", "", false},
		{"logs.status", "", "", "", false},
		{"logs.schemas", "", "", "", false},
		{"logs.tenants", "", "", "", false},
		{"logs.tenants.acme", "", "", "", false},
		{"logs.config.acme", "acme", KindConfig, "", true},
		{"logs.status.acme", "acme", KindStatus, "", true},
		{"logs.config.acme.x", "", "", "", false},
		{"logs.raw.", "", "", "", false},
		{"logs.raw", "", "", "", false},
		{"logs.raw.acme.x", "", "", "", false}, // raw topics have no dataset
		{"logs.dlq.acme.x", "", "", "", false},
		{"logs.parsed.acme.", "", "", "", false},
		{"logs.parsed.acme.a.b", "", "", "", false},
		{"logs.parsed.Acme", "", "", "", false},
		{"logs.raw.a_b", "", "", "", false},
		{"logs.other.acme", "", "", "", false},
		{"logsx.raw.acme", "", "", "", false},
		{"other.raw.acme", "", "", "", false},
		{"__consumer_offsets", "", "", "", false},
		{"", "", "", "", false},
	}
	for _, tt := range tests {
		tenant, kind, dataset, ok := tp.TenantOf(tt.topic)
		if tenant != tt.tenant || kind != tt.kind || dataset != tt.dataset || ok != tt.ok {
			t.Errorf("TenantOf(%q) = %q, %q, %q, %v; want %q, %q, %q, %v",
				tt.topic, tenant, kind, dataset, ok, tt.tenant, tt.kind, tt.dataset, tt.ok)
		}
	}
	if _, _, _, ok := (Topics{}).TenantOf(".raw.acme"); ok {
		t.Error("empty prefix parsed a topic")
	}
}

func TestTenantOfRoundTrip(t *testing.T) {
	for _, prefix := range []string{"logs", "a.b-c_d", strings.Repeat("p", MaxPrefixLen)} {
		tp := Topics{Prefix: prefix}
		for _, tenant := range []string{"a", "acme", "team-7", strings.Repeat("t", 63)} {
			for _, c := range []struct{ topic, kind, dataset string }{
				{tp.Raw(tenant), KindRaw, ""},
				{tp.Parsed(tenant), KindParsed, ""},
				{tp.ParsedDataset(tenant, "s-1"), KindParsed, "s-1"},
				{tp.ParsedDataset(tenant, strings.Repeat("s", 63)), KindParsed, strings.Repeat("s", 63)},
				{tp.DLQ(tenant), KindDLQ, ""},
				{tp.TenantConfig(tenant), KindConfig, ""},
				{tp.TenantStatus(tenant), KindStatus, ""},
			} {
				if len(c.topic) > maxTopicLen {
					t.Errorf("%q is longer than Kafka's %d", c.topic, maxTopicLen)
				}
				gotT, gotK, gotD, ok := tp.TenantOf(c.topic)
				if !ok || gotT != tenant || gotK != c.kind || gotD != c.dataset {
					t.Errorf("TenantOf(%q) = %q, %q, %q, %v", c.topic, gotT, gotK, gotD, ok)
				}
				if !regexp.MustCompile(tp.Pattern(c.kind)).MatchString(c.topic) {
					t.Errorf("Pattern(%s) = %q does not match %q", c.kind, tp.Pattern(c.kind), c.topic)
				}
			}
		}
	}
}

func TestPattern(t *testing.T) {
	tp := Topics{Prefix: "a.b"}
	tests := []struct {
		kind  string
		topic string
		match bool
	}{
		{KindRaw, "a.b.raw.acme", true},
		{KindRaw, "axb.raw.acme", false}, // the dot in the prefix is literal
		{KindRaw, "a.b.raw.acme.x", false},
		{KindRaw, "x.a.b.raw.acme", false},
		{KindRaw, "a.b.parsed.acme", false},
		{KindParsed, "a.b.parsed.acme", true},
		{KindParsed, "a.b.parsed.acme.audit", true},
		{KindParsed, "a.b.parsed.acme.audit.x", false},
		{KindParsed, "a.b.parsed.-acme", false},
		{KindDLQ, "a.b.dlq.acme", true},
		{KindDLQ, "a.b.config", false},
		{KindConfig, "a.b.config", false}, // the legacy topic is no tenant's
		{KindConfig, "a.b.config.acme", true},
		{KindConfig, "a.b.config.acme.x", false},
		{KindStatus, "a.b.status", false},
		{KindStatus, "a.b.status.acme", true},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(tp.Pattern(tt.kind))
		if got := re.MatchString(tt.topic); got != tt.match {
			t.Errorf("Pattern(%s) %q matching %q = %v, want %v", tt.kind, re, tt.topic, got, tt.match)
		}
	}
	if p := tp.Pattern("other"); p != "" {
		t.Errorf("Pattern(other) = %q, want empty", p)
	}
}

func TestValidatePrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"logs", true},
		{"prod.logs", true},
		{"Team_A-logs.v2", true},
		{strings.Repeat("x", MaxPrefixLen), true},
		{strings.Repeat("x", MaxPrefixLen+1), false},
		{"", false},
		{".logs", false},
		{"logs.", false},
		{"a..b", false},
		{".", false},
		{"logs/raw", false},
		{"logs raw", false},
		{"lögs", false},
	}
	for _, tt := range tests {
		err := ValidatePrefix(tt.prefix)
		if (err == nil) != tt.ok {
			t.Errorf("ValidatePrefix(%q) = %v, want ok %v", tt.prefix, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidPrefix) {
			t.Errorf("ValidatePrefix(%q) error %v is not ErrInvalidPrefix", tt.prefix, err)
		}
	}
}

func TestValidateDataset(t *testing.T) {
	for _, s := range []string{"audit", "a", "a-1", strings.Repeat("s", 63)} {
		if err := ValidateDataset(s); err != nil {
			t.Errorf("ValidateDataset(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "a.b", "a_b", "-a", "a-", "A", strings.Repeat("s", 64)} {
		if err := ValidateDataset(s); !errors.Is(err, ErrInvalidDataset) {
			t.Errorf("ValidateDataset(%q) = %v, want ErrInvalidDataset", s, err)
		}
	}
}

func TestMembership(t *testing.T) {
	if Membership("") != nil {
		t.Error("no id should mean dynamic membership")
	}
	if len(Membership("indexer-0")) != 1 {
		t.Error("an id should mean static membership")
	}
}
