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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/resources"
)

func tenantUsage(w io.Writer) {
	fmt.Fprintf(w, `Usage: sluice tenant <subcommand> [flags]

Makes and removes tenants: their topics (<prefix>.raw, .parsed and .dlq.<tenant>, route streams
<prefix>.parsed.<tenant>.<stream>, and the compacted <prefix>.config.<tenant> and
<prefix>.status.<tenant>), a SCRAM-SHA-512 Kafka user named after the tenant, its ACLs and quotas.
Run with administrator Kafka credentials.

The tenant's user may: write its raw topic; read its parsed, stream and dead-letter topics; create
its own stream topics (<prefix>.parsed.<tenant>.*, so that sluice pipeline apply makes those a
pipeline routes to; bounded by the controller mutation quota); read and write its pipeline
(<prefix>.config.<tenant>); read the routers' status of it (<prefix>.status.<tenant>); use consumer
groups <tenant>.*. Nothing of any other tenant. Quotas are set by default (produce 5 MiB/s, fetch
10 MiB/s, 10 partition mutations/s); 0 means unlimited and must be asked for.

Subcommands:
  create [flags] NAME    create (or update) a tenant; prints the settings it needs, its password once,
                         and an Elasticsearch role for its indices
  list                   list tenants (those with a raw topic)
  delete --yes NAME      delete a tenant's topics, user, ACLs and quotas

Run 'sluice tenant <subcommand> --help' for its flags.

Settings (environment variables):
`)
	config.WriteUsage(w, &pipelineConfig{})
}

func runTenant(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		tenantUsage(stderr)
		if len(args) == 0 {
			return errors.New("tenant: no subcommand given")
		}
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("tenant "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := kafkaFlags(fs)
	switch args[0] {
	case "create":
		return tenantCreate(ctx, fs, timeout, args[1:], stdout, stderr)
	case "list":
		if err := parseNoArgs(fs, args[1:]); err != nil {
			return err
		}
		return connectKafka(ctx, *timeout, "sluice-tenant", nil, func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error {
			tenants, err := kafka.ListTenants(ctx, kadm.NewClient(cl), topics)
			for _, t := range tenants {
				fmt.Fprintln(stdout, t)
			}
			return err
		})
	case "delete":
		yes := fs.Bool("yes", false, "really delete (the tenant's topics and their records are gone)")
		tenant, err := parseTenantName(fs, args[1:])
		if err != nil {
			return err
		}
		if !*yes {
			return fmt.Errorf("tenant delete %s: add --yes to delete its topics, user, ACLs and quotas", tenant)
		}
		return connectKafka(ctx, *timeout, "sluice-tenant", nil, func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error {
			if err := kafka.DeleteTenant(ctx, kadm.NewClient(cl), topics, tenant); err != nil {
				return fmt.Errorf("tenant delete %s: %w", tenant, err)
			}
			fmt.Fprintf(stdout, "tenant %s deleted\n", tenant)
			return nil
		})
	}
	tenantUsage(stderr)
	return fmt.Errorf("tenant: unknown subcommand %q", args[0])
}

func tenantCreate(ctx context.Context, fs *flag.FlagSet, timeout *time.Duration, args []string, stdout, stderr io.Writer) error {
	def := kafka.DefaultTenantSpec()
	partitions := fs.Int("partitions", int(def.Partitions), "partitions of each new topic (existing topics are left alone)")
	replication := fs.Int("replication-factor", int(def.ReplicationFactor), "replication factor of each new topic; -1: the broker's default")
	retention := fs.Duration("retention", def.Retention, "retention of each new topic; 0: the broker's default")
	producerRate := fs.Float64("producer-byte-rate", def.ProducerByteRate, "produce quota of the tenant's user, bytes/s; 0: unlimited")
	consumerRate := fs.Float64("consumer-byte-rate", def.ConsumerByteRate, "fetch quota of the tenant's user, bytes/s; 0: unlimited")
	mutationRate := fs.Float64("controller-mutation-rate", def.ControllerMutationRate, "partitions the tenant's user may create or delete per second (its stream topics); 0: unlimited")
	streams := fs.String("streams", "", "comma-separated route streams to make topics for, <prefix>.parsed.<tenant>.<stream>, like the tenant's other topics")
	passwordStdin := fs.Bool("password-stdin", false, "read the user's password from the first line of stdin instead of generating one")
	noUser := fs.Bool("no-user", false, "make no user and set no password (for clusters without SASL, or to keep an existing password)")
	indexPrefix := fs.String("index-prefix", "sluice", "index prefix of the indexers, for the Elasticsearch role")
	output := fs.String("output", "", "yaml: print the Tenant resource (sluice.io/v1alpha1) these flags stand for, owning the namespace of the tenant's name, and do nothing else (for sluice-controller)")
	sharedIndices := fs.Bool("shared-indices", true, "grant the role the tenant's documents in the shared indices, by document-level security (needs a license with it; false on a Basic license, with the tenant kept in the dedicated layout)")
	tenant, err := parseTenantName(fs, args)
	if err != nil {
		return err
	}
	if int(int32(*partitions)) != *partitions || int(int16(*replication)) != *replication {
		return fmt.Errorf("tenant create: --partitions must be 1 to 10000 and --replication-factor -1 or 1 to 32")
	}
	spec := kafka.TenantSpec{
		Partitions: int32(*partitions), ReplicationFactor: int16(*replication), Retention: *retention,
		ProducerByteRate: *producerRate, ConsumerByteRate: *consumerRate, ControllerMutationRate: *mutationRate,
	}
	for _, s := range strings.Split(*streams, ",") {
		if s = strings.TrimSpace(s); s != "" {
			spec.Streams = append(spec.Streams, s)
		}
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("tenant create: %w", err)
	}
	switch *output {
	case "":
	case "yaml":
		credentials := ""
		if !*noUser {
			credentials = tenant
		}
		b, err := resources.TenantYAML(resources.Tenant{Name: tenant, Partitions: spec.Partitions, ReplicationFactor: spec.ReplicationFactor,
			Retention: spec.Retention, Streams: spec.Streams, ProduceRate: spec.ProducerByteRate, FetchRate: spec.ConsumerByteRate,
			MutationRate: spec.ControllerMutationRate, CredentialsNamespace: credentials})
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	default:
		return fmt.Errorf("tenant create: --output %q: want yaml", *output)
	}
	generated := false
	switch {
	case *noUser && *passwordStdin:
		return errors.New("tenant create: --no-user and --password-stdin exclude each other")
	case *passwordStdin:
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
	return connectKafka(ctx, *timeout, "sluice-tenant", nil, func(ctx context.Context, cl *kgo.Client, topics kafka.Topics) error {
		res, err := kafka.ProvisionTenant(ctx, kadm.NewClient(cl), topics, tenant, spec)
		if err != nil {
			return fmt.Errorf("tenant create %s: %w", tenant, err)
		}
		if res.ACLsSkipped {
			fmt.Fprintln(stderr, noAuthorizerWarning(tenant))
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

// newPassword returns a random password of 32 URL-safe characters.
func newPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseTenantName parses flags and exactly one tenant id.
func parseTenantName(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return "", fmt.Errorf("%s: want one tenant name, got %d arguments", fs.Name(), fs.NArg())
	}
	tenant := fs.Arg(0)
	if err := kafka.ValidateTenant(tenant); err != nil {
		return "", fmt.Errorf("%s: %w", fs.Name(), err)
	}
	return tenant, nil
}

// parseNoArgs parses flags and no arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}
