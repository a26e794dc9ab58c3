package gateway

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// limits are the gateway's bounds on what it holds at once: requests and
// bytes, in all and per tenant. Every bound is taken without waiting: a
// request that would pass one is answered 429 at once, so nothing queues
// behind a flooding tenant, and a tenant's own bound is below the global
// one, so what one tenant holds always leaves room for the others.
type limits struct {
	maxBytes, tenantMaxBytes int64
	maxReqs, tenantMaxReqs   int

	mu      sync.Mutex
	bytes   int64
	reqs    int
	tenants map[string]*tenantState
}

// tenantState is what the gateway knows of one tenant: what it holds now,
// and until when Kafka throttles its user.
type tenantState struct {
	name  string
	bytes int64 // guarded by limits.mu
	reqs  int   // guarded by limits.mu
	// throttledUntil is when Kafka's quota throttling of the tenant's
	// user ends, in Unix nanoseconds.
	throttledUntil atomic.Int64
}

func newLimits(cfg *Config) *limits {
	return &limits{
		maxBytes: cfg.MaxInflightBytes, tenantMaxBytes: cfg.tenantMaxInflight(),
		maxReqs: cfg.MaxRequests, tenantMaxReqs: cfg.tenantMaxRequests(),
		tenants: make(map[string]*tenantState),
	}
}

// tenant returns the state of tenant, made on first use. Only tenants
// whose credentials Kafka accepted get one, so the map is as large as the
// number of tenants.
func (l *limits) tenant(name string) *tenantState {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.tenants[name]
	if t == nil {
		t = &tenantState{name: name}
		l.tenants[name] = t
	}
	return t
}

// startRequest takes a request slot of the gateway, if one is free.
func (l *limits) startRequest() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reqs >= l.maxReqs {
		return false
	}
	l.reqs++
	return true
}

func (l *limits) endRequest() {
	l.mu.Lock()
	l.reqs--
	l.mu.Unlock()
}

// startTenantRequest takes one of t's request slots, if one is free.
func (l *limits) startTenantRequest(t *tenantState) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.reqs >= l.tenantMaxReqs {
		return false
	}
	t.reqs++
	return true
}

func (l *limits) endTenantRequest(t *tenantState) {
	l.mu.Lock()
	t.reqs--
	l.mu.Unlock()
}

// take charges n bytes to t and to the gateway, if both have room.
func (l *limits) take(t *tenantState, n int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.bytes+n > l.tenantMaxBytes || l.bytes+n > l.maxBytes {
		return false
	}
	t.bytes += n
	l.bytes += n
	return true
}

// give returns n bytes taken for t.
func (l *limits) give(t *tenantState, n int64) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	t.bytes -= n
	l.bytes -= n
	l.mu.Unlock()
}

// inflight returns the bytes held in all.
func (l *limits) inflight() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// throttled returns how long Kafka still throttles t's user (0: not).
func (t *tenantState) throttled(now time.Time) time.Duration {
	return time.Duration(t.throttledUntil.Load() - now.UnixNano())
}

// throttle records that Kafka throttles t's user for d from now.
func (t *tenantState) throttle(now time.Time, d time.Duration) {
	until := now.Add(d).UnixNano()
	for {
		old := t.throttledUntil.Load()
		if old >= until || t.throttledUntil.CompareAndSwap(old, until) {
			return
		}
	}
}

// errBudget is a request body that passed its tenant's or the gateway's
// byte bound while being read.
var errBudget = errors.New("in-flight byte bound reached")

// bodyCharge is what a byte of a request body is charged while the body
// is read and decoded: the byte itself, and as much again for the records
// it becomes. Charging the records before they exist refuses a request
// that cannot fit while its body is read, before any work is spent on it.
const bodyCharge = 2

// budgetReader charges what it reads to a tenant (bodyCharge per byte), in
// steps of budgetStep, and fails with errBudget when the bound is reached.
// held is what it took, for the caller to give back.
type budgetReader struct {
	r    io.Reader
	l    *limits
	t    *tenantState
	read int64
	held int64
}

const budgetStep = 64 << 10

func (b *budgetReader) Read(p []byte) (int, error) {
	// A caller's buffer may be far larger than the body: read a step at
	// most, so that what is read and not charged stays below a step.
	if len(p) > budgetStep {
		p = p[:budgetStep]
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if need := b.read * bodyCharge; need > b.held {
		step := max(int64(budgetStep), need-b.held)
		if !b.l.take(b.t, step) {
			return n, errBudget
		}
		b.held += step
	}
	return n, err
}
