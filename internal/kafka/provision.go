package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TenantSpec says how a tenant's topics, credentials and limits are made
// by ProvisionTenant.
type TenantSpec struct {
	// Partitions and ReplicationFactor of the tenant's topics; -1 takes
	// the broker's default.
	Partitions        int32
	ReplicationFactor int16
	// Retention of the tenant's topics (retention.ms); 0 takes the
	// broker's default.
	Retention time.Duration
	// Password, when set, is given to the tenant's SCRAM-SHA-512 user
	// (created or changed). Empty leaves an existing user alone; a tenant
	// without a user then gets none.
	Password string
	// ProducerByteRate and ConsumerByteRate are the tenant user's quotas in
	// bytes per second; 0 removes the quota (see DefaultProducerByteRate and
	// DefaultConsumerByteRate for what sluice tenant create sets).
	ProducerByteRate, ConsumerByteRate float64
	// ControllerMutationRate is the tenant user's quota of partitions
	// created or deleted per second (Kafka's controller_mutation_rate),
	// which bounds the dataset topics the tenant can make itself; 0
	// removes the quota.
	ControllerMutationRate float64
	// Datasets are the datasets (what routes name) to make topics for,
	// <prefix>.parsed.<tenant>.<dataset>, like the tenant's other topics.
	Datasets []string
}

// Defaults of sluice tenant create: a tenant's user is never unlimited
// unless asked for.
const (
	DefaultProducerByteRate       = 5 << 20  // 5 MiB/s
	DefaultConsumerByteRate       = 10 << 20 // 10 MiB/s
	DefaultControllerMutationRate = 10       // partitions per second
)

// DefaultTenantSpec is what sluice tenant create and a Tenant resource make
// when nothing else is asked: 3 partitions, the broker's replication
// factor, 7 days of retention and the default quotas.
func DefaultTenantSpec() TenantSpec {
	return TenantSpec{
		Partitions: 3, ReplicationFactor: -1, Retention: 7 * 24 * time.Hour,
		ProducerByteRate: DefaultProducerByteRate, ConsumerByteRate: DefaultConsumerByteRate,
		ControllerMutationRate: DefaultControllerMutationRate,
	}
}

// Validate checks the spec's bounds: 1 to 10000 partitions, a replication
// factor of -1 (the broker's default) or 1 to 32, quotas 0 (unlimited) or
// positive, valid dataset names.
func (s TenantSpec) Validate() error {
	var errs []error
	if s.Partitions < 1 || s.Partitions > 10_000 {
		errs = append(errs, fmt.Errorf("partitions %d: want 1 to 10000", s.Partitions))
	}
	if s.ReplicationFactor < -1 || s.ReplicationFactor == 0 || s.ReplicationFactor > 32 {
		errs = append(errs, fmt.Errorf("replication factor %d: want -1 (the broker's default) or 1 to 32", s.ReplicationFactor))
	}
	if s.Retention < 0 {
		errs = append(errs, fmt.Errorf("retention %s: must not be negative", s.Retention))
	}
	if s.ProducerByteRate < 0 || s.ConsumerByteRate < 0 || s.ControllerMutationRate < 0 {
		errs = append(errs, errors.New("quotas must be 0 (unlimited) or positive"))
	}
	for _, ds := range s.Datasets {
		if err := ValidateDataset(ds); err != nil {
			errs = append(errs, fmt.Errorf("datasets: %w", err))
		}
	}
	return errors.Join(errs...)
}

// TenantPrincipal is the Kafka principal of a tenant's user.
func TenantPrincipal(tenant string) string { return "User:" + tenant }

// scramIterations is what kfake accepts and what Kafka defaults to.
const scramIterations = 4096

// TenantACLs returns the ACLs of a tenant's principal (TenantACLRules), as
// builders for kadm.
func TenantACLs(t Topics, tenant string) []*kadm.ACLBuilder {
	return ACLs(TenantPrincipal(tenant), TenantACLRules(t, tenant))
}

// TenantTopics returns a tenant's data topics made by ProvisionTenant: raw,
// parsed and dead-letter. Dataset topics (<prefix>.parsed.<tenant>.<dataset>)
// are made by ProvisionTenant when asked (TenantSpec.Datasets) and by sluice
// pipeline apply when a pipeline routes to them. TenantStateTopics are the
// tenant's other topics.
func TenantTopics(t Topics, tenant string) []string {
	return []string{t.Raw(tenant), t.Parsed(tenant), t.DLQ(tenant)}
}

// TenantStateTopics returns the tenant's compacted one-partition topics
// made by ProvisionTenant: its config topic (its pipeline) and its status
// topic (what routers report about it).
func TenantStateTopics(t Topics, tenant string) []string {
	return []string{t.TenantConfig(tenant), t.TenantStatus(tenant)}
}

// CompactedConfigs are the topic configs of the compacted topics: the
// tenants' config and status topics and <prefix>.status.
func CompactedConfigs() map[string]*string {
	compact, lag := "compact", "60000"
	return map[string]*string{"cleanup.policy": &compact, "min.compaction.lag.ms": &lag}
}

// ProvisionResult says what ProvisionTenant changed.
type ProvisionResult struct {
	TopicsCreated []string // topics that did not exist
	UserSet       bool     // the SCRAM user was created or its password changed
	// ACLsSkipped: the cluster has no authorizer (it answered
	// SECURITY_DISABLED), so no ACL was set and nothing keeps other
	// clients off the tenant's topics. Callers should say so.
	ACLsSkipped bool
}

// ProvisionTenant makes a tenant: its topics (TenantTopics, the dataset
// topics of spec.Datasets, TenantStateTopics), SCRAM-SHA-512 user, ACLs and
// quotas. It is idempotent: what exists already is left (topics keep
// their partitions), ACLs and quotas are set again. Errors name the step.
//
// On a cluster without an authorizer (a development broker, say) ACLs
// cannot be set: that is not an error, it is reported in
// ProvisionResult.ACLsSkipped.
func ProvisionTenant(ctx context.Context, adm *kadm.Client, t Topics, tenant string, spec TenantSpec) (ProvisionResult, error) {
	var res ProvisionResult
	if err := ValidateTenant(tenant); err != nil {
		return res, err
	}
	data := TenantTopics(t, tenant)
	for _, ds := range spec.Datasets {
		if err := ValidateDataset(ds); err != nil {
			return res, err
		}
		data = append(data, t.ParsedDataset(tenant, ds))
	}
	var configs map[string]*string
	if spec.Retention > 0 {
		ms := strconv.FormatInt(spec.Retention.Milliseconds(), 10)
		configs = map[string]*string{"retention.ms": &ms}
	}
	for _, batch := range []struct {
		partitions int32
		configs    map[string]*string
		topics     []string
	}{
		{spec.Partitions, configs, data},
		// One partition: every reader sees every change in order.
		{1, CompactedConfigs(), TenantStateTopics(t, tenant)},
	} {
		created, err := CreateTopics(ctx, adm, batch.partitions, spec.ReplicationFactor, batch.configs, batch.topics...)
		res.TopicsCreated = append(res.TopicsCreated, created...)
		if err != nil {
			return res, err
		}
	}
	if spec.Password != "" {
		altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{
			User: tenant, Mechanism: kadm.ScramSha512, Iterations: scramIterations, Password: spec.Password,
		}})
		if err == nil {
			err = altered.Error()
		}
		if err != nil {
			return res, fmt.Errorf("set SCRAM user %s: %w", tenant, err)
		}
		res.UserSet = true
	}
acls:
	for _, b := range TenantACLs(t, tenant) {
		results, err := adm.CreateACLs(ctx, b)
		if errors.Is(err, kerr.SecurityDisabled) {
			res.ACLsSkipped = true
			break
		}
		if err != nil {
			return res, fmt.Errorf("create ACLs: %w", err)
		}
		for _, r := range results {
			switch {
			case errors.Is(r.Err, kerr.SecurityDisabled):
				// Kafka answers every creation of the request so: the
				// other builders would be refused the same way.
				res.ACLsSkipped = true
				break acls
			case r.Err != nil:
				return res, fmt.Errorf("create ACL %s on %s %s: %w", r.Operation, r.Type, r.Name, r.Err)
			}
		}
	}
	if err := setQuotas(ctx, adm, tenant, spec.ProducerByteRate, spec.ConsumerByteRate, spec.ControllerMutationRate); err != nil {
		return res, err
	}
	return res, nil
}

// CreateTopics creates the topics that do not exist and returns those it
// created, sorted. Topics that exist already are left alone.
func CreateTopics(ctx context.Context, adm *kadm.Client, partitions int32, replication int16, configs map[string]*string, topics ...string) ([]string, error) {
	if len(topics) == 0 {
		return nil, nil
	}
	created, err := adm.CreateTopics(ctx, partitions, replication, configs, topics...)
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	var out []string
	for _, c := range created.Sorted() {
		switch {
		case c.Err == nil:
			out = append(out, c.Topic)
		case errors.Is(c.Err, kerr.TopicAlreadyExists):
		default:
			return out, fmt.Errorf("create topic %s: %w", c.Topic, c.Err)
		}
	}
	return out, nil
}

func setQuotas(ctx context.Context, adm *kadm.Client, tenant string, produce, consume, mutation float64) error {
	op := func(key string, v float64) kadm.AlterClientQuotaOp {
		return kadm.AlterClientQuotaOp{Key: key, Value: v, Remove: v <= 0}
	}
	name := tenant
	altered, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &name}},
		Ops: []kadm.AlterClientQuotaOp{op("producer_byte_rate", produce), op("consumer_byte_rate", consume),
			op("controller_mutation_rate", mutation)},
	}})
	if err != nil {
		return fmt.Errorf("set quotas: %w", err)
	}
	for _, a := range altered {
		if a.Err != nil {
			return fmt.Errorf("set quotas of %s: %w", tenant, a.Err)
		}
	}
	return nil
}

// DeleteTenant removes a tenant: its topics (dataset topics, config and
// status topics included), user,
// ACLs and quotas. What is already gone is skipped, and so are the ACLs on
// a cluster without an authorizer (none can exist there). The tenant's
// indices in Elasticsearch are not touched (retention removes them).
func DeleteTenant(ctx context.Context, adm *kadm.Client, t Topics, tenant string) error {
	if err := ValidateTenant(tenant); err != nil {
		return err
	}
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var topics []string
	for _, name := range all.Names() {
		if tn, _, _, ok := t.TenantOf(name); ok && tn == tenant {
			topics = append(topics, name)
		}
	}
	slices.Sort(topics)
	if len(topics) > 0 {
		deleted, err := adm.DeleteTopics(ctx, topics...)
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		for _, d := range deleted.Sorted() {
			if d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("delete topic %s: %w", d.Topic, d.Err)
			}
		}
	}
	return RevokeTenant(ctx, adm, t, tenant)
}

// RevokeTenant removes a tenant's access and leaves its topics and their
// data: its ACLs, SCRAM user and quotas. What is already gone is not an
// error.
func RevokeTenant(ctx context.Context, adm *kadm.Client, t Topics, tenant string) error {
	if err := ValidateTenant(tenant); err != nil {
		return err
	}
acls:
	for _, b := range TenantACLs(t, tenant) {
		results, err := adm.DeleteACLs(ctx, b.AllowHosts()) // any host
		if errors.Is(err, kerr.SecurityDisabled) {
			break
		}
		if err != nil {
			return fmt.Errorf("delete ACLs: %w", err)
		}
		for _, r := range results {
			switch {
			case errors.Is(r.Err, kerr.SecurityDisabled):
				break acls
			case r.Err != nil:
				return fmt.Errorf("delete ACLs: %w", r.Err)
			}
		}
	}
	altered, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: tenant, Mechanism: kadm.ScramSha512}}, nil)
	if err == nil {
		if e := altered.Error(); e != nil && !errors.Is(e, kerr.ResourceNotFound) {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("delete SCRAM user %s: %w", tenant, err)
	}
	return setQuotas(ctx, adm, tenant, 0, 0, 0)
}

// ListTenants returns the tenants that have a raw topic, sorted.
func ListTenants(ctx context.Context, adm *kadm.Client, t Topics) ([]string, error) {
	all, err := adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []string
	for _, name := range all.Names() {
		if tn, kind, _, ok := t.TenantOf(name); ok && kind == KindRaw {
			out = append(out, tn)
		}
	}
	slices.Sort(out)
	return out, nil
}

// CaughtUp reports whether group's committed offsets reached the end of
// every non-empty partition of topics: everything written to them so far
// is processed (for tests, load tests and tools that wait for a stage).
//
// On a transactional topic a partition ends with a commit or abort marker,
// or with records of aborted transactions, none of which a read_committed
// consumer ever sees or commits past. So where a committed offset is short
// of the end, CaughtUp reads the partition from there with read_committed
// and counts it caught up when no visible record lies in between. cl is a
// plain client (not consuming, without metrics hooks): the reader is made
// with its options.
func CaughtUp(ctx context.Context, cl *kgo.Client, group string, topics ...string) (bool, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, fmt.Errorf("list end offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, fmt.Errorf("fetch offsets of %s: %w", group, err)
	}
	short := map[string]map[int32]kgo.Offset{}
	end := map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset <= 0 {
			return
		}
		from := int64(0)
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok {
			from = c.At
		}
		if from >= o.Offset {
			return
		}
		if short[o.Topic] == nil {
			short[o.Topic], end[o.Topic] = map[int32]kgo.Offset{}, map[int32]int64{}
		}
		short[o.Topic][o.Partition] = kgo.NewOffset().At(from)
		end[o.Topic][o.Partition] = o.Offset
	})
	if len(short) == 0 {
		return true, nil
	}
	return noVisibleRecords(ctx, cl, short, end)
}

// noVisibleRecords reads the partitions from the given offsets with
// read_committed, control records included, until each reaches its end: a
// partition is caught up when nothing but commit and abort markers (and
// the aborted records a read_committed reader never gets) lies between.
// When the partitions cannot be read to their ends within ten seconds, it
// answers false: not known to be caught up.
func noVisibleRecords(ctx context.Context, cl *kgo.Client, from map[string]map[int32]kgo.Offset, end map[string]map[int32]int64) (bool, error) {
	reader, err := NewClient(append(cl.Opts(), kgo.ConsumePartitions(from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return false, err
	}
	defer reader.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	remaining := 0
	for _, parts := range end {
		remaining += len(parts)
	}
	for remaining > 0 {
		fetches := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			return false, nil
		}
		visible := false
		fetches.EachRecord(func(r *kgo.Record) {
			e, ok := end[r.Topic][r.Partition]
			switch {
			case !ok:
			case !r.Attrs.IsControl() && r.Offset < e:
				visible = true
			case r.Offset >= e-1:
				delete(end[r.Topic], r.Partition)
				remaining--
			}
		})
		if visible {
			return false, nil
		}
	}
	return true, nil
}

// DatasetTopics says what EnsureDatasetTopics found.
type DatasetTopics struct {
	Created []string // made now
	// Missing are the topics that do not exist and could not be made,
	// with why (for example TOPIC_AUTHORIZATION_FAILED).
	Missing map[string]error
}

// EnsureDatasetTopics makes sure the topics of the tenant's datasets exist,
// <prefix>.parsed.<tenant>.<dataset>: those missing are created like the
// tenant's parsed topic (its partition count and, when its configuration
// can be read, its retention.ms). A principal allowed to create them (an
// administrator, or the tenant through its prefixed CREATE ACL) makes
// them; for any other, they are reported in Missing. Dataset names are
// validated first.
func EnsureDatasetTopics(ctx context.Context, adm *kadm.Client, t Topics, tenant string, datasets []string) (DatasetTopics, error) {
	res := DatasetTopics{Missing: map[string]error{}}
	if err := ValidateTenant(tenant); err != nil {
		return res, err
	}
	var want []string
	for _, ds := range datasets {
		if err := ValidateDataset(ds); err != nil {
			return res, err
		}
		want = append(want, t.ParsedDataset(tenant, ds))
	}
	if len(want) == 0 {
		return res, nil
	}
	details, err := adm.ListTopics(ctx, append([]string{t.Parsed(tenant)}, want...)...)
	if err != nil {
		return res, fmt.Errorf("describe topics: %w", err)
	}
	var missing []string
	for _, topic := range want {
		if d, ok := details[topic]; !ok || d.Err != nil {
			missing = append(missing, topic)
		}
	}
	if len(missing) == 0 {
		return res, nil
	}
	partitions := int32(-1)
	if d, ok := details[t.Parsed(tenant)]; ok && d.Err == nil && len(d.Partitions) > 0 {
		partitions = int32(len(d.Partitions))
	}
	var configs map[string]*string
	if rcs, err := adm.DescribeTopicConfigs(ctx, t.Parsed(tenant)); err == nil {
		if rc, err := rcs.On(t.Parsed(tenant), nil); err == nil && rc.Err == nil {
			for _, c := range rc.Configs {
				if c.Key == "retention.ms" && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
					v := c.MaybeValue()
					configs = map[string]*string{"retention.ms": &v}
				}
			}
		}
	}
	created, err := adm.CreateTopics(ctx, partitions, -1, configs, missing...)
	if err != nil {
		for _, topic := range missing {
			res.Missing[topic] = err
		}
		return res, nil
	}
	for _, c := range created.Sorted() {
		switch {
		case c.Err == nil:
			res.Created = append(res.Created, c.Topic)
		case errors.Is(c.Err, kerr.TopicAlreadyExists):
		default:
			res.Missing[c.Topic] = c.Err
		}
	}
	return res, nil
}
