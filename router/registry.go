package router

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Retirement of a version that fails at run time: it must fail on every
// record for at least retireMinRecords records and retireMinWindow with no
// success in between. A record-level error only dead-letters its record.
const (
	retireMinRecords = 1000
	retireMinWindow  = time.Minute
)

// registry holds each tenant's pipelines: the version in force, the last
// good one before it (the fallback), what the config topics say, and what
// the routers share through the status topic (the last good document, the
// retired versions).
type registry struct {
	m       *metrics
	changed chan struct{} // signalled (without blocking) at every change

	mu         sync.RWMutex
	minRecords int64         // retireMinRecords, smaller in tests
	minWindow  time.Duration // retireMinWindow, smaller in tests
	tenants    map[string]*tenantPipes
	dirty      map[string]struct{} // tenants whose status changed since the last drain
}

type tenantPipes struct {
	// The failure streak of the version in force: records in a row that
	// failed with a pipeline fault, and when the first of them did (unix
	// nanoseconds). observe is called for every record, so these are
	// atomics read under the registry's read lock.
	failStreak atomic.Int64
	failSince  atomic.Int64

	current     *Pipeline // in force; PassThrough when there is none
	currentSrc  []byte
	previous    *Pipeline // fallback when current is retired; nil: none
	previousSrc []byte
	fromGood    bool  // current is the good/ document, used because the stored one did not load or was retired
	stored      int64 // version last seen in the config topic (0: none or unreadable)
	deleted     bool  // the pipeline was deleted: the good/ record goes too

	own    bool   // the tenant's own config topic has held a pipeline record
	loaded bool   // its config has been read (followed, or read at first sight)
	legacy []byte // the tenant's document in the legacy config topic, while own is false

	good           *GoodPipeline    // as in the status topic, or as this router wrote it
	goodPending    bool             // good must be written (or deleted, when nil)
	retired        []RetiredVersion // as in the status topic, plus this router's
	retiredPending bool             // retired must be written

	err         string // last load or run-time error
	paused      string
	pausedUntil time.Time
	since       time.Time
}

func newRegistry(m *metrics) *registry {
	return &registry{m: m, changed: make(chan struct{}, 1), tenants: map[string]*tenantPipes{},
		dirty: map[string]struct{}{}, minRecords: retireMinRecords, minWindow: retireMinWindow}
}

func (r *registry) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.tenants)
}

// get returns the pipeline in force for tenant (pass-through without one).
func (r *registry) get(tenant string) *Pipeline {
	r.mu.RLock()
	t, ok := r.tenants[tenant]
	var p *Pipeline
	if ok {
		p = t.current
	}
	r.mu.RUnlock()
	if ok {
		return p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tenant(tenant).current
}

// tenant returns tenant's entry, making it; r.mu must be held for writing.
func (r *registry) tenant(tenant string) *tenantPipes {
	t, ok := r.tenants[tenant]
	if !ok {
		t = &tenantPipes{current: PassThrough(tenant), since: time.Now()}
		r.tenants[tenant] = t
		r.dirty[tenant] = struct{}{}
	}
	return t
}

// changedLocked records a change of t's status; r.mu must be held for
// writing.
func (r *registry) changedLocked(tenant string, t *tenantPipes) {
	t.since = time.Now()
	r.dirty[tenant] = struct{}{}
	r.m.version.WithLabelValues(tenant).Set(float64(t.current.Version))
	r.signal()
}

// loadedOnce reports whether tenant's config has been read.
func (r *registry) loadedOnce(tenant string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.tenants[tenant]
	return ok && t.loaded
}

// markLoaded records that tenant's config was read and holds no pipeline.
func (r *registry) markLoaded(tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tenant(tenant).loaded = true
}

// event takes a change seen by FollowConfig.
func (r *registry) event(ev ConfigEvent) {
	switch ev.Source {
	case SourceTenant, SourceLegacy:
		r.apply(ev.Tenant, ev.Src, ev.Source == SourceLegacy)
	case SourceGood:
		r.setGood(ev.Tenant, ev.Good)
	case SourceRetired:
		r.setRetired(ev.Tenant, ev.Retired)
	}
}

// apply takes a pipeline document from a config topic (empty: deleted). A
// document of the legacy topic counts only while the tenant's own config
// topic has held none. A document that does not load leaves the version in
// force alone; when that is pass-through (a router starting), the tenant's
// last good document takes over.
func (r *registry) apply(tenant string, src []byte, legacy bool) {
	var p *Pipeline
	var err error
	if len(src) > 0 {
		p, err = safeLoad(src)
		if err == nil && p.Tenant != tenant {
			err = fmt.Errorf("%w: the document names tenant %q but is stored for tenant %q; it is ignored", ErrInvalidSpec, p.Tenant, tenant)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tenant(tenant)
	t.loaded = true
	if !legacy && len(src) > 0 && t.own && p != nil {
		// A router reads a new tenant's topic at first sight of its records
		// (loaded), then follows it from its start: what it replays is
		// history, older than what is in force, or the same document.
		if p.Version < t.stored || bytes.Equal(src, t.currentSrc) {
			return
		}
	}
	if legacy {
		t.legacy = src
		if t.own {
			return
		}
	} else {
		t.own, t.legacy = true, nil
	}
	if err == nil && p != nil {
		if rv, ok := t.retiredVersion(p.Version); ok {
			err = fmt.Errorf("version %d was taken out of service by router %s at %s: %s", p.Version, rv.Router, rv.At.UTC().Format(time.RFC3339), rv.Reason)
		}
	}
	switch {
	case len(src) == 0:
		t.current, t.currentSrc, t.previous, t.previousSrc = PassThrough(tenant), nil, nil, nil
		t.stored, t.err, t.fromGood, t.deleted = 0, "", false, true
		if t.good != nil {
			t.good, t.goodPending = nil, true
		}
	case err != nil:
		r.m.loadErrors.WithLabelValues(tenant).Inc()
		t.stored, _ = storedVersion(tenant, src)
		t.deleted = false
		t.err = fmt.Sprintf("stored pipeline not applied: %v", err)
		r.useGoodLocked(tenant, t)
	default:
		if t.current.Version != 0 {
			t.previous, t.previousSrc = t.current, t.currentSrc
		}
		t.current, t.currentSrc, t.stored, t.err = p, src, p.Version, ""
		t.fromGood, t.deleted = false, false
		t.failStreak.Store(0)
		if t.good == nil || t.good.Version != p.Version {
			t.goodPending = true
		}
	}
	r.changedLocked(tenant, t)
}

// useGoodLocked puts the tenant's last good document in force when nothing
// else is (pass-through while a stored version exists but does not load).
func (r *registry) useGoodLocked(tenant string, t *tenantPipes) {
	if t.current.Version != 0 || t.stored == 0 || t.good == nil {
		return
	}
	if _, retired := t.retiredVersion(t.good.Version); retired {
		return
	}
	p, err := safeLoad([]byte(t.good.Source))
	if err != nil || p.Tenant != tenant {
		return
	}
	t.current, t.currentSrc, t.fromGood = p, []byte(t.good.Source), true
	t.failStreak.Store(0)
	t.err += fmt.Sprintf("; applying the last good version %d instead", p.Version)
}

// setGood takes the good/<tenant> record of the status topic.
func (r *registry) setGood(tenant string, g *GoodPipeline) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tenant(tenant)
	t.good = g
	// Another router's write (or this one's, read back) settles what this
	// router would write, unless it knows better.
	t.goodPending = r.wantGoodLocked(t)
	before := t.current
	r.useGoodLocked(tenant, t)
	if t.current != before {
		r.changedLocked(tenant, t)
	}
}

// wantGoodLocked reports whether the good/ record of t must change: the
// version in force came from the config topic and differs from it, or the
// pipeline was deleted and it still exists.
func (r *registry) wantGoodLocked(t *tenantPipes) bool {
	switch {
	case t.deleted:
		return t.good != nil
	case t.current.Version == 0 || t.fromGood:
		return false
	}
	return t.good == nil || t.good.Version != t.current.Version
}

// setRetired takes the retired/<tenant> record of the status topic: a
// version in force that another router retired is retired here too.
func (r *registry) setRetired(tenant string, rv *Retired) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tenant(tenant)
	if rv != nil {
		for _, v := range rv.Versions {
			if _, ok := t.retiredVersion(v.Version); !ok {
				t.retired = append(t.retired, v)
			}
		}
		slices.SortFunc(t.retired, func(a, b RetiredVersion) int { return int(a.Version - b.Version) })
		if n := len(t.retired); n > maxRetired {
			t.retired = slices.Delete(t.retired, 0, n-maxRetired)
		}
	}
	if v, ok := t.retiredVersion(t.current.Version); ok && t.current.Version != 0 {
		r.retireLocked(tenant, t, fmt.Sprintf("version %d was taken out of service by router %s: %s", v.Version, v.Router, v.Reason))
	}
}

func (t *tenantPipes) retiredVersion(version int64) (RetiredVersion, bool) {
	for _, v := range t.retired {
		if v.Version == version {
			return v, true
		}
	}
	return RetiredVersion{}, false
}

// observe is called after every Process of a record of tenant by p. A
// record-level failure (a line that does not parse, an expression that
// fails on this record's values, a cost limit) only dead-letters that
// record. p is retired, and observe returns true so that the caller
// processes the record again with get(tenant), when it panicked, or when
// it failed on every record for a sustained window: at least minRecords
// records and minWindow without a success. Only pipeline faults count
// towards the window (expression and field errors, not a line a parse or
// timestamp step cannot read, nor a tenant without a pseudonym key: the
// version before, or pass-through, would let through what the pipeline
// pseudonymizes).
func (r *registry) observe(tenant string, p *Pipeline, res Result) (retry bool) {
	if p == nil || p.Version == 0 {
		return false
	}
	r.mu.RLock()
	t := r.tenants[tenant]
	stale := t == nil || t.current != p
	minRecords, minWindow := r.minRecords, r.minWindow
	r.mu.RUnlock()
	switch {
	case stale:
		return false // replaced meanwhile: this outcome says nothing of the version in force
	case res.DLQ != nil && res.DLQ.Reason == ReasonPanic:
		return r.retire(tenant, p, fmt.Sprintf("version %d panicked: %v", p.Version, res.DLQ))
	case res.DLQ == nil || res.DLQ.Reason == ReasonParse || res.DLQ.Reason == ReasonTimestamp || res.DLQ.Reason == ReasonPseudonymKeyMissing:
		if t.failStreak.Load() != 0 {
			t.failStreak.Store(0)
		}
		return false
	}
	now := time.Now().UnixNano()
	n := t.failStreak.Add(1)
	if n == 1 {
		t.failSince.Store(now)
	}
	if n < minRecords || time.Duration(now-t.failSince.Load()) < minWindow {
		return false
	}
	return r.retire(tenant, p, fmt.Sprintf("version %d failed on every record (%d in a row over %s), the last with: %v",
		p.Version, n, time.Duration(now-t.failSince.Load()).Round(time.Second), res.DLQ))
}

// safeLoad is Load that turns a panic into an error: one tenant's document
// must never take the router down (and it would again at every start).
func safeLoad(src []byte) (p *Pipeline, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, err = nil, fmt.Errorf("loading the pipeline panicked: %v", v)
		}
	}()
	return Load(src)
}

// retire takes p out of service for tenant and records why, to be
// published as retired/<tenant>. It returns true (the caller retries).
func (r *registry) retire(tenant string, p *Pipeline, reason string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tenants[tenant]
	if t == nil || t.current != p {
		return true // already replaced
	}
	if _, ok := t.retiredVersion(p.Version); !ok {
		t.retired = append(t.retired, RetiredVersion{Version: p.Version, Reason: reason, At: time.Now().UTC()})
		if n := len(t.retired); n > maxRetired {
			t.retired = slices.Delete(t.retired, 0, n-maxRetired)
		}
		t.retiredPending = true
	}
	r.retireLocked(tenant, t, reason)
	return true
}

// retireLocked replaces the version in force, which is retired, by the
// previous one, else the last good document, else pass-through.
func (r *registry) retireLocked(tenant string, t *tenantPipes, reason string) {
	old := t.current
	r.m.fallbacks.WithLabelValues(tenant).Inc()
	t.failStreak.Store(0)
	next, nextSrc, fromGood := PassThrough(tenant), []byte(nil), false
	if t.previous != nil {
		if _, retired := t.retiredVersion(t.previous.Version); !retired {
			next, nextSrc = t.previous, t.previousSrc
		}
	}
	if next.Version == 0 && t.good != nil && t.good.Version != old.Version {
		if _, retired := t.retiredVersion(t.good.Version); !retired {
			if p, err := safeLoad([]byte(t.good.Source)); err == nil && p.Tenant == tenant {
				next, nextSrc, fromGood = p, []byte(t.good.Source), true
			}
		}
	}
	t.current, t.currentSrc, t.previous, t.previousSrc, t.fromGood = next, nextSrc, nil, nil, fromGood
	if t.good != nil && t.good.Version == old.Version {
		// The good/ record must not bring the retired version back: it
		// becomes what is in force now (or goes).
		t.good, t.goodPending = nil, true
		if next.Version != 0 {
			t.good = &GoodPipeline{Tenant: tenant, Version: next.Version, Source: string(nextSrc), At: time.Now().UTC()}
		}
	}
	if next.Version == 0 {
		t.err = reason + "; now passing records through"
	} else {
		t.err = fmt.Sprintf("%s; now applying version %d", reason, next.Version)
	}
	r.changedLocked(tenant, t)
}

// setPaused records that tenant's raw topic is paused, why and until when.
func (r *registry) setPaused(tenant, reason string, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tenant(tenant)
	if t.paused == reason && t.pausedUntil.Equal(until) {
		return
	}
	t.paused, t.pausedUntil = reason, until
	r.changedLocked(tenant, t)
}

// setResumed records that tenant's raw topic is consumed again.
func (r *registry) setResumed(tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tenants[tenant]
	if !ok || t.paused == "" {
		return
	}
	t.paused, t.pausedUntil = "", time.Time{}
	r.changedLocked(tenant, t)
}

func (r *registry) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (t *tenantPipes) status(router, tenant string) RouterStatus {
	return RouterStatus{Router: router, Tenant: tenant, Stored: t.stored, Applied: t.current.Version, Error: t.err,
		Paused: t.paused, PausedUntil: t.pausedUntil, Since: t.since}
}

// statuses returns this router's status of every tenant it knows.
func (r *registry) statuses(router string) []RouterStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]RouterStatus, 0, len(r.tenants))
	for tenant, t := range r.tenants {
		out = append(out, t.status(router, tenant))
	}
	return out
}

// outgoing is what the status publisher writes about one tenant.
type outgoing struct {
	status RouterStatus
	own    bool // the tenant has its own config (and status) topic
	// good is set when good/<tenant> must be written; deleteGood when it
	// must be deleted. retired is set when retired/<tenant> must be written.
	good       *GoodPipeline
	deleteGood bool
	retired    *Retired
}

// drain returns what to publish about the tenants whose status changed
// since the last drain, or about every tenant when all is set, and clears
// the pending good/ and retired/ writes it returns.
func (r *registry) drain(router string, all bool) []outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := r.dirty
	if all {
		names = make(map[string]struct{}, len(r.tenants))
		for tenant := range r.tenants {
			names[tenant] = struct{}{}
		}
	}
	out := make([]outgoing, 0, len(names))
	for tenant := range names {
		t := r.tenants[tenant]
		if t == nil {
			continue
		}
		o := outgoing{status: t.status(router, tenant), own: t.own}
		if t.goodPending {
			t.goodPending = false
			switch {
			case t.deleted:
				t.good, o.deleteGood = nil, true
			case !t.fromGood && t.current.Version != 0 && (t.good == nil || t.good.Version != t.current.Version):
				t.good = &GoodPipeline{Tenant: tenant, Version: t.current.Version, Source: string(t.currentSrc), Router: router, At: time.Now().UTC()}
				o.good = t.good
			case t.good == nil:
				o.deleteGood = true
			default:
				if t.good.Router == "" {
					t.good.Router = router
				}
				o.good = t.good
			}
		}
		if t.retiredPending {
			t.retiredPending = false
			rv := &Retired{Tenant: tenant, Versions: slices.Clone(t.retired)}
			for i := range rv.Versions {
				if rv.Versions[i].Router == "" {
					rv.Versions[i].Router = router
					t.retired[i].Router = router
				}
			}
			o.retired = rv
		}
		out = append(out, o)
	}
	clear(r.dirty)
	return out
}

// repend asks again for the good/ or retired/ record of tenant to be
// written, after a write failed; the next publishing round retries it.
func (r *registry) repend(tenant string, good, retired bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tenants[tenant]; ok {
		t.goodPending = t.goodPending || good
		t.retiredPending = t.retiredPending || retired
		r.dirty[tenant] = struct{}{}
	}
}

// own reports whether tenant has its own config topic (and so a status
// topic of its own).
func (r *registry) own(tenant string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.tenants[tenant]
	return ok && t.own
}
