package shipper

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tenantGate pauses one tenant's streams after its topic was found missing
// or access to it denied, so that one tenant's problem never stops the
// others. The wait doubles from 1s up to max while failures repeat, and
// resets with the first acknowledged record.
type tenantGate struct {
	max time.Duration

	mu      sync.Mutex
	until   time.Time
	backoff time.Duration
}

func (g *tenantGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.backoff = min(max(2*g.backoff, time.Second), g.max)
	g.until = time.Now().Add(g.backoff)
}

func (g *tenantGate) ok() {
	g.mu.Lock()
	if g.backoff != 0 {
		g.backoff, g.until = 0, time.Time{}
	}
	g.mu.Unlock()
}

func (g *tenantGate) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().Before(g.until)
}

// wait blocks while the tenant is paused.
func (g *tenantGate) wait(ctx context.Context) error {
	for {
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
