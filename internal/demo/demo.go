// Package demo is the demo workload of sluice dev and the docker compose
// stack: the pipelines of three demo tenants and the container logs their
// pods write. It is not part of any stage.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/internal/nodelog"
)

// Pipelines are the pipelines of the demo tenants, by tenant: shop
// joins stack traces and parses JSON application logs; payments parses
// text lines with a regex and routes audit lines to their own dataset; web
// parses access logs with a regex, so that the malformed line the demo
// writes now and then goes to its dead-letter topic.
var Pipelines = map[string]string{
	"shop": `tenant: shop
version: 1
steps:
  - multiline: {continuation: '^(\s+at |Caused by: )', max_wait: 500ms}
  - json: {field: log, on_error: skip}
  - rename: {from: msg, to: message}
tests:
  - name: parses a JSON line
    input: {log: '{"level":"info","msg":"cart updated","http":{"status":200}}'}
    expect: {attributes: {level: info, message: cart updated, http.status: 200}}
`,
	"payments": `tenant: payments
version: 1
steps:
  - regex: {field: log, pattern: '^(?P<level>[A-Z]+) (?P<action>[a-z_]+) (?P<detail>.*)$'}
  - logfmt: {field: detail, on_error: skip}
  - remove: {fields: [detail]}
  - route: {if: 'attributes["level"] == "AUDIT"', dataset: audit}
tests:
  - name: audit lines go to their own dataset
    input: {log: 'AUDIT refund user=u-7 amount=12.50'}
    expect: {dataset: audit, attributes: {level: AUDIT, action: refund, user: u-7, amount: "12.50"}}
`,
	"web": `tenant: web
version: 1
steps:
  - regex: {field: log, pattern: '^(?P<client>\S+) \S+ \S+ \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) (?P<bytes>\d+)'}
tests:
  - name: parses an access log line
    input: {log: '10.0.0.7 - - [21/Nov/2026:10:30:00 +0000] "GET /index.html HTTP/1.1" 200 512'}
    expect: {attributes: {client: 10.0.0.7, method: GET, path: /index.html, status: "200", bytes: "512"}}
`,
}

// Workload writes a demo workload into a node log tree: pods of the demo
// tenants writing JSON application logs, plain text, stack traces, access
// logs, now and then a line longer than 16 KiB (written as partial lines)
// and a malformed line, with kubelet-style rotation.
type Workload struct {
	Node *nodelog.Node
	// Rate is the number of messages per second, over all pods (default
	// 50; negative: as fast as possible, for tests).
	Rate int
	// Limit stops the demo after that many messages (0: when ctx ends).
	Limit int
	// RotateBytes rotates a container's file when it grows past it (default
	// 1 MiB).
	RotateBytes int64
}

// pod is one of the demo's pods: one container, whose lines line makes.
type pod struct {
	Namespace, Pod, Container string
	line                      func(r *rand.Rand, n int) []string
}

// pods are the pods the workload writes for, each declared in PodsYAML.
var pods = []pod{
	{"shop", "cart-5d8f7b9c4-x2x9z", "cart", shopLine},
	{"shop", "checkout-7c6d5f8b9-q8w7e", "checkout", shopLine},
	{"payments", "ledger-6b7c8d9f5-m4n5b", "ledger", paymentsLine},
	{"web", "nginx-5f4d3c2b1-z9y8x", "nginx", webLine},
}

type demoPod struct {
	c    *nodelog.Container
	line func(r *rand.Rand, n int) []string // the lines of the n-th message (a stack trace has several)
}

// Run writes until ctx ends. It returns an error when the log tree cannot
// be written.
func (d *Workload) Run(ctx context.Context) error {
	rate, rotate := d.Rate, d.RotateBytes
	if rate == 0 {
		rate = 50
	}
	if rotate <= 0 {
		rotate = 1 << 20
	}
	var all []demoPod
	for _, p := range pods {
		c, err := d.Node.AddContainer(p.Namespace, p.Pod, p.Container, nodelog.CRI)
		if err != nil {
			return fmt.Errorf("demo pod %s/%s: %w", p.Namespace, p.Pod, err)
		}
		defer c.Close()
		all = append(all, demoPod{c: c, line: p.line})
	}
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	var tick <-chan time.Time
	if d.Rate >= 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	for n := 0; d.Limit == 0 || n < d.Limit; n++ {
		if tick != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-tick:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		// Pods take turns: the n-th message of the workload decides what
		// it is (a stack trace, a long line), so every kind shows up.
		p := all[n%len(all)]
		stream := "stdout"
		for _, msg := range p.line(r, n) {
			if strings.HasPrefix(msg, "ERROR") || strings.HasPrefix(msg, "\tat ") || strings.HasPrefix(msg, "java.") {
				stream = "stderr"
			}
			if err := p.c.Write(time.Now(), stream, msg); err != nil {
				return fmt.Errorf("demo pod %s: %w", p.c.Pod, err)
			}
		}
		if p.c.Size() > rotate {
			if _, err := p.c.Rotate(); err != nil {
				return fmt.Errorf("demo pod %s: rotate: %w", p.c.Pod, err)
			}
		}
	}
	return nil
}

var demoPaths = []string{"/api/cart", "/api/cart/items", "/api/checkout", "/api/products/42", "/healthz"}

func shopLine(r *rand.Rand, n int) []string {
	switch {
	case n%97 == 0:
		return []string{
			`java.lang.IllegalStateException: cart 42 is locked`,
			"\tat shop.cart.CartService.update(CartService.java:118)",
			"\tat shop.cart.CartController.put(CartController.java:64)",
			"Caused by: java.util.concurrent.TimeoutException: lock wait 500ms",
			"\tat shop.cart.LockManager.acquire(LockManager.java:37)",
		}
	case n%501 == 0:
		// Longer than 16 KiB: the runtime splits it into partial lines.
		return []string{fmt.Sprintf(`{"level":"warn","msg":"large cart","items":%q}`, strings.Repeat("sku-1234,", 2500))}
	}
	level, status := "info", 200
	if r.IntN(20) == 0 {
		level, status = "error", 500
	}
	return []string{fmt.Sprintf(`{"level":%q,"msg":"request served","http":{"method":"GET","path":%q,"status":%d},"duration_ms":%.1f,"user":"u-%d"}`,
		level, demoPaths[r.IntN(len(demoPaths))], status, r.Float64()*80, r.IntN(50))}
}

func paymentsLine(r *rand.Rand, n int) []string {
	if n%7 == 0 {
		return []string{fmt.Sprintf("AUDIT refund user=u-%d amount=%d.%02d approved_by=ops-%d", r.IntN(50), r.IntN(200), r.IntN(100), r.IntN(3))}
	}
	return []string{fmt.Sprintf("INFO payment_authorized id=pay-%06d user=u-%d amount=%d.%02d currency=EUR", n, r.IntN(50), r.IntN(200), r.IntN(100))}
}

func webLine(r *rand.Rand, n int) []string {
	if n%53 == 0 {
		return []string{"upstream timed out (110: Connection timed out) while reading response header"} // not an access log line: dead-lettered
	}
	return []string{fmt.Sprintf(`10.0.%d.%d - - [%s] "GET %s HTTP/1.1" %d %d "-" "curl/8.5.0"`,
		r.IntN(4), r.IntN(250), time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700"), demoPaths[r.IntN(len(demoPaths))],
		[]int{200, 200, 200, 304, 404}[r.IntN(5)], 200+r.IntN(4000))}
}
