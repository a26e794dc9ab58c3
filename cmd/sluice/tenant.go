package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/resources"
)

// tenantCommand is `sluice tenant` and its subcommands.
func tenantCommand() *cli.Command {
	return &cli.Command{
		Name:    "tenant",
		Summary: "create, list and delete tenants: topics, Kafka user, ACLs, quotas",
		Description: `Makes and removes tenants: their topics (<prefix>.raw, .parsed and .dlq.<tenant>, the topics of
the datasets routes send to, <prefix>.parsed.<tenant>.<dataset>, and the compacted <prefix>.config.<tenant> and
<prefix>.status.<tenant>), a SCRAM-SHA-512 Kafka user named after the tenant, its ACLs and quotas.
Run with administrator Kafka credentials.

The tenant's user may: write its raw topic; read its parsed, dataset and dead-letter topics; create
its own dataset topics (<prefix>.parsed.<tenant>.*, so that sluice pipeline apply makes those a
pipeline routes to; bounded by the controller mutation quota); read and write its pipeline
(<prefix>.config.<tenant>); read the routers' status of it (<prefix>.status.<tenant>); use consumer
groups <tenant>.*. Nothing of any other tenant. Quotas are set by default (produce 5 MiB/s, fetch
10 MiB/s, 10 partition mutations/s); 0 means unlimited and must be asked for.`,
		Examples: []string{
			"sluice tenant create shop                # topics, user (its password printed once), ACLs, quotas",
			"sluice tenant list",
			"sluice tenant delete --yes shop",
		},
		Epilog: settingsEpilog(&pipelineConfig{}),
		Subcommands: []*cli.Command{
			{
				Name:    "create",
				Summary: "create (or update) a tenant; prints the settings it needs, its password once, and an Elasticsearch role for its indices",
				Args:    "NAME", MinArgs: 1, MaxArgs: 1,
				Description: `Creates the tenant's topics, Kafka user, ACLs and quotas, or brings an existing tenant's up to
these flags (existing topics keep their partitions). Prints the settings its producers and
consumers need, the user's password once (unless --password-stdin or --no-user), and an
Elasticsearch role for its indices.`,
				Examples: []string{
					"sluice tenant create shop",
					"sluice tenant create --datasets audit,errors --partitions 6 payments",
					"sluice tenant create --no-user acme                 # no SASL: topics only",
					"printf '%s\\n' \"$PASSWORD\" | sluice tenant create --password-stdin shop",
					"sluice tenant create --output yaml shop             # the Tenant resource, for sluice-controller",
				},
				Epilog: settingsEpilog(&pipelineConfig{}),
				Flags: func(fs *flag.FlagSet) cli.Action {
					var o createOptions
					def := kafka.DefaultTenantSpec()
					o.partitions = fs.Int("partitions", int(def.Partitions), "partitions of each new topic (existing topics are left alone)")
					o.replication = fs.Int("replication-factor", int(def.ReplicationFactor), "replication factor of each new topic; -1: the broker's default")
					o.retention = fs.Duration("retention", def.Retention, "retention of each new topic; 0: the broker's default")
					o.producerRate = fs.Float64("producer-byte-rate", def.ProducerByteRate, "produce quota of the tenant's user, bytes/s; 0: unlimited")
					o.consumerRate = fs.Float64("consumer-byte-rate", def.ConsumerByteRate, "fetch quota of the tenant's user, bytes/s; 0: unlimited")
					o.mutationRate = fs.Float64("controller-mutation-rate", def.ControllerMutationRate, "partitions the tenant's user may create or delete per second (its dataset topics); 0: unlimited")
					o.datasets = fs.String("datasets", "", "comma-separated `DATASETS` (what routes send to) to make topics for, <prefix>.parsed.<tenant>.<dataset>, like the tenant's other topics")
					cli.DeprecatedAlias(fs, "streams", "datasets")
					o.passwordStdin = fs.Bool("password-stdin", false, "read the user's password from the first line of stdin instead of generating one")
					o.noUser = fs.Bool("no-user", false, "make no user and set no password (for clusters without SASL, or to keep an existing password)")
					o.indexPrefix = fs.String("index-prefix", "sluice", "index prefix of the indexers, for the Elasticsearch role")
					o.output = fs.String("output", "", "yaml: print the Tenant resource (sluice.io/v1alpha1) these flags stand for, owning the namespace of the tenant's name, and do nothing else (for sluice-controller)")
					o.sharedIndices = fs.Bool("shared-indices", true, "grant the role the tenant's documents in the shared indices, by document-level security (needs a license with it; false on a Basic license, with the tenant kept in the dedicated layout)")
					o.timeout = kafkaTimeoutFlag(fs)
					return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
						return tenantCreate(ctx, o, args[0], stdout, stderr)
					}
				},
			},
			{
				Name:        "list",
				Summary:     "list tenants (those with a raw topic)",
				Description: "Lists the tenants: those with a raw topic, one per line.",
				Examples:    []string{"sluice tenant list"},
				Epilog:      settingsEpilog(&pipelineConfig{}),
				Flags: func(fs *flag.FlagSet) cli.Action {
					timeout := kafkaTimeoutFlag(fs)
					return func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
						return connectKafka(ctx, kafkaCall{clientID: "sluice-tenant", timeout: *timeout}, func(ctx context.Context, k *kafkaSession) error {
							tenants, err := kafka.ListTenants(ctx, k.adm, k.topics)
							for _, t := range tenants {
								fmt.Fprintln(stdout, t)
							}
							return err
						})
					}
				},
			},
			{
				Name:    "delete",
				Summary: "delete a tenant's topics, user, ACLs and quotas",
				Usage:   "--yes NAME",
				Args:    "NAME", MinArgs: 1, MaxArgs: 1,
				Description: `Deletes a tenant's topics (and their records), its Kafka user, ACLs and quotas. Its indices in
Elasticsearch are left to their retention. A tenant that does not exist is an error: nothing is
deleted.`,
				Examples: []string{"sluice tenant delete --yes shop"},
				Epilog:   settingsEpilog(&pipelineConfig{}),
				Flags: func(fs *flag.FlagSet) cli.Action {
					yes := fs.Bool("yes", false, "really delete (the tenant's topics and their records are gone)")
					timeout := kafkaTimeoutFlag(fs)
					return func(ctx context.Context, args []string, stdout, _ io.Writer) error {
						return tenantDelete(ctx, args[0], *yes, *timeout, stdout)
					}
				},
			},
		},
	}
}

func tenantDelete(ctx context.Context, tenant string, yes bool, timeout time.Duration, stdout io.Writer) error {
	if err := kafka.ValidateTenant(tenant); err != nil {
		return cli.Usagef("%v", err)
	}
	if !yes {
		return cli.Usagef("add --yes to delete tenant %s's topics, user, ACLs and quotas", tenant)
	}
	return connectKafka(ctx, kafkaCall{clientID: "sluice-tenant", timeout: timeout}, func(ctx context.Context, k *kafkaSession) error {
		if err := tenantExists(ctx, k, tenant); err != nil {
			return fmt.Errorf("tenant delete: %w", err)
		}
		if err := kafka.DeleteTenant(ctx, k.adm, k.topics, tenant); err != nil {
			return fmt.Errorf("tenant delete %s: %w", tenant, err)
		}
		fmt.Fprintf(stdout, "tenant %s deleted\n", tenant)
		return nil
	})
}

// tenantExists returns an error naming tenant when it has neither a topic
// nor a Kafka user: a mistyped name deletes nothing and says so.
func tenantExists(ctx context.Context, k *kafkaSession, tenant string) error {
	all, err := k.adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var tenants []string
	for _, name := range all.Names() {
		tn, kind, _, ok := k.topics.TenantOf(name)
		if ok && tn == tenant {
			return nil
		}
		if ok && kind == kafka.KindRaw {
			tenants = append(tenants, tn)
		}
	}
	// A tenant whose topics are gone may still have its user: deleting
	// it again removes the rest.
	users, err := k.adm.DescribeUserSCRAMs(ctx, tenant)
	if err == nil {
		if u, ok := users[tenant]; ok && u.Err == nil && len(u.CredInfos) > 0 {
			return nil
		}
	}
	msg := fmt.Sprintf("tenant %s does not exist (no topic %s.*.%s, no Kafka user %s): nothing deleted", tenant, k.topics.Prefix, tenant, tenant)
	if s := cli.Suggest(tenant, tenants); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return fmt.Errorf("%s (sluice tenant list shows the tenants)", msg)
}

// createOptions are the flags of tenant create.
type createOptions struct {
	partitions, replication                  *int
	retention, timeout                       *time.Duration
	producerRate, consumerRate, mutationRate *float64
	datasets, indexPrefix, output            *string
	passwordStdin, noUser, sharedIndices     *bool
}

func tenantCreate(ctx context.Context, o createOptions, tenant string, stdout, stderr io.Writer) error {
	if err := kafka.ValidateTenant(tenant); err != nil {
		return cli.Usagef("%v", err)
	}
	if int(int32(*o.partitions)) != *o.partitions || int(int16(*o.replication)) != *o.replication {
		return cli.Usagef("--partitions must be 1 to 10000 and --replication-factor -1 or 1 to 32")
	}
	spec := kafka.TenantSpec{
		Partitions: int32(*o.partitions), ReplicationFactor: int16(*o.replication), Retention: *o.retention,
		ProducerByteRate: *o.producerRate, ConsumerByteRate: *o.consumerRate, ControllerMutationRate: *o.mutationRate,
	}
	for _, s := range strings.Split(*o.datasets, ",") {
		if s = strings.TrimSpace(s); s != "" {
			spec.Datasets = append(spec.Datasets, s)
		}
	}
	if err := spec.Validate(); err != nil {
		return cli.Usagef("%v", err)
	}
	noUser, indexPrefix, sharedIndices := o.noUser, o.indexPrefix, o.sharedIndices
	switch *o.output {
	case "":
	case "yaml":
		credentials := ""
		if !*noUser {
			credentials = tenant
		}
		b, err := resources.TenantYAML(resources.Tenant{Name: tenant, Partitions: spec.Partitions, ReplicationFactor: spec.ReplicationFactor,
			Retention: spec.Retention, Datasets: spec.Datasets, ProduceRate: spec.ProducerByteRate, FetchRate: spec.ConsumerByteRate,
			MutationRate: spec.ControllerMutationRate, CredentialsNamespace: credentials})
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	default:
		return cli.Usagef("--output %q: want yaml", *o.output)
	}
	generated := false
	switch {
	case *noUser && *o.passwordStdin:
		return cli.Usagef("--no-user and --password-stdin exclude each other")
	case *o.passwordStdin:
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("tenant create: read password: %w", err)
		}
		if spec.Password = strings.TrimRight(line, "\r\n"); len(spec.Password) < 12 {
			return errors.New("tenant create: the password read from stdin must be at least 12 characters")
		}
	case !*noUser:
		spec.Password, generated = newPassword(), true
	}
	return connectKafka(ctx, kafkaCall{clientID: "sluice-tenant", timeout: *o.timeout}, func(ctx context.Context, k *kafkaSession) error {
		topics := k.topics
		res, err := kafka.ProvisionTenant(ctx, k.adm, topics, tenant, spec)
		if err != nil {
			return fmt.Errorf("tenant create %s: %w", tenant, err)
		}
		switch {
		case res.ACLsSkipped:
			fmt.Fprintln(stderr, noAuthorizerWarning(tenant))
		case anonymous(k.cfg):
			fmt.Fprintln(stderr, unenforcedACLsWarning(tenant))
		}
		w := stdout
		fmt.Fprintf(w, "tenant %s ready", tenant)
		if len(res.TopicsCreated) > 0 {
			fmt.Fprintf(w, "; topics created: %s", strings.Join(res.TopicsCreated, ", "))
		}
		fmt.Fprintf(w, "\n\n# Kafka settings for the tenant's producers and consumers (sluice produce, sluice tail, any Kafka client):\n")
		fmt.Fprintf(w, "SLUICE_TOPIC_PREFIX=%s\n", topics.Prefix)
		if !*noUser {
			fmt.Fprintf(w, "SLUICE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512\nSLUICE_KAFKA_SASL_USERNAME=%s\n", tenant)
			if generated {
				fmt.Fprintf(w, "SLUICE_KAFKA_SASL_PASSWORD=%s   # shown once: keep it in a secret store\n", spec.Password)
			} else {
				fmt.Fprintf(w, "# SLUICE_KAFKA_SASL_PASSWORD: the password given on stdin\n")
			}
		}
		fmt.Fprintf(w, "# writes %s; reads %s, %s.* (and creates those) and %s; consumer groups %s.*\n",
			topics.Raw(tenant), topics.Parsed(tenant), topics.Parsed(tenant), topics.DLQ(tenant), tenant)
		fmt.Fprintf(w, "# its pipeline: %s (sluice pipeline apply|get|delete with these settings); routers' status: %s\n",
			topics.TenantConfig(tenant), topics.TenantStatus(tenant))
		fmt.Fprintf(w, "# quotas: %s\n", quotaLine(spec))
		role, _ := json.MarshalIndent(indexer.TenantRole(*indexPrefix, tenant, *sharedIndices), "", "  ")
		fmt.Fprintf(w, "\n# Elasticsearch role for the tenant's indices (PUT /_security/role/%s):\n", indexer.RoleName(tenant))
		fmt.Fprintf(w, "# its own indices (dedicated layout) by index privileges")
		if *sharedIndices {
			fmt.Fprintf(w, `; in the shared indices (shared layout) only
# its documents, by document-level security (query: tenant is %s). DLS needs an Elasticsearch
# license that includes it (Platinum, Enterprise or a trial; OpenSearch's security plugin has DLS
# too, as a role's dls query). On a Basic license Elasticsearch disables a role that uses DLS: there,
# keep the tenant in the dedicated layout, the one that isolates, and make the role with
# --shared-indices=false`, tenant)
		}
		fmt.Fprintf(w, "\n%s\n", role)
		return nil
	})
}

// quotaLine describes the quotas of spec.
func quotaLine(spec kafka.TenantSpec) string {
	rate := func(v float64, unit string) string {
		if v <= 0 {
			return "unlimited"
		}
		return fmt.Sprintf("%g %s", v, unit)
	}
	return fmt.Sprintf("produce %s, fetch %s, partition mutations %s",
		rate(spec.ProducerByteRate, "bytes/s"), rate(spec.ConsumerByteRate, "bytes/s"), rate(spec.ControllerMutationRate, "/s"))
}

// noAuthorizerWarning is the one line `sluice tenant create` (and the demo)
// print when Kafka has no authorizer, so that ACLs could not be set.
func noAuthorizerWarning(tenant string) string {
	return fmt.Sprintf("warning: the Kafka cluster has no authorizer (SECURITY_DISABLED): no ACLs were set, so tenant %s's topics are not protected from other clients", tenant)
}

// unenforcedACLsWarning is what `sluice tenant create` prints when Kafka
// let a connection that authenticates no one set ACLs. Such a cluster
// either enforces no ACLs (the embedded Kafka of sluice dev stores them and
// checks none) or lets anonymous clients do anything, ACLs included: either
// way the tenant's ACLs keep no other client off its topics.
func unenforcedACLsWarning(tenant string) string {
	return fmt.Sprintf("warning: ACLs are not enforced here: Kafka let this connection, which authenticates no one (no %s), set them, "+
		"so any client without credentials may do the same (the embedded Kafka of 'sluice dev' enforces no ACLs): tenant %s's topics are not protected from other clients",
		config.Var("KAFKA_SASL_MECHANISM"), tenant)
}

// anonymous reports whether c authenticates no one: no SASL mechanism and
// no client certificate.
func anonymous(c kafka.Config) bool {
	m := strings.TrimSpace(c.SASLMechanism)
	return (m == "" || strings.EqualFold(m, kafka.SASLNone)) && c.TLSCertFile == ""
}

// newPassword returns a random password of 32 URL-safe characters.
func newPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}
