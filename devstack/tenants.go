package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/demo"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/router"
)

// tenantMaker makes the dev stack's tenants: topics only (no user), with
// ACLs where the cluster has an authorizer. It makes the demo's tenants, a
// tenant for every namespace that appears in the node tree and every
// tenant a pipeline is applied for. (sluice demo makes the demo's tenants
// on a real cluster with code of its own, cmd/sluice/demo.go: the
// production image carries that command, and no code of this package.)
type tenantMaker struct {
	adm    *kadm.Client
	topics kafka.Topics
	log    *slog.Logger

	mu     sync.Mutex // ensure runs from the watcher and the route follower
	known  map[string]bool
	warned bool // about a cluster without an authorizer
}

func newTenantMaker(adm *kadm.Client, topics kafka.Topics, log *slog.Logger) *tenantMaker {
	return &tenantMaker{adm: adm, topics: topics, log: log, known: map[string]bool{}}
}

func (d *tenantMaker) ensure(ctx context.Context, tenant string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known[tenant] {
		return nil
	}
	res, err := kafka.ProvisionTenant(ctx, d.adm, d.topics, tenant, kafka.TenantSpec{Partitions: 3, ReplicationFactor: -1})
	if err != nil {
		return fmt.Errorf("tenant %s: %w", tenant, err)
	}
	if len(res.TopicsCreated) > 0 {
		d.log.Info("tenant created", "tenant", tenant, "topics", res.TopicsCreated)
	}
	if res.ACLsSkipped && !d.warned {
		d.log.Warn("the Kafka cluster has no authorizer (SECURITY_DISABLED): no ACLs were set, so tenants' topics are not protected from other clients")
		d.warned = true
	}
	d.known[tenant] = true
	return nil
}

// setup makes the shared compacted topics, the routers' status topic and
// the tenants' index settings topic (which indexers follow), and, with
// demo, the demo tenants, their pipelines (a stored version as high is
// left alone) and their dataset topics.
func (d *tenantMaker) setup(ctx context.Context, cl *kgo.Client, withDemo bool) error {
	if err := router.EnsureCompactedTopic(ctx, d.adm, d.topics.Status()); err != nil {
		return fmt.Errorf("status topic: %w", err)
	}
	if err := router.EnsureCompactedTopic(ctx, d.adm, d.topics.Tenants()); err != nil {
		return fmt.Errorf("tenant settings topic: %w", err)
	}
	if !withDemo {
		return nil
	}
	for _, tenant := range slices.Sorted(maps.Keys(demo.Pipelines)) {
		src := []byte(demo.Pipelines[tenant])
		if err := d.ensure(ctx, tenant); err != nil {
			return err
		}
		// As sluice pipeline apply does: the dataset topics first, so that
		// no routed record finds its topic missing.
		p, err := router.Load(src)
		if err != nil {
			return fmt.Errorf("demo pipeline %s: %w", tenant, err)
		}
		if err := d.ensureDatasets(ctx, tenant, p); err != nil {
			return fmt.Errorf("demo pipeline %s: %w", tenant, err)
		}
		if _, err := router.ApplyPipeline(ctx, cl, d.topics, src); err != nil && !errors.Is(err, router.ErrVersionNotIncreasing) {
			return fmt.Errorf("demo pipeline %s: %w", tenant, err)
		}
	}
	return nil
}

// ensureDatasets creates the dataset topics of a tenant's pipeline.
func (d *tenantMaker) ensureDatasets(ctx context.Context, tenant string, p *router.Pipeline) error {
	st, err := kafka.EnsureDatasetTopics(ctx, d.adm, d.topics, tenant, p.Datasets())
	if err != nil {
		return err
	}
	for _, topic := range st.Created {
		d.log.Info("dataset topic created", "tenant", tenant, "topic", topic)
	}
	var errs []error
	for topic, err := range st.Missing {
		errs = append(errs, fmt.Errorf("create dataset topic %s: %w", topic, err))
	}
	return errors.Join(errs...)
}

// followRoutes creates the dataset topics of every pipeline applied
// (the demo's and the user's, also those applied with --allow-missing-datasets
// or to the legacy config topic), so that routing works in dev without an
// administrator.
func (d *tenantMaker) followRoutes(ctx context.Context, opts []kgo.Opt) error {
	// New tenants' config topics are found at each metadata refresh.
	opts = append(slices.Clip(opts), kgo.MetadataMaxAge(2*time.Second), kgo.MetadataMinAge(500*time.Millisecond))
	err := router.FollowConfig(ctx, opts, d.topics, func(ev router.ConfigEvent) {
		tenant, src := ev.Tenant, ev.Src
		if ev.Source != router.SourceTenant && ev.Source != router.SourceLegacy {
			return
		}
		p, err := router.Load(src)
		if err != nil || len(src) == 0 {
			return // the router reports a pipeline that does not load
		}
		if err := d.ensure(ctx, tenant); err != nil {
			d.log.Warn("making a tenant for a pipeline failed", "tenant", tenant, "err", err)
			return
		}
		if err := d.ensureDatasets(ctx, tenant, p); err != nil && ctx.Err() == nil {
			d.log.Warn("creating a dataset topic failed", "tenant", tenant, "err", err)
		}
	}, func() {})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// watch looks for new namespaces in the node tree every second.
func (d *tenantMaker) watch(ctx context.Context, node *nodelog.Node) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, ns := range treeNamespaces(node) {
			if err := d.ensure(ctx, ns); err != nil && ctx.Err() == nil {
				d.log.Warn("making a tenant for a new namespace failed; retrying", "namespace", ns, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// treeNamespaces returns the namespaces of the containers in the node
// tree, from the names of their var/log/containers links
// (<pod>_<namespace>_<container>-<id>.log); names that are not tenant
// names are left out.
func treeNamespaces(tree *nodelog.Node) []string {
	links, _ := filepath.Glob(tree.ContainersGlob())
	var out []string
	for _, l := range links {
		parts := strings.Split(strings.TrimSuffix(filepath.Base(l), ".log"), "_")
		if len(parts) != 3 || kafka.ValidateTenant(parts[1]) != nil || slices.Contains(out, parts[1]) {
			continue
		}
		out = append(out, parts[1])
	}
	return out
}
