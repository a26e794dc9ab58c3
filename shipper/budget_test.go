package shipper

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/testwait"
)

// TestBudgetShares: a tenant alone may hold the budget less the reserve;
// the reserve is left for tenants within their share; a tenant that cannot
// be served does not hold up another that can; released bytes go to the
// waiters.
func TestBudgetShares(t *testing.T) {
	b := newBudget(100, 25)
	stuck, healthy := b.newShare(), b.newShare()
	if !stuck.tryAcquire(75) {
		t.Fatal("a tenant alone could not borrow up to the budget less the reserve")
	}
	if stuck.tryAcquire(1) {
		t.Fatal("a tenant beyond its share took from the reserve")
	}
	// The stuck tenant queues for more; the healthy one is served from the
	// reserve at once, past the stuck one's waiter.
	waited := make(chan error, 1)
	go func() { waited <- stuck.acquire(context.Background(), 10) }()
	testwait.For(t, 5*time.Second, "the stuck tenant's request to queue", func() (bool, string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiters) == 1, fmt.Sprintf("%d waiting", len(b.waiters))
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := healthy.acquire(ctx, 25); err != nil {
		t.Fatalf("the healthy tenant waited behind the stuck one: %v", err)
	}
	if healthy.tryAcquire(1) {
		t.Fatal("the budget gave more than it has")
	}
	// Bytes come back: the healthy tenant's go to nobody waiting that fits
	// (the stuck tenant may not borrow the reserve), the stuck tenant's own
	// serve its waiter.
	healthy.release(25)
	select {
	case err := <-waited:
		t.Fatalf("the stuck tenant borrowed the reserve (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	stuck.release(20)
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("released bytes did not reach the waiter")
	}
	if got := stuck.usedSeen.Load(); got != 65 {
		t.Errorf("stuck tenant holds %d bytes, want 65", got)
	}
	if got := b.usedSeen.Load(); got != 65 {
		t.Errorf("budget used %d, want 65", got)
	}
	// A waiter whose context ends leaves nothing behind.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := stuck.acquire(ctx2, 50); err == nil {
		t.Fatal("acquire beyond what the tenant may hold succeeded")
	}
	if got := b.usedSeen.Load(); got != 65 || len(b.waiters) != 0 {
		t.Errorf("after a cancelled wait: used %d, %d waiters; want 65, 0", got, len(b.waiters))
	}
}
