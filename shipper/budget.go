package shipper

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// budget bounds the bytes the shipper holds: lines read and not yet
// acknowledged by the output, partial messages being joined, overlong line
// heads. It has two levels. The node's budget (SLUICE_SHIPPER_MAX_BUFFERED_BYTES)
// bounds memory; each tenant's share (SLUICE_SHIPPER_TENANT_MAX_BUFFERED_BYTES)
// bounds what one tenant can hold of it, so a tenant whose records Kafka does
// not acknowledge (a stuck partition, a missing topic while it is being
// found out) fills its own share and never the whole budget: the others keep
// reading. Bytes are taken from the tenant's share first, then from the node's.
//
// Read buffers are not charged here: they belong to the reader slots, whose
// number is fixed (see Shipper.slots), so their memory is bounded by
// construction and a stream waiting for budget holds none.
type budget struct {
	node *semaphore.Weighted
	used atomic.Int64 // bytes taken from node, for the metrics
}

func newBudget(n int64) *budget { return &budget{node: semaphore.NewWeighted(n)} }

// share is one tenant's part of the budget.
type share struct {
	b    *budget
	sem  *semaphore.Weighted
	used atomic.Int64
}

func (b *budget) share(n int64) *share { return &share{b: b, sem: semaphore.NewWeighted(n)} }

// tryAcquire takes n bytes without blocking, or nothing.
func (s *share) tryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	if !s.sem.TryAcquire(n) {
		return false
	}
	if !s.b.node.TryAcquire(n) {
		s.sem.Release(n)
		return false
	}
	s.used.Add(n)
	s.b.used.Add(n)
	return true
}

// acquire takes n bytes, blocking (first in, first out) until the tenant's
// share and then the node's budget have them, or ctx ends.
func (s *share) acquire(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	if err := s.sem.Acquire(ctx, n); err != nil {
		return err
	}
	if err := s.b.node.Acquire(ctx, n); err != nil {
		s.sem.Release(n)
		return err
	}
	s.used.Add(n)
	s.b.used.Add(n)
	return nil
}

// release gives n bytes back. Safe from any goroutine.
func (s *share) release(n int64) {
	if n <= 0 {
		return
	}
	s.used.Add(-n)
	s.b.used.Add(-n)
	s.b.node.Release(n)
	s.sem.Release(n)
}
