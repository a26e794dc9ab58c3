package shipper

import (
	"fmt"
	"path"
	"strings"

	"github.com/sluicelogs/sluice/internal/kafka"
)

// TenantRule maps namespaces matching a glob (path.Match syntax) to a tenant.
type TenantRule struct{ Namespace, Tenant string }

// ParseTenantMap parses ordered rules "glob=tenant", as go-envconfig yields
// them from SLUICE_SHIPPER_TENANT_MAP split on commas. Space around a rule and
// around its two sides is ignored, and so are empty rules (a trailing comma).
// Every glob must be a valid path.Match pattern without '/', and every tenant
// must pass kafka.ValidateTenant. The error names each rule at fault, by
// position and text, and joins all problems; for a bad tenant it wraps
// kafka.ErrInvalidTenant, for a bad glob path.ErrBadPattern.
func ParseTenantMap(rules []string) ([]TenantRule, error) {
	var out []TenantRule
	var errs []error
	for i, rule := range rules {
		rule = strings.TrimSpace(rule)
		if rule == "" {
			continue
		}
		glob, tenant, ok := strings.Cut(rule, "=")
		glob, tenant = strings.TrimSpace(glob), strings.TrimSpace(tenant)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("tenant map rule %d %q: want <namespace glob>=<tenant>", i+1, rule))
			continue
		case glob == "":
			errs = append(errs, fmt.Errorf("tenant map rule %d %q: empty namespace glob", i+1, rule))
			continue
		}
		bad := false
		if err := checkNameGlob(glob); err != nil {
			errs = append(errs, fmt.Errorf("tenant map rule %d %q: namespace glob: %w", i+1, rule, err))
			bad = true
		}
		if err := kafka.ValidateTenant(tenant); err != nil {
			errs = append(errs, fmt.Errorf("tenant map rule %d %q: %w", i+1, rule, err))
			bad = true
		}
		if !bad {
			out = append(out, TenantRule{Namespace: glob, Tenant: tenant})
		}
	}
	if len(errs) > 0 {
		return nil, joinRuleErrors(errs)
	}
	return out, nil
}

// ExcludeRule skips containers whose namespace and pod match the globs
// (path.Match syntax).
type ExcludeRule struct{ Namespace, Pod string }

// ParseExclude parses rules "namespace-glob/pod-glob", such as "kube-system/*"
// or "monitoring/node-exporter-*"; a bare "kube-system" means
// "kube-system/*". Space around a rule is ignored, and so are empty rules.
// Both globs must be non-empty valid path.Match patterns. The error names each
// rule at fault and joins all problems.
func ParseExclude(rules []string) ([]ExcludeRule, error) {
	var out []ExcludeRule
	var errs []error
	for i, rule := range rules {
		rule = strings.TrimSpace(rule)
		if rule == "" {
			continue
		}
		ns, pod, ok := strings.Cut(rule, "/")
		if !ok {
			pod = "*"
		}
		ns, pod = strings.TrimSpace(ns), strings.TrimSpace(pod)
		if ns == "" || pod == "" {
			errs = append(errs, fmt.Errorf("exclude rule %d %q: want <namespace glob>[/<pod glob>]", i+1, rule))
			continue
		}
		bad := false
		if err := checkNameGlob(ns); err != nil {
			errs = append(errs, fmt.Errorf("exclude rule %d %q: namespace glob: %w", i+1, rule, err))
			bad = true
		}
		if err := checkNameGlob(pod); err != nil {
			errs = append(errs, fmt.Errorf("exclude rule %d %q: pod glob: %w", i+1, rule, err))
			bad = true
		}
		if !bad {
			out = append(out, ExcludeRule{Namespace: ns, Pod: pod})
		}
	}
	if len(errs) > 0 {
		return nil, joinRuleErrors(errs)
	}
	return out, nil
}

// checkNameGlob returns an error unless g is a valid path.Match pattern for a
// single name: path.Match checks the whole pattern even when the name does not
// match, and namespace and pod names never hold '/', so a glob with one could
// never match.
func checkNameGlob(g string) error {
	if strings.Contains(g, "/") {
		return fmt.Errorf("%q holds '/', which no name holds", g)
	}
	if _, err := path.Match(g, ""); err != nil {
		return fmt.Errorf("%q: %w", g, err)
	}
	return nil
}

// joinRuleErrors joins errs like errors.Join, but with "; " between them, so
// that a config error stays one line in a log.
func joinRuleErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return &ruleErrors{errs: errs}
}

type ruleErrors struct{ errs []error }

func (e *ruleErrors) Error() string {
	var b strings.Builder
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *ruleErrors) Unwrap() []error { return e.errs }

// TenantMapper decides the tenant of a container from its namespace and pod.
// It holds no state beyond its rules and is safe for concurrent use.
type TenantMapper struct {
	rules    []TenantRule
	excludes []ExcludeRule
}

// NewTenantMapper returns a mapper over the rules, tried in order, and the
// exclusions. It copies both slices. Rules and exclusions are expected to come
// from ParseTenantMap and ParseExclude; any that were not are checked by
// Tenant when they are consulted.
func NewTenantMapper(rules []TenantRule, excludes []ExcludeRule) *TenantMapper {
	return &TenantMapper{
		rules:    append([]TenantRule(nil), rules...),
		excludes: append([]ExcludeRule(nil), excludes...),
	}
}

// Tenant returns the tenant for a container. Exclusions come first: ok=false
// (with a nil error) means the container is excluded and not shipped. Then the
// first rule whose glob matches namespace wins; without a match the tenant is
// the namespace itself. A resulting tenant that is not a valid tenant id (for
// example a namespace with a '.' when no rule matches) is an error wrapping
// kafka.ErrInvalidTenant; a malformed glob of a hand-built rule is an error
// wrapping path.ErrBadPattern. On error tenant is "" and ok is false: check
// err first.
func (m *TenantMapper) Tenant(namespace, pod string) (tenant string, ok bool, err error) {
	for _, ex := range m.excludes {
		nsMatch, err := path.Match(ex.Namespace, namespace)
		if err != nil {
			return "", false, fmt.Errorf("exclude rule %q: %w", ex.Namespace+"/"+ex.Pod, err)
		}
		if !nsMatch {
			continue
		}
		podMatch, err := path.Match(ex.Pod, pod)
		if err != nil {
			return "", false, fmt.Errorf("exclude rule %q: %w", ex.Namespace+"/"+ex.Pod, err)
		}
		if podMatch {
			return "", false, nil
		}
	}
	for _, r := range m.rules {
		match, err := path.Match(r.Namespace, namespace)
		if err != nil {
			return "", false, fmt.Errorf("tenant map rule %q: %w", r.Namespace+"="+r.Tenant, err)
		}
		if !match {
			continue
		}
		if err := kafka.ValidateTenant(r.Tenant); err != nil {
			return "", false, fmt.Errorf("tenant map rule %q for namespace %q: %w", r.Namespace+"="+r.Tenant, namespace, err)
		}
		return r.Tenant, true, nil
	}
	if err := kafka.ValidateTenant(namespace); err != nil {
		return "", false, fmt.Errorf("namespace %q matches no tenant map rule and is not a tenant id itself: %w", namespace, err)
	}
	return namespace, true, nil
}
