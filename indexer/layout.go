package indexer

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
)

// A layout says which indices hold a tenant's documents.
//
//   - dedicated: the tenant's own daily indices,
//     <prefix>-<tenant>[.<dataset>]-YYYY.MM.DD. Isolation by index
//     privileges, retention per tenant; each tenant costs shards every day.
//   - shared: one daily index for every tenant in this layout,
//     <prefix>-_shared[.<dataset>]-YYYY.MM.DD, each bulk action routed by
//     tenant ("routing":"<tenant>"): a tenant's documents sit on one shard,
//     re-sends of an _id reach that shard (so create still answers 409 for
//     a duplicate) and a tenant's searches, routed likewise, hit one shard.
//     Isolation needs document-level security on the tenant field; the
//     indices are deleted by day with the default retention.
//
// Tenant ids are DNS labels ([a-z0-9-], starting with a letter or digit),
// so no tenant's dedicated index can be named <prefix>-_shared-...: the
// underscore keeps the two apart. A tenant's datasets follow its layout:
// in the shared layout they go to <prefix>-_shared.<dataset>-..., one
// index a day per dataset name, shared by the tenants routing to a dataset
// of that name (documents do not say their dataset; the index name does,
// in both layouts).
type Layout uint8

const (
	// LayoutDedicated gives a tenant its own daily indices (the default).
	LayoutDedicated Layout = iota
	// LayoutShared puts a tenant's documents in the shared daily indices.
	LayoutShared
)

// SharedName stands for the tenant in the names of the shared indices,
// <prefix>-_shared[.<dataset>]-YYYY.MM.DD. No tenant id can be it.
const SharedName = "_shared"

func (l Layout) String() string {
	if l == LayoutShared {
		return "shared"
	}
	return "dedicated"
}

// ParseLayout reads a layout name: dedicated or shared.
func ParseLayout(s string) (Layout, error) {
	switch strings.TrimSpace(s) {
	case "dedicated":
		return LayoutDedicated, nil
	case "shared":
		return LayoutShared, nil
	}
	return 0, fmt.Errorf("%q is not a layout (dedicated or shared)", s)
}

// ParseLayoutOverrides reads tenant=layout rules.
func ParseLayoutOverrides(rules []string) (map[string]Layout, error) {
	out := make(map[string]Layout, len(rules))
	for _, r := range rules {
		tenant, name, ok := strings.Cut(strings.TrimSpace(r), "=")
		if !ok {
			return nil, fmt.Errorf("%q is not tenant=layout", r)
		}
		if err := kafka.ValidateTenant(tenant); err != nil {
			return nil, err
		}
		l, err := ParseLayout(name)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", r, err)
		}
		if _, dup := out[tenant]; dup {
			return nil, fmt.Errorf("tenant %q appears twice", tenant)
		}
		out[tenant] = l
	}
	return out, nil
}

// layouts is the layout of every tenant: a default, the operator's
// overrides and the tenants' records in <prefix>.tenants.
type layouts struct {
	def       Layout
	overrides map[string]Layout
	records   *tenantSettings // nil: none (as when checking the settings)
}

// of returns the layout of tenant: its SLUICE_INDEXER_LAYOUT_OVERRIDES
// entry (the indexer operator's word wins), else the layout of its record
// in <prefix>.tenants as last read, else SLUICE_INDEXER_LAYOUT.
func (l layouts) of(tenant string) Layout {
	if v, ok := l.overrides[tenant]; ok {
		return v
	}
	if s, ok := l.records.load().get(tenant); ok && s.Layout != kafka.TenantLayoutDefault {
		if v, err := ParseLayout(s.Layout); err == nil {
			return v
		}
	}
	return l.def
}

// layoutsOf reads the layout settings of cfg (checked by Validate).
func layoutsOf(cfg *Config) layouts {
	def, _ := ParseLayout(cfg.Layout)
	overrides, _ := ParseLayoutOverrides(cfg.LayoutOverrides)
	return layouts{def: def, overrides: overrides}
}

// family is a series of daily indices: a tenant's (name is the tenant) or
// the shared ones (name is SharedName), of the main parsed topic (dataset
// "") or of a dataset.
type family struct {
	name, dataset string
}

// route is how the documents of one parsed topic are indexed, worked out
// once per topic and tenant settings snapshot (a new snapshot may move the
// tenant to the other layout): the family of their indices and whether
// they are routed by tenant (the shared layout).
type route struct {
	fam    family
	tenant string
	shared bool
	noted  atomic.Int64 // the families epoch when last noted
}

// routes works out the route of a parsed topic and notes the families
// written since local midnight, for precreate. A route is worked out once
// per topic and kept with the topic's other facts (topicInfo, cached by
// the poll loop until the tenants' settings change); noting it costs an
// atomic load per document. Safe for concurrent use.
type routes struct {
	once     sync.Once
	settings *tenantSettings // the tenants' records (nil: none); set before init
	layouts  layouts
	fams     *families // nil: families are not tracked
}

// init sets the layouts and, when precreation is on, the families to
// note. Only the first call counts.
func (rs *routes) init(cfg *Config) {
	rs.once.Do(func() {
		rs.layouts = layoutsOf(cfg)
		rs.layouts.records = rs.settings
		if cfg.PrecreateWindow > 0 {
			rs.fams = newFamilies(maxFamilies)
		}
	})
}

// route returns the route of the documents of a topic whose tenant and
// dataset are ti's.
func (rs *routes) route(cfg *Config, ti topicInfo) *route {
	rs.init(cfg)
	r := &route{tenant: ti.tenant, fam: family{name: ti.tenant, dataset: ti.dataset}}
	r.noted.Store(-1)
	if rs.layouts.of(ti.tenant) == LayoutShared {
		r.shared, r.fam.name = true, SharedName
	}
	return r
}

// note records that a document was written to r's family (once per day
// and route).
func (rs *routes) note(r *route) {
	if rs.fams != nil {
		if epoch := rs.fams.epoch.Load(); r.noted.Load() != epoch {
			rs.fams.note(r.fam)
			r.noted.Store(epoch)
		}
	}
}

// maxFamilies bounds the families precreate remembers for a day.
const maxFamilies = 100_000

// families are the index families written to since the last rotation
// (local midnight, see precreator), in the order first written.
type families struct {
	epoch atomic.Int64 // raised by rotate

	mu      sync.Mutex
	seen    map[family]struct{}
	list    []family
	limit   int
	dropped int // families not remembered since the rotation (over limit)
}

func newFamilies(limit int) *families {
	return &families{seen: map[family]struct{}{}, limit: limit}
}

func (f *families) note(fam family) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seen[fam]; ok {
		return
	}
	if len(f.list) >= f.limit {
		f.dropped++
		return
	}
	f.seen[fam] = struct{}{}
	f.list = append(f.list, fam)
}

// since returns the families first written after the first i, and how
// many there are in all.
func (f *families) since(i int) ([]family, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i > len(f.list) {
		i = len(f.list)
	}
	return append([]family(nil), f.list[i:]...), len(f.list)
}

// rotate forgets every family: a new day starts. It returns how many
// families were not remembered for being over the limit.
func (f *families) rotate() (dropped int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dropped = f.dropped
	clear(f.seen)
	f.list, f.dropped = nil, 0
	f.epoch.Add(1)
	return dropped
}

func (f *families) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.list)
}

// validateLayout checks the layout settings, and that no tenant in the
// shared layout has a retention override: a shared index holds every
// shared tenant's documents of a day, so it is deleted whole, by day, with
// SLUICE_INDEXER_RETENTION_DAYS. (The tenants' records in <prefix>.tenants
// are not settings of the indexer and are not checked here: a record's
// retention only ever applies to the tenant's dedicated indices, by their
// names, see retention.)
func (c *Config) validateLayout(retentionOverrides map[string]int) error {
	var p config.Problems
	def, err := ParseLayout(c.Layout)
	if err != nil {
		p.Add(config.Var("INDEXER_LAYOUT"), "%v", err)
	}
	overrides, err := ParseLayoutOverrides(c.LayoutOverrides)
	if err != nil {
		p.Add(config.Var("INDEXER_LAYOUT_OVERRIDES"), "%v", err)
	}
	if c.SharedShards < 1 || c.SharedShards > 1024 {
		p.Add(config.Var("INDEXER_SHARED_SHARDS"), "must be between 1 and 1024, got %d", c.SharedShards)
	}
	if c.PrecreateWindow < 0 || c.PrecreateWindow > 12*time.Hour {
		p.Add(config.Var("INDEXER_PRECREATE_WINDOW"), "must be between 0 (off) and 12h, got %s", c.PrecreateWindow)
	}
	l := layouts{def: def, overrides: overrides}
	for _, tenant := range slices.Sorted(maps.Keys(retentionOverrides)) {
		if l.of(tenant) == LayoutShared {
			p.Add(config.Var("INDEXER_RETENTION_OVERRIDES"), "tenant %q is in the shared layout, whose indices are deleted by day with SLUICE_INDEXER_RETENTION_DAYS for every tenant in them; to give it its own retention, make it dedicated (SLUICE_INDEXER_LAYOUT_OVERRIDES=%s=dedicated)", tenant, tenant)
		}
	}
	return p.Err()
}
