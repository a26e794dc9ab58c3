package router

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// registry holds each tenant's pipelines: the version in force, the last
// good one before it (the fallback), and what the config topic says.
type registry struct {
	m       *metrics
	changed chan struct{} // signalled (without blocking) at every change

	mu      sync.RWMutex
	tenants map[string]*tenantPipes
}

type tenantPipes struct {
	exprStreak atomic.Int64 // expression failures in a row of the version in force

	current  *Pipeline // in force; PassThrough when there is none
	previous *Pipeline // fallback when current fails at run time; nil: pass-through
	stored   int64     // version last seen in the config topic (0: none or unreadable)
	err      string    // last load or run-time error
	since    time.Time
	paused   string    // why the tenant's records are held back, if they are
	until    time.Time // when it is resumed (zero: when its work is done)
}

func newRegistry(m *metrics) *registry {
	return &registry{m: m, changed: make(chan struct{}, 1), tenants: map[string]*tenantPipes{}}
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
	if t, ok := r.tenants[tenant]; ok {
		return t.current
	}
	t = &tenantPipes{current: PassThrough(tenant), since: time.Now()}
	r.tenants[tenant] = t
	return t.current
}

// apply takes a pipeline document from the config topic (nil: deleted). A
// document that does not load leaves the version in force alone.
func (r *registry) apply(tenant string, src []byte) {
	defer r.signal()
	var p *Pipeline
	var err error
	if src != nil {
		p, err = safeLoad(src)
		if err == nil && p.Tenant != tenant {
			err = fmt.Errorf("pipeline names tenant %q but is stored under %q", p.Tenant, tenant)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tenants[tenant]
	if !ok {
		t = &tenantPipes{current: PassThrough(tenant)}
		r.tenants[tenant] = t
	}
	t.since = time.Now()
	switch {
	case src == nil:
		t.current, t.previous, t.stored, t.err = PassThrough(tenant), nil, 0, ""
	case err != nil:
		r.m.loadErrors.WithLabelValues(tenant).Inc()
		t.stored, _ = storedVersion(tenant, src)
		t.err = fmt.Sprintf("stored pipeline not applied: %v", err)
	default:
		if t.current.Version != 0 {
			t.previous = t.current
		}
		t.current, t.stored, t.err = p, p.Version, ""
		t.exprStreak.Store(0)
	}
	r.m.version.WithLabelValues(tenant).Set(float64(t.current.Version))
}

// exprFallbackStreak is how many records in a row must fail with an
// expression error before a version counts as broken: one record with an
// unexpected value goes to the dead-letter topic, a version whose
// expression fails on everything is taken out of service.
const exprFallbackStreak = 10

// broken reports whether a record's outcome shows the tenant's version in
// force to be broken: it panicked, or its expressions failed on
// exprFallbackStreak records in a row.
func (r *registry) broken(tenant string, f *Failure) bool {
	r.mu.RLock()
	t := r.tenants[tenant]
	r.mu.RUnlock()
	switch {
	case t == nil:
		return false
	case f == nil || f.Reason != ReasonExpr:
		if t.exprStreak.Load() != 0 {
			t.exprStreak.Store(0)
		}
		return f != nil && f.Reason == ReasonPanic
	default:
		return t.exprStreak.Add(1) >= exprFallbackStreak
	}
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

// fail takes a pipeline that failed at run time out of service for its
// tenant: the previous good version (or pass-through) takes over.
func (r *registry) fail(tenant string, p *Pipeline, f *Failure) {
	defer r.signal()
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tenants[tenant]
	if t == nil || t.current != p {
		return // already replaced
	}
	r.m.fallbacks.WithLabelValues(tenant).Inc()
	t.exprStreak.Store(0)
	t.current, t.previous = t.previous, nil
	if t.current == nil {
		t.current = PassThrough(tenant)
	}
	t.err = fmt.Sprintf("version %d failed at run time and was taken out of service: %v", p.Version, f)
	t.since = time.Now()
	r.m.version.WithLabelValues(tenant).Set(float64(t.current.Version))
}

func (r *registry) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *registry) statuses(router string) []RouterStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]RouterStatus, 0, len(r.tenants))
	for tenant, t := range r.tenants {
		out = append(out, RouterStatus{Router: router, Tenant: tenant, Stored: t.stored, Applied: t.current.Version, Error: t.err, Since: t.since,
			Paused: t.paused, PausedUntil: t.until})
	}
	return out
}

// setPaused records why a tenant's records are held back, for its status.
func (r *registry) setPaused(tenant, reason string, until time.Time) {
	r.mu.Lock()
	t, ok := r.tenants[tenant]
	if !ok {
		t = &tenantPipes{current: PassThrough(tenant), since: time.Now()}
		r.tenants[tenant] = t
	}
	changed := t.paused != reason
	t.paused, t.until = reason, until
	r.mu.Unlock()
	if changed {
		r.signal()
	}
}

// setResumed clears what setPaused recorded.
func (r *registry) setResumed(tenant string) {
	r.mu.Lock()
	t, ok := r.tenants[tenant]
	changed := ok && t.paused != ""
	if ok {
		t.paused, t.until = "", time.Time{}
	}
	r.mu.Unlock()
	if changed {
		r.signal()
	}
}
