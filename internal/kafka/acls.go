package kafka

import "github.com/twmb/franz-go/pkg/kadm"

// ACLRule is one allow rule of a principal: operations on a resource named
// literally or by prefix. It is the one description of a tenant's rights,
// from which both the ACLs `sluice tenant create` sets and the Strimzi
// KafkaUsers of the Helm chart (checked by a test in deploy/) are made; the
// router's rights (RouterACLRules) likewise.
type ACLRule struct {
	// Resource is "topic", "group" or "transactionalId".
	Resource string
	Name     string
	// Prefixed matches every resource whose name starts with Name.
	Prefixed   bool
	Operations []kadm.ACLOperation
}

// TenantACLRules returns the rights of a tenant's user:
//
//   - write its raw topic;
//   - read and describe its parsed topic (and its configuration, so that
//     sluice pipeline apply makes dataset topics like it) and its
//     dead-letter topic;
//   - read, describe and create its dataset topics,
//     <prefix>.parsed.<tenant>.*: a prefix ending at the dot, so that no
//     other tenant's topic matches (shop's prefix is not a prefix of
//     shop-web's topics). Creating lets sluice pipeline apply make the
//     topics of the datasets a pipeline routes to; the controller mutation quota set by
//     ProvisionTenant bounds how fast partitions can be made that way;
//   - read, write and describe its config topic <prefix>.config.<tenant>:
//     the tenant owns its pipeline, and no other tenant's;
//   - read and describe its status topic <prefix>.status.<tenant>, which
//     only routers write: the tenant sees its routers' status and errors
//     and cannot forge them;
//   - read and describe <prefix>.schemas, the record schema versions,
//     so that its own consumers can decode versions newer than they embed;
//   - read and describe consumer groups named <tenant>.*.
//
// Nothing else: a tenant never sees another tenant's topics, pipeline or
// status, nor the routers' <prefix>.status.
func TenantACLRules(t Topics, tenant string) []ACLRule {
	return []ACLRule{
		{Resource: "topic", Name: t.Raw(tenant), Operations: []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Parsed(tenant), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe, kadm.OpDescribeConfigs}},
		{Resource: "topic", Name: t.DLQ(tenant), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Parsed(tenant) + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe, kadm.OpCreate}},
		{Resource: "topic", Name: t.TenantConfig(tenant), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpWrite, kadm.OpDescribe}},
		{Resource: "topic", Name: t.TenantStatus(tenant), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Schemas(), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "group", Name: tenant + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
	}
}

// RouterACLRules returns the rights of the routers' user, whose consumer
// group is group:
//
//   - read every raw topic; write every parsed, dataset and dead-letter
//     topic; transactional ids <group>-*; the group;
//   - read (never write) every tenant's config topic <prefix>.config.* and
//     the legacy <prefix>.config;
//   - read and write the status topics: <prefix>.status (with its
//     configuration, to check that it is compacted) and every tenant's
//     <prefix>.status.<tenant>;
//   - read and write <prefix>.schemas: routers publish the schema versions
//     they write, and look up the ones they read but do not embed.
func RouterACLRules(t Topics, group string) []ACLRule {
	return []ACLRule{
		{Resource: "topic", Name: t.Prefix + "." + KindRaw + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Prefix + "." + KindParsed + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Prefix + "." + KindDLQ + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Config(), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Config() + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Status(), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpWrite, kadm.OpDescribe, kadm.OpDescribeConfigs}},
		{Resource: "topic", Name: t.Status() + ".", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}},
		{Resource: "topic", Name: t.Schemas(), Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpWrite, kadm.OpDescribe}},
		{Resource: "group", Name: group, Operations: []kadm.ACLOperation{kadm.OpRead, kadm.OpDescribe}},
		{Resource: "transactionalId", Name: group + "-", Prefixed: true, Operations: []kadm.ACLOperation{kadm.OpWrite, kadm.OpDescribe}},
	}
}

// ACLs returns the kadm builders allowing rules to principal.
func ACLs(principal string, rules []ACLRule) []*kadm.ACLBuilder {
	bs := make([]*kadm.ACLBuilder, 0, len(rules))
	for _, r := range rules {
		bs = append(bs, r.builder(principal))
	}
	return bs
}

// builder returns the kadm builder allowing r to principal.
func (r ACLRule) builder(principal string) *kadm.ACLBuilder {
	b := kadm.NewACLs().Allow(principal).Operations(r.Operations...)
	switch r.Resource {
	case "group":
		b = b.Groups(r.Name)
	case "transactionalId":
		b = b.TransactionalIDs(r.Name)
	default:
		b = b.Topics(r.Name)
	}
	if r.Prefixed {
		return b.ResourcePatternType(kadm.ACLPatternPrefixed)
	}
	return b.ResourcePatternType(kadm.ACLPatternLiteral)
}
