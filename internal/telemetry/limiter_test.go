package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable time source for a Limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestLimiter(every time.Duration) (*Limiter, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLimiter(every)
	l.now = clk.now
	return l, clk
}

func TestLimiterAllow(t *testing.T) {
	l, clk := newTestLimiter(time.Minute)
	type step struct {
		advance        time.Duration
		key            string
		wantOK         bool
		wantSuppressed int
	}
	steps := []step{
		{0, "a", true, 0},
		{0, "a", false, 0},
		{time.Second, "a", false, 0},
		{0, "b", true, 0}, // keys are independent
		{59 * time.Second, "a", true, 2},
		{0, "a", false, 0},
		{time.Minute, "a", true, 1},
		{0, "b", true, 0}, // b's interval passed too, nothing suppressed
		{time.Hour, "a", true, 0},
	}
	for i, s := range steps {
		clk.advance(s.advance)
		n, ok := l.Allow(s.key)
		if ok != s.wantOK || n != s.wantSuppressed {
			t.Errorf("step %d: Allow(%q) = %d, %v; want %d, %v", i, s.key, n, ok, s.wantSuppressed, s.wantOK)
		}
	}
}

func TestLimiterZeroIntervalAllowsAll(t *testing.T) {
	l := NewLimiter(0)
	for range 3 {
		if n, ok := l.Allow("k"); !ok || n != 0 {
			t.Fatalf("Allow = %d, %v", n, ok)
		}
	}
}

func TestLimiterBoundsKeys(t *testing.T) {
	l, clk := newTestLimiter(time.Minute)
	for i := range MaxLimiterKeys {
		if _, ok := l.Allow(fmt.Sprint(i)); !ok {
			t.Fatalf("key %d not allowed", i)
		}
	}
	// Full of live keys: new keys share the overflow slot.
	if _, ok := l.Allow("new-1"); !ok {
		t.Error("first overflow key not allowed")
	}
	if _, ok := l.Allow("new-2"); ok {
		t.Error("second overflow key allowed within the interval")
	}
	if got := len(l.keys); got != MaxLimiterKeys+1 {
		t.Errorf("tracking %d keys, want %d", got, MaxLimiterKeys+1)
	}
	// Once the interval passed, expired keys are forgotten to make room.
	clk.advance(time.Minute)
	if n, ok := l.Allow("new-3"); !ok || n != 0 {
		t.Errorf("Allow after expiry = %d, %v", n, ok)
	}
	if got := len(l.keys); got != 2 {
		t.Errorf("tracking %d keys after expiry, want 2 (new-3 and overflow)", got)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if _, ok := l.Allow("k"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != 1 {
		t.Errorf("allowed %d times, want 1", allowed)
	}
	if got := l.keys["k"].suppressed; got != 7999 {
		t.Errorf("suppressed %d, want 7999", got)
	}
}

func TestLimiterLog(t *testing.T) {
	l, clk := newTestLimiter(time.Minute)
	var b bytes.Buffer
	log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()

	args := make([]any, 2, 10)
	args[0], args[1] = "tenant", "acme"
	for range 3 {
		l.Log(ctx, log, slog.LevelWarn, "produce", "produce failed", args...)
	}
	// Below the handler's level: neither logged nor counted.
	l.Log(ctx, log, slog.LevelInfo, "produce", "produce failed")
	clk.advance(time.Minute)
	l.Log(ctx, log, slog.LevelWarn, "produce", "produce failed", args...)

	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), b.String())
	}
	if strings.Contains(lines[0], "suppressed") || !strings.Contains(lines[0], "tenant=acme") {
		t.Errorf("first line %q", lines[0])
	}
	if !strings.Contains(lines[1], "suppressed=2") || !strings.Contains(lines[1], "tenant=acme") {
		t.Errorf("second line %q, want suppressed=2", lines[1])
	}
	if got := args[:cap(args)][2]; got != nil {
		t.Errorf("Log wrote %v into the caller's args array", got)
	}
}
