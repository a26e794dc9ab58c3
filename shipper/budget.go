package shipper

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// budget bounds the bytes the shipper holds: lines read and not yet
// acknowledged by the output, partial messages being joined, overlong line
// heads. The node's budget (SLUICE_SHIPPER_MAX_BUFFERED_BYTES) bounds memory.
//
// Tenants share it so that one tenant whose records Kafka does not
// acknowledge (a stuck partition, a missing topic before it is found out)
// cannot take what the others need, while a tenant alone on a node still
// gets the window it needs to keep Kafka busy:
//
//   - each tenant is guaranteed its share G (SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES,
//     a quarter of the budget by default);
//   - beyond G a tenant borrows from the rest of the budget, but never from
//     the last G bytes, the reserve, which only tenants within their
//     share may take;
//   - so no tenant holds more than the budget less G, and a tenant that
//     gets stuck while holding that much still leaves the others the
//     reserve; one stuck tenant never slows the others, several stuck at
//     once can only until the delivery timeout frees their bytes.
//
// Waiters are served first come, first served within a tenant; a tenant
// that cannot be served does not hold up another that can.
//
// Read buffers are not charged here: they belong to the reader slots, whose
// number is fixed (see Shipper.slots), so their memory is bounded by
// construction and a follower waiting for budget holds none.
type budget struct {
	mu       sync.Mutex
	total    int64 // B
	share    int64 // G, also the reserve
	used     int64
	waiters  []*budgetWaiter // in arrival order
	usedSeen atomic.Int64    // used, for the metrics
}

type budgetWaiter struct {
	s       *share
	n       int64
	granted chan struct{}
}

func newBudget(total, share int64) *budget {
	return &budget{total: total, share: min(share, total)}
}

// share is one tenant's part of the budget.
type share struct {
	b        *budget
	used     int64 // guarded by b.mu
	usedSeen atomic.Int64
}

func (b *budget) newShare() *share { return &share{b: b} }

// fits reports whether s may take n more bytes. b.mu must be held.
func (b *budget) fits(s *share, n int64) bool {
	if b.used+n > b.total {
		return false
	}
	if s.used+n <= b.share {
		return true // within its share: the reserve too
	}
	return b.used+n <= b.total-b.share
}

func (b *budget) take(s *share, n int64) {
	b.used += n
	s.used += n
	b.usedSeen.Store(b.used)
	s.usedSeen.Store(s.used)
}

// waiting reports whether s has a waiter queued. b.mu must be held.
func (b *budget) waiting(s *share) bool {
	for _, w := range b.waiters {
		if w.s == s {
			return true
		}
	}
	return false
}

// tryAcquire takes n bytes without blocking, or nothing.
func (s *share) tryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	b := s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.fits(s, n) || b.waiting(s) {
		return false
	}
	b.take(s, n)
	return true
}

// acquire takes n bytes, blocking until the budget has them or ctx ends.
func (s *share) acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	b := s.b
	b.mu.Lock()
	if b.fits(s, n) && !b.waiting(s) {
		b.take(s, n)
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{s: s, n: n, granted: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-w.granted: // granted meanwhile: give it back
			b.used -= n
			s.used -= n
			b.usedSeen.Store(b.used)
			s.usedSeen.Store(s.used)
			b.grant()
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
			b.grant() // a tenant queued behind w may fit now
		}
		return ctx.Err()
	}
}

// release gives n bytes back. Safe from any goroutine.
func (s *share) release(n int64) {
	if n <= 0 {
		return
	}
	b := s.b
	b.mu.Lock()
	b.used -= n
	s.used -= n
	b.usedSeen.Store(b.used)
	s.usedSeen.Store(s.used)
	if len(b.waiters) > 0 {
		b.grant()
	}
	b.mu.Unlock()
}

// grant serves the waiters that fit, the first of each tenant only, in
// arrival order. b.mu must be held.
func (b *budget) grant() {
	kept := b.waiters[:0]
	for _, w := range b.waiters {
		// kept holds the waiters not served so far: a tenant with one of
		// them waits behind it.
		if !slices.ContainsFunc(kept, func(k *budgetWaiter) bool { return k.s == w.s }) && b.fits(w.s, w.n) {
			b.take(w.s, w.n)
			close(w.granted)
			continue
		}
		kept = append(kept, w)
	}
	clear(b.waiters[len(kept):])
	b.waiters = kept
}
