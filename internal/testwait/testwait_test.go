package testwait

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps what For and Eventually report.
type recorder struct {
	testing.TB
	errors, fatals []string
}

func (r *recorder) Helper()           {}
func (r *recorder) Error(args ...any) { r.errors = append(r.errors, fmt.Sprint(args...)) }
func (r *recorder) Fatal(args ...any) {
	r.fatals = append(r.fatals, fmt.Sprint(args...))
	runtime.Goexit()
}

// run calls f with a recorder on a goroutine of its own, as the testing
// package runs a test, so that Fatal can end it.
func run(f func(*recorder)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r
}

// TestForHolds: a condition that comes true in the background ends the
// wait without a report.
func TestForHolds(t *testing.T) {
	var n atomic.Int32
	r := run(func(r *recorder) {
		For(r, 10*time.Second, "three checks", func() (bool, string) { return n.Add(1) == 3, "" })
	})
	if len(r.errors)+len(r.fatals) != 0 || n.Load() != 3 {
		t.Fatalf("reports %q %q after %d checks", r.errors, r.fatals, n.Load())
	}
}

// TestForTimesOut: a condition that never holds fails the test (stopping
// it) with what was awaited and the last state, and is checked after the
// timeout has passed.
func TestForTimesOut(t *testing.T) {
	const timeout = 100 * time.Millisecond
	start := time.Now()
	var last time.Time
	after := false
	r := run(func(r *recorder) {
		For(r, timeout, "the door to open", func() (bool, string) {
			last = time.Now()
			return false, "closed"
		})
		after = true
	})
	if len(r.fatals) != 1 || after {
		t.Fatalf("fatals %q, went on after the wait: %v", r.fatals, after)
	}
	if want := "timed out after 100ms waiting for the door to open; last: closed"; r.fatals[0] != want {
		t.Errorf("report %q, want %q", r.fatals[0], want)
	}
	if last.Sub(start) < timeout {
		t.Errorf("last check %s after the start, before the timeout %s", last.Sub(start), timeout)
	}
}

// TestEventually: on timeout the failure is an error and the test goes on;
// an empty state adds nothing to the report.
func TestEventually(t *testing.T) {
	var ok, after bool
	r := run(func(r *recorder) {
		ok = Eventually(r, 50*time.Millisecond, "nothing", func() (bool, string) { return false, "" })
		after = true
	})
	if ok || !after || len(r.fatals) != 0 || len(r.errors) != 1 {
		t.Fatalf("Eventually = %v, went on %v, errors %q, fatals %q", ok, after, r.errors, r.fatals)
	}
	if strings.Contains(r.errors[0], "last:") || !strings.HasSuffix(r.errors[0], "waiting for nothing") {
		t.Errorf("report %q", r.errors[0])
	}
	r = run(func(r *recorder) {
		ok = Eventually(r, 10*time.Second, "at once", func() (bool, string) { return true, "" })
	})
	if !ok || len(r.errors) != 0 {
		t.Errorf("Eventually of a condition that holds = %v, errors %q", ok, r.errors)
	}
}

// TestUntil: outside a test, the wait returns nil once the condition holds,
// an error naming what was awaited and the last state on timeout, and
// gives up when its context ends.
func TestUntil(t *testing.T) {
	var n atomic.Int32
	if err := Until(t.Context(), 10*time.Second, "three checks", func() (bool, string) { return n.Add(1) == 3, "" }); err != nil || n.Load() != 3 {
		t.Fatalf("Until: %v after %d checks", err, n.Load())
	}
	err := Until(t.Context(), 50*time.Millisecond, "the door to open", func() (bool, string) { return false, "closed" })
	if err == nil || err.Error() != "timed out after 50ms waiting for the door to open; last: closed" {
		t.Errorf("on timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err = Until(ctx, time.Minute, "the door to open", func() (bool, string) { return false, "closed" })
	if err == nil || !strings.Contains(err.Error(), "gave up waiting for the door to open: context canceled; last: closed") || time.Since(start) > 10*time.Second {
		t.Errorf("when the context ends: %v after %s", err, time.Since(start))
	}
}
