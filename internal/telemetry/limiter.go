package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// MaxLimiterKeys bounds the keys a Limiter tracks. Keys beyond it (after
// forgetting expired ones) share one overflow key, so a caller that puts
// unbounded values in keys gets fewer log lines, not unbounded memory.
const MaxLimiterKeys = 1024

// overflowKey cannot collide with a caller's key in practice.
const overflowKey = "\x00overflow"

// Limiter lets a component log the same kind of error at most once per
// interval per key, counting what it suppressed in between:
//
//	if n, ok := lim.Allow("produce:" + reason); ok {
//		log.Warn("produce failed", "err", err, "suppressed", n)
//	}
//
// or, equivalently, lim.Log(ctx, log, slog.LevelWarn, "produce:"+reason,
// "produce failed", "err", err). Keys should be bounded (an error class, a
// reason label), never a record or an error text. Safe for concurrent use.
type Limiter struct {
	every time.Duration
	now   func() time.Time // replaced in tests

	mu   sync.Mutex
	keys map[string]*limiterEntry
}

type limiterEntry struct {
	next       time.Time // when the key may be logged again
	suppressed int
}

// NewLimiter returns a limiter allowing each key once per every. every <= 0
// allows everything.
func NewLimiter(every time.Duration) *Limiter {
	return &Limiter{every: every, now: time.Now, keys: make(map[string]*limiterEntry)}
}

// Allow reports whether an event of key may be logged now, and if so how many
// events of key were suppressed since the last one allowed. Counts of a key
// not seen for longer than the interval may be dropped once MaxLimiterKeys
// keys are tracked.
func (l *Limiter) Allow(key string) (suppressed int, ok bool) {
	if l.every <= 0 {
		return 0, true
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()

	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= MaxLimiterKeys {
			l.forgetExpired(now)
		}
		if len(l.keys) >= MaxLimiterKeys {
			key = overflowKey
			e = l.keys[key]
		}
	}
	if e == nil {
		e = &limiterEntry{}
		l.keys[key] = e
	}
	if now.Before(e.next) {
		e.suppressed++
		return 0, false
	}
	suppressed = e.suppressed
	e.next = now.Add(l.every)
	e.suppressed = 0
	return suppressed, true
}

// forgetExpired drops keys whose interval has passed: their next event would
// be allowed anyway. The overflow key is kept, so it always has a slot.
func (l *Limiter) forgetExpired(now time.Time) {
	for k, e := range l.keys {
		if k != overflowKey && !now.Before(e.next) {
			delete(l.keys, k)
		}
	}
}

// Log logs msg with args at level if Allow(key), adding a "suppressed" attribute
// when events were suppressed since the last line for key.
func (l *Limiter) Log(ctx context.Context, log *slog.Logger, level slog.Level, key, msg string, args ...any) {
	if !log.Enabled(ctx, level) {
		return
	}
	n, ok := l.Allow(key)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args[:len(args):len(args)], slog.Int("suppressed", n)) // never the caller's array
	}
	log.Log(ctx, level, msg, args...)
}
