package shipper

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// backoffGate holds back whoever sends through it after failures, like a
// circuit breaker: one per tenant, tripped when the tenant's topic is
// missing or access to it is denied; and one per follower, tripped by its own
// records' failures (a partition that does not acknowledge within the
// delivery timeout, an unexpected error).
//
// While the gate is failing nothing is sent until the backoff (doubling from
// 1s up to max) has passed; then exactly one sender becomes the probe and
// sends one record. Its acknowledgement closes the gate again (ok); its
// failure trips it with a longer backoff (pause). So a broken tenant holds at
// most one record of the shared budget between retries, however many lines
// it has waiting.
type backoffGate struct {
	max     time.Duration
	failing atomic.Bool // fast path: checked once per line

	mu      sync.Mutex
	until   time.Time
	backoff time.Duration
	since   time.Time // when the current run of failures began
	prober  *follower // the follower sending the probe, nil when none
	waiters map[*follower]struct{}
}

// admit says whether s may send now. probe is true when s is the probe and
// may send one record only. When not admitted, retryAt is when to ask again
// (zero: s is woken when the probe's result is known).
func (g *backoffGate) admit(s *follower) (ok, probe bool, retryAt time.Time) {
	if !g.failing.Load() {
		return true, false, time.Time{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.failing.Load() {
		return true, false, time.Time{}
	}
	if g.prober == s {
		return true, true, time.Time{}
	}
	if now := time.Now(); now.Before(g.until) {
		g.wait(s)
		return false, false, g.until
	}
	if g.prober == nil {
		g.prober = s
		return true, true, time.Time{}
	}
	g.wait(s)
	return false, false, time.Time{}
}

func (g *backoffGate) wait(s *follower) {
	if g.waiters == nil {
		g.waiters = make(map[*follower]struct{})
	}
	g.waiters[s] = struct{}{}
}

// pause trips the gate (or lengthens its backoff) after a failure.
func (g *backoffGate) pause() {
	g.mu.Lock()
	g.backoff = min(max(2*g.backoff, time.Second), max(g.max, time.Second))
	g.until = time.Now().Add(g.backoff)
	if !g.failing.Load() {
		g.since = time.Now()
	}
	g.failing.Store(true)
	g.prober = nil
	waiters, until := g.takeWaiters(), g.until
	g.mu.Unlock()
	for _, s := range waiters {
		s.wakeAt(until)
	}
}

// ok closes the gate after a success and wakes everyone held back.
func (g *backoffGate) ok() {
	if !g.failing.Load() {
		return
	}
	g.mu.Lock()
	if !g.failing.Load() {
		g.mu.Unlock()
		return
	}
	g.backoff, g.until, g.since, g.prober = 0, time.Time{}, time.Time{}, nil
	g.failing.Store(false)
	waiters := g.takeWaiters()
	g.mu.Unlock()
	for _, s := range waiters {
		s.wake()
	}
}

// drop forgets s as a waiter and as the probe (s ended).
func (g *backoffGate) drop(s *follower) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.waiters, s)
	if g.prober == s {
		g.prober = nil
	}
}

func (g *backoffGate) takeWaiters() []*follower {
	out := make([]*follower, 0, len(g.waiters))
	for s := range g.waiters {
		out = append(out, s)
	}
	clear(g.waiters)
	return out
}

func (g *backoffGate) paused() bool {
	if !g.failing.Load() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().Before(g.until)
}

// failingFor is how long the gate has been failing (0 when it is not).
func (g *backoffGate) failingFor() time.Duration {
	if !g.failing.Load() {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Since(g.since)
}

// Reasons a delivery failed, the bounded values of the reason label.
const (
	reasonTopicMissing = "topic_missing"
	reasonDenied       = "denied"
	reasonTooLarge     = "message_too_large"
	reasonTimeout      = "timeout"
	reasonRejected     = "rejected"
	reasonShutdown     = "shutdown"
	reasonOther        = "other"
)

func errorReason(err error) string {
	var ke *kerr.Error
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return reasonTopicMissing
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.SaslAuthenticationFailed):
		return reasonDenied
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return reasonTooLarge
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries):
		return reasonTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrClientClosed):
		return reasonShutdown
	case errors.As(err, &ke) && !ke.Retriable:
		// Kafka refuses this record and would refuse it again (an invalid
		// record, a policy violation): sending it again is an endless loop.
		return reasonRejected
	default:
		return reasonOther
	}
}
