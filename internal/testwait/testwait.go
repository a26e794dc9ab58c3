// Package testwait is the one way Sluice's tests wait for a condition that
// comes true in the background: poll it until it holds or a timeout
// passes, and on timeout say what was awaited and the last state seen.
//
// A timeout here is a bound on waiting, never an assertion about speed:
// give it room (seconds, not milliseconds); a test that measures a delay
// measures it itself.
//
// Until is the same wait for code that runs outside a test too (the load
// test's harness, internal/apptest): it returns the failure as an error.
package testwait

import (
	"context"
	"errors"
	"testing"
	"time"
)

// interval is the pause between two checks of a condition.
const interval = 20 * time.Millisecond

// For checks cond every 20ms until it reports true, and fails the test
// (t.Fatal) if it has not by the time timeout has passed. cond returns
// whether it holds and, for the failure message, the state it saw (""
// adds nothing). The last check is made after timeout has passed, so a
// condition that comes true just in time still counts.
//
// Like t.Fatal, For must be called from the goroutine running the test.
func For(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if failure := wait(context.Background(), timeout, what, cond); failure != "" {
		t.Fatal(failure)
	}
}

// Eventually is For for a test that goes on after a failed wait: on
// timeout it reports the failure with t.Error and returns false.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) bool {
	t.Helper()
	if failure := wait(context.Background(), timeout, what, cond); failure != "" {
		t.Error(failure)
		return false
	}
	return true
}

// Until is For for code that is not a test: it returns nil once cond
// holds, and on timeout, or when ctx ends first, an error that says what
// was awaited and the last state seen.
func Until(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) error {
	if failure := wait(ctx, timeout, what, cond); failure != "" {
		return errors.New(failure)
	}
	return nil
}

// wait polls cond until it holds ("") or timeout has passed or ctx has
// ended (the failure message).
func wait(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) string {
	deadline := time.Now().Add(timeout)
	for {
		expired := time.Now().After(deadline)
		ok, state := cond()
		if ok {
			return ""
		}
		if expired || ctx.Err() != nil {
			failure := "timed out after " + timeout.String() + " waiting for " + what
			if !expired {
				failure = "gave up waiting for " + what + ": " + ctx.Err().Error()
			}
			if state != "" {
				failure += "; last: " + state
			}
			return failure
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}
