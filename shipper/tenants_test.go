package shipper

import (
	"errors"
	"path"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/internal/kafka"
)

func TestParseTenantMap(t *testing.T) {
	tests := []struct {
		name  string
		rules []string
		want  []TenantRule
	}{
		{"none", nil, nil},
		{"one", []string{"payments=pay"}, []TenantRule{{"payments", "pay"}}},
		{"order kept", []string{"team-a-*=team-a", "team-*=shared", "payments=pay"},
			[]TenantRule{{"team-a-*", "team-a"}, {"team-*", "shared"}, {"payments", "pay"}}},
		{"globs", []string{"?-dev=dev", "[a-c]*=abc", "*=everyone", "prod-\\*=literal"},
			[]TenantRule{{"?-dev", "dev"}, {"[a-c]*", "abc"}, {"*", "everyone"}, {"prod-\\*", "literal"}}},
		{"space from a comma list", []string{" team-a-* = team-a", "payments=pay "},
			[]TenantRule{{"team-a-*", "team-a"}, {"payments", "pay"}}},
		{"empty rules skipped", []string{"", "payments=pay", "  "}, []TenantRule{{"payments", "pay"}}},
		{"dotted namespace glob", []string{"team.a=team-a"}, []TenantRule{{"team.a", "team-a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTenantMap(tt.rules)
			if err != nil {
				t.Fatalf("ParseTenantMap(%q): %v", tt.rules, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseTenantMap(%q) = %v, want %v", tt.rules, got, tt.want)
			}
		})
	}
}

func TestParseTenantMapErrors(t *testing.T) {
	tests := []struct {
		name     string
		rules    []string
		wantIs   error  // nil: only check the text
		wantText string // a part of the error text naming the rule
	}{
		{"no equals", []string{"payments"}, nil, `rule 1 "payments"`},
		{"empty glob", []string{"=pay"}, nil, `rule 1 "=pay"`},
		{"empty tenant", []string{"payments="}, kafka.ErrInvalidTenant, `rule 1 "payments="`},
		{"upper-case tenant", []string{"ok=fine", "payments=Pay"}, kafka.ErrInvalidTenant, `rule 2 "payments=Pay"`},
		{"dotted tenant", []string{"payments=pay.eu"}, kafka.ErrInvalidTenant, `"payments=pay.eu"`},
		{"underscore tenant", []string{"payments=pay_eu"}, kafka.ErrInvalidTenant, `"payments=pay_eu"`},
		{"tenant too long", []string{"payments=" + strings.Repeat("a", 64)}, kafka.ErrInvalidTenant, "rule 1"},
		{"two equals", []string{"a=b=c"}, kafka.ErrInvalidTenant, `"a=b=c"`},
		{"bad glob", []string{"team-[a=team-a"}, path.ErrBadPattern, `rule 1 "team-[a=team-a"`},
		{"trailing backslash", []string{"team\\=team"}, path.ErrBadPattern, "rule 1"},
		{"slash in glob", []string{"a/b=tenant"}, nil, `rule 1 "a/b=tenant"`},
		{"later rule at fault", []string{"a=a", "b=b", "c=C"}, kafka.ErrInvalidTenant, `rule 3 "c=C"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTenantMap(tt.rules)
			if err == nil {
				t.Fatalf("ParseTenantMap(%q) = %v, want an error", tt.rules, got)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not name %s", err, tt.wantText)
			}
			if got != nil {
				t.Errorf("rules %v returned with an error", got)
			}
		})
	}
}

func TestParseTenantMapJoinsErrors(t *testing.T) {
	_, err := ParseTenantMap([]string{"a=A", "ok=ok", "[=b"})
	if err == nil {
		t.Fatal("no error")
	}
	text := err.Error()
	if !strings.Contains(text, `rule 1 "a=A"`) || !strings.Contains(text, `rule 3 "[=b"`) || strings.Contains(text, "\n") {
		t.Errorf("error %q does not name both rules on one line", text)
	}
	if !errors.Is(err, kafka.ErrInvalidTenant) || !errors.Is(err, path.ErrBadPattern) {
		t.Errorf("error %q does not wrap both causes", text)
	}
}

func TestParseExclude(t *testing.T) {
	tests := []struct {
		name  string
		rules []string
		want  []ExcludeRule
	}{
		{"none", nil, nil},
		{"namespace and pod", []string{"kube-system/*"}, []ExcludeRule{{"kube-system", "*"}}},
		{"bare namespace", []string{"kube-system"}, []ExcludeRule{{"kube-system", "*"}}},
		{"pod glob", []string{"monitoring/prometheus-*", "*/debug-?"},
			[]ExcludeRule{{"monitoring", "prometheus-*"}, {"*", "debug-?"}}},
		{"space and empty rules", []string{" kube-system ", "", "monitoring/node-exporter-*"},
			[]ExcludeRule{{"kube-system", "*"}, {"monitoring", "node-exporter-*"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExclude(tt.rules)
			if err != nil {
				t.Fatalf("ParseExclude(%q): %v", tt.rules, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseExclude(%q) = %v, want %v", tt.rules, got, tt.want)
			}
		})
	}
}

func TestParseExcludeErrors(t *testing.T) {
	tests := []struct {
		name     string
		rules    []string
		wantText string
	}{
		{"empty namespace", []string{"/pod"}, `rule 1 "/pod"`},
		{"empty pod", []string{"ok", "kube-system/"}, `rule 2 "kube-system/"`},
		{"bad namespace glob", []string{"kube-[/x"}, "namespace glob"},
		{"bad pod glob", []string{"kube-system/x["}, "pod glob"},
		{"too many slashes", []string{"a/b/c"}, `rule 1 "a/b/c"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExclude(tt.rules)
			if err == nil {
				t.Fatalf("ParseExclude(%q) = %v, want an error", tt.rules, got)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not name %s", err, tt.wantText)
			}
		})
	}
}

func TestTenantMapper(t *testing.T) {
	rules, err := ParseTenantMap([]string{"team-a-*=team-a", "team-*=shared", "payments=pay", "legacy.apps=legacy"})
	if err != nil {
		t.Fatal(err)
	}
	excludes, err := ParseExclude([]string{"kube-system", "monitoring/node-exporter-*", "*/debug-?"})
	if err != nil {
		t.Fatal(err)
	}
	m := NewTenantMapper(rules, excludes)
	tests := []struct {
		name, namespace, pod string
		wantTenant           string
		wantOK               bool
		wantErr              error
	}{
		{"first rule", "team-a-prod", "web-0", "team-a", true, nil},
		{"first matching rule wins", "team-b", "web-0", "shared", true, nil},
		{"exact rule", "payments", "api-0", "pay", true, nil},
		{"rule for an invalid namespace", "legacy.apps", "x", "legacy", true, nil},
		{"no rule: namespace", "shop", "web-0", "shop", true, nil},
		{"excluded namespace", "kube-system", "coredns-abc", "", false, nil},
		{"excluded even when a rule would be invalid", "kube-system", "x", "", false, nil},
		{"excluded pod", "monitoring", "node-exporter-x2k9p", "", false, nil},
		{"other pod of the namespace", "monitoring", "prometheus-0", "monitoring", true, nil},
		{"excluded pod in any namespace", "team-a-prod", "debug-1", "", false, nil},
		{"pod glob is whole-name", "team-a-prod", "debug-12", "team-a", true, nil},
		{"invalid namespace without rule", "Shop", "web-0", "", false, kafka.ErrInvalidTenant},
		{"dotted namespace without rule", "shop.eu", "web-0", "", false, kafka.ErrInvalidTenant},
		{"empty namespace", "", "web-0", "", false, kafka.ErrInvalidTenant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, ok, err := m.Tenant(tt.namespace, tt.pod)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Tenant(%q, %q) error = %v, want %v", tt.namespace, tt.pod, err, tt.wantErr)
			}
			if tenant != tt.wantTenant || ok != tt.wantOK {
				t.Errorf("Tenant(%q, %q) = %q, %v, want %q, %v", tt.namespace, tt.pod, tenant, ok, tt.wantTenant, tt.wantOK)
			}
		})
	}
}

func TestTenantMapperHandBuiltRules(t *testing.T) {
	tests := []struct {
		name     string
		rules    []TenantRule
		excludes []ExcludeRule
		wantErr  error
	}{
		{"invalid tenant", []TenantRule{{"*", "Bad"}}, nil, kafka.ErrInvalidTenant},
		{"bad rule glob", []TenantRule{{"[", "t"}}, nil, path.ErrBadPattern},
		{"bad exclude namespace glob", nil, []ExcludeRule{{"[", "*"}}, path.ErrBadPattern},
		{"bad exclude pod glob", nil, []ExcludeRule{{"*", "["}}, path.ErrBadPattern},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant, ok, err := NewTenantMapper(tt.rules, tt.excludes).Tenant("shop", "web-0")
			if !errors.Is(err, tt.wantErr) || tenant != "" || ok {
				t.Errorf("Tenant = %q, %v, %v; want error wrapping %v", tenant, ok, err, tt.wantErr)
			}
		})
	}
}

func TestTenantMapperCopiesRules(t *testing.T) {
	rules := []TenantRule{{"shop", "a"}}
	m := NewTenantMapper(rules, nil)
	rules[0].Tenant = "b"
	if tenant, _, _ := m.Tenant("shop", "web-0"); tenant != "a" {
		t.Errorf("tenant = %q after the caller changed its slice, want a", tenant)
	}
}

func FuzzParseTenantMap(f *testing.F) {
	f.Add("team-a-*=team-a,team-*=shared,payments=pay")
	f.Add(" a = b ,,")
	f.Add("[=x,a=B,a/b=c")
	f.Add("x\\")
	f.Fuzz(func(t *testing.T, list string) {
		rules := strings.Split(list, ",")
		got, err := ParseTenantMap(rules)
		if err != nil {
			if got != nil {
				t.Fatalf("rules %v returned with error %v", got, err)
			}
			return
		}
		if len(got) > len(rules) {
			t.Fatalf("%d rules from %d inputs", len(got), len(rules))
		}
		again := make([]string, len(got))
		for i, r := range got {
			if err := kafka.ValidateTenant(r.Tenant); err != nil {
				t.Fatalf("rule %v: %v", r, err)
			}
			if _, err := path.Match(r.Namespace, ""); err != nil || r.Namespace == "" {
				t.Fatalf("rule %v: bad glob: %v", r, err)
			}
			again[i] = r.Namespace + "=" + r.Tenant
		}
		// The parsed rules, written back, parse to themselves.
		got2, err := ParseTenantMap(again)
		if err != nil || !reflect.DeepEqual(got, got2) {
			t.Fatalf("rules %v written back parse to %v, %v", got, got2, err)
		}
		// Every rule's namespace glob, used as a namespace, is mapped without panic.
		m := NewTenantMapper(got, nil)
		for _, r := range got {
			if _, _, err := m.Tenant(r.Namespace, "pod"); err != nil && !errors.Is(err, kafka.ErrInvalidTenant) {
				t.Fatalf("Tenant(%q): %v", r.Namespace, err)
			}
		}
	})
}
