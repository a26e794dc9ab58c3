package kafka

import "github.com/twmb/franz-go/pkg/kadm"

// ACLRule is one allow rule of a principal: operations on a resource named
// literally or by prefix. It is the one description of a tenant's rights,
// from which both the ACLs `sluice tenant create` sets and the Strimzi
// KafkaUsers of the Helm chart (checked by a test in deploy/) are made.
type ACLRule struct {
	// Resource is "topic" or "group".
	Resource string
	Name     string
	// Prefixed matches every resource whose name starts with Name.
	Prefixed   bool
	Operations []kadm.ACLOperation
}

// TenantACLRules returns the rights of a tenant's user: write its raw topic;
// read and describe its parsed topic, its route streams
// (<prefix>.parsed.<tenant>.*, a prefix ending at the dot, so that no other
// tenant's topic matches) and its dead-letter topic; read and describe
// consumer groups named <tenant>.*. Nothing else: a tenant never sees
// another tenant's topics.
func TenantACLRules(t Topics, tenant string) []ACLRule {
	return []ACLRule{
		{Resource: "topic", Name: t.Raw(tenant), Operations: []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Parsed(tenant), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "topic", Name: t.DLQ(tenant), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Parsed(tenant) + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "group", Name: tenant + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
	}
}

// builder returns the kadm builder allowing r to principal.
func (r ACLRule) builder(principal string) *kadm.ACLBuilder {
	b := kadm.NewACLs().Allow(principal).Operations(r.Operations...)
	if r.Resource == "group" {
		b = b.Groups(r.Name)
	} else {
		b = b.Topics(r.Name)
	}
	if r.Prefixed {
		return b.ResourcePatternType(kadm.ACLPatternPrefixed)
	}
	return b.ResourcePatternType(kadm.ACLPatternLiteral)
}
