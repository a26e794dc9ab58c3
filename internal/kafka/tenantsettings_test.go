package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafkatest"
)

func days(n int) *int { return &n }

// TestTenantSettingsRoundTrip: what Encode writes, Decode reads back the
// same; every field is written, null included.
func TestTenantSettingsRoundTrip(t *testing.T) {
	for _, s := range []TenantSettings{
		{},
		{Layout: TenantLayoutShared},
		{Layout: TenantLayoutDedicated, RetentionDays: days(30)},
		{RetentionDays: days(0)},
		{Layout: TenantLayoutDedicated, RetentionDays: days(MaxTenantRetentionDays)},
	} {
		b, err := s.Encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", s, err)
		}
		if !strings.HasPrefix(string(b), `{"v":1,"layout":`) || !strings.Contains(string(b), `"retentionDays":`) {
			t.Errorf("encoded %s: want every field", b)
		}
		var got TenantSettings
		if err := got.Decode(b); err != nil || !got.Equal(s) {
			t.Errorf("decode %s: %+v %v, want %+v", b, got, err, s)
		}
	}
	if b, _ := (TenantSettings{Layout: "shared"}).Encode(); string(b) != `{"v":1,"layout":"shared","retentionDays":null}` {
		t.Errorf("encoded %s", b)
	}
}

// TestTenantSettingsDecode: what is accepted, and that every refusal says
// what is wrong and leaves the settings as they were.
func TestTenantSettingsDecode(t *testing.T) {
	for in, want := range map[string]TenantSettings{
		`{"v":1}`: {},
		`{"v":1,"layout":"dedicated","retentionDays":7}`:      {Layout: "dedicated", RetentionDays: days(7)},
		` {"retentionDays":null,"layout":null,"v":1} ` + "\n": {},
		`{"v":1,"layout":"","retentionDays":0}`:               {RetentionDays: days(0)},
	} {
		var got TenantSettings
		if err := got.Decode([]byte(in)); err != nil || !got.Equal(want) {
			t.Errorf("%s: %+v %v, want %+v", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		``:                                  "empty value",
		`   `:                               "empty value",
		`null`:                              "not a JSON object",
		`[1]`:                               "not a JSON object",
		`"shared"`:                          "not a JSON object",
		`{"v":1,"layout":"shared"`:          "not JSON",
		`{"v":1,"layout":"shared",}`:        "not JSON",
		`{"v":1}{"v":1}`:                    "data after",
		`{"v":1} x`:                         "data after",
		`{"layout":"shared"}`:               `no "v"`,
		`{"v":2,"layout":"shared"}`:         "format version 2",
		`{"v":null}`:                        "v null",
		`{"v":"1"}`:                         `v "1"`,
		`{"v":1.5}`:                         "v 1.5",
		`{"v":1,"layout":"pooled"}`:         `layout "pooled"`,
		`{"v":1,"layout":"Shared"}`:         `layout "Shared"`,
		`{"v":1,"layout":3}`:                "layout 3",
		`{"v":1,"retentionDays":-1}`:        "retentionDays -1",
		`{"v":1,"retentionDays":36501}`:     "retentionDays 36501",
		`{"v":1,"retentionDays":1.5}`:       "retentionDays 1.5",
		`{"v":1,"retentionDays":"7"}`:       `retentionDays "7"`,
		`{"v":1,"retentionDays":1e99}`:      "retentionDays 1e99",
		`{"v":1,"Layout":"shared"}`:         `unknown field "Layout"`,
		`{"v":1,"retention_days":7}`:        `unknown field "retention_days"`,
		`{"v":1,"layout":"shared","v":1}`:   `"v" appears twice`,
		`{"v":1,"layout":"a","layout":"b"}`: `"layout" appears twice`,
	} {
		before := TenantSettings{Layout: TenantLayoutShared, RetentionDays: days(3)}
		got := before
		err := got.Decode([]byte(in))
		if err == nil || !errors.Is(err, ErrInvalidTenantSettings) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one saying %q", in, err, want)
		}
		if !got.Equal(before) {
			t.Errorf("%q: settings changed to %+v by a refused record", in, got)
		}
	}
	for _, s := range []TenantSettings{{Layout: "pooled"}, {RetentionDays: days(-1)}} {
		if _, err := s.Encode(); !errors.Is(err, ErrInvalidTenantSettings) {
			t.Errorf("encode %+v: %v, want ErrInvalidTenantSettings", s, err)
		}
	}
}

// FuzzTenantSettingsDecode: Decode never panics, and what it accepts is
// valid and survives Encode and Decode unchanged.
func FuzzTenantSettingsDecode(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"layout":"shared","retentionDays":null}`, `{"v":1,"layout":"dedicated","retentionDays":30}`,
		`{"v":1}`, `{"v":2}`, `{"v":1,"retentionDays":-1}`, `{"v":1,"x":{}}`, `{"v":1}{}`, `null`, ``, `{"v":1,"layout":"\u0073hared"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var s TenantSettings
		if err := s.Decode(in); err != nil {
			if !errors.Is(err, ErrInvalidTenantSettings) {
				t.Fatalf("%q: error %v does not wrap ErrInvalidTenantSettings", in, err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("%q decoded to invalid %+v: %v", in, s, err)
		}
		b, err := s.Encode()
		if err != nil {
			t.Fatalf("%q: encode %+v: %v", in, s, err)
		}
		var again TenantSettings
		if err := again.Decode(b); err != nil || !again.Equal(s) {
			t.Fatalf("%q: %+v encoded as %s decodes to %+v, %v", in, s, b, again, err)
		}
	})
}

// TestPublishTenantSettings: publishing makes the compacted topic and
// writes one record per tenant, keyed by tenant id; deleting writes a
// tombstone; invalid settings and tenant ids are refused before anything
// is written; deleting without the topic does nothing.
func TestPublishTenantSettings(t *testing.T) {
	c := kafkatest.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := kafkatest.Client(t, c, kgo.MetadataMinAge(50*time.Millisecond))
	topics := Topics{Prefix: "logs"}
	if topics.Tenants() != "logs.tenants" {
		t.Fatalf("Tenants() = %s", topics.Tenants())
	}

	if err := DeleteTenantSettings(ctx, cl, topics, "shop"); err != nil {
		t.Fatalf("delete without the topic: %v", err)
	}
	if err := PublishTenantSettings(ctx, cl, topics, "shop", TenantSettings{Layout: "pooled"}); !errors.Is(err, ErrInvalidTenantSettings) {
		t.Fatalf("invalid settings: %v", err)
	}
	if err := PublishTenantSettings(ctx, cl, topics, "Shop", TenantSettings{}); !errors.Is(err, ErrInvalidTenant) {
		t.Fatalf("invalid tenant: %v", err)
	}
	adm := kadm.NewClient(cl)
	if details, err := adm.ListTopics(ctx, topics.Tenants()); err != nil || details[topics.Tenants()].Err == nil {
		t.Fatalf("the topic was made by refused calls: %v %v", details, err)
	}

	if err := PublishTenantSettings(ctx, cl, topics, "shop", TenantSettings{Layout: TenantLayoutShared}); err != nil {
		t.Fatal(err)
	}
	if err := PublishTenantSettings(ctx, cl, topics, "big", TenantSettings{Layout: TenantLayoutDedicated, RetentionDays: days(90)}); err != nil {
		t.Fatal(err)
	}
	if err := DeleteTenantSettings(ctx, cl, topics, "shop"); err != nil {
		t.Fatal(err)
	}
	if err := DeleteTenantSettings(ctx, cl, topics, "Shop"); !errors.Is(err, ErrInvalidTenant) {
		t.Fatalf("delete of an invalid tenant: %v", err)
	}

	details, err := adm.ListTopics(ctx, topics.Tenants())
	if err != nil || details[topics.Tenants()].Err != nil || len(details[topics.Tenants()].Partitions) != 1 {
		t.Fatalf("topic %+v %v, want one partition", details, err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, topics.Tenants())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On(topics.Tenants(), nil)
	if err != nil {
		t.Fatal(err)
	}
	compacted := false
	for _, c := range cfg.Configs {
		compacted = compacted || (c.Key == "cleanup.policy" && c.MaybeValue() == "compact")
	}
	if !compacted {
		t.Errorf("%s is not compacted: %+v", topics.Tenants(), cfg.Configs)
	}

	recs := kafkatest.ReadAll(t, c, 60*time.Second, topics.Tenants())
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	var got []string
	for _, r := range recs {
		v := "<tombstone>"
		if r.Value != nil {
			var s TenantSettings
			if err := s.Decode(r.Value); err != nil {
				t.Fatalf("record of %s: %v", r.Key, err)
			}
			v = string(r.Value)
		}
		got = append(got, string(r.Key)+"="+v)
	}
	want := []string{
		`shop={"v":1,"layout":"shared","retentionDays":null}`,
		`big={"v":1,"layout":"dedicated","retentionDays":90}`,
		`shop=<tombstone>`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTenantACLsKeepOffTenantsTopic: no rule of a tenant's user matches
// <prefix>.tenants, whatever the tenant's name: a tenant must not change
// its own index settings (its layout decides what isolates it, its
// retention what the platform keeps), nor read any other tenant's.
func TestTenantACLsKeepOffTenantsTopic(t *testing.T) {
	for _, prefix := range []string{"logs", "prod.sluice"} {
		tp := Topics{Prefix: prefix}
		for _, tenant := range []string{"shop", "tenants", "t", "config", "parsed", "x-tenants"} {
			for _, r := range TenantACLRules(tp, tenant) {
				if r.Resource != "topic" {
					continue
				}
				if r.Name == tp.Tenants() || (r.Prefixed && strings.HasPrefix(tp.Tenants(), r.Name)) {
					t.Errorf("prefix %s, tenant %s: rule %+v grants %v on %s", prefix, tenant, r, r.Operations, tp.Tenants())
				}
			}
		}
	}
}
