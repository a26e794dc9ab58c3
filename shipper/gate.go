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

// backoffGate holds back whoever waits on it after failures: one per
// tenant, paused when the tenant's topic is missing or access to it denied,
// so one tenant's problem never stops the others; and one per stream, for
// failures of its own records. The wait doubles from 1s up to max while
// failures repeat, and ends with the first acknowledged record.
type backoffGate struct {
	max     time.Duration
	failing atomic.Bool // fast path for ok, called once per record

	mu      sync.Mutex
	until   time.Time
	backoff time.Duration
}

func (g *backoffGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.backoff = min(max(2*g.backoff, time.Second), max(g.max, time.Second))
	g.until = time.Now().Add(g.backoff)
	g.failing.Store(true)
}

func (g *backoffGate) ok() {
	if !g.failing.Load() {
		return
	}
	g.mu.Lock()
	g.backoff, g.until = 0, time.Time{}
	g.failing.Store(false)
	g.mu.Unlock()
}

func (g *backoffGate) paused() bool {
	if !g.failing.Load() {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().Before(g.until)
}

// wait blocks while the gate is paused.
func (g *backoffGate) wait(ctx context.Context) error {
	for g.failing.Load() {
		g.mu.Lock()
		d := time.Until(g.until)
		g.mu.Unlock()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Reasons a delivery failed, the bounded values of the reason label.
const (
	reasonTopicMissing = "topic_missing"
	reasonDenied       = "denied"
	reasonTooLarge     = "message_too_large"
	reasonShutdown     = "shutdown"
	reasonOther        = "other"
)

func errorReason(err error) string {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		return reasonTopicMissing
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed),
		errors.Is(err, kerr.SaslAuthenticationFailed):
		return reasonDenied
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return reasonTooLarge
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrClientClosed):
		return reasonShutdown
	default:
		return reasonOther
	}
}
