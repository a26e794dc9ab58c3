package gateway

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// healthyBound is how long a healthy tenant's request may take, Kafka's
// acknowledgement included, while another tenant floods the gateway. The
// requests take milliseconds; the bound leaves room for the race detector
// and a loaded machine.
const healthyBound = 3 * time.Second

// TestGatewayFloodingTenantBesideHealthy: tenant web floods the gateway with
// concurrent large requests, far past its in-flight bound; it is answered
// 429 (with Retry-After) for what passes its bound, while every request of
// tenant shop, sent meanwhile, is answered 200 within healthyBound with
// all its records acknowledged.
func TestGatewayFloodingTenantBesideHealthy(t *testing.T) {
	e := startEnv(t, map[string]string{
		"SLUICE_GATEWAY_MAX_BODY_BYTES":                 "1048576",
		"SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES":         "1048576",
		"SLUICE_GATEWAY_MAX_INFLIGHT_BYTES":             "8388608",
		"SLUICE_GATEWAY_TENANT_MAX_INFLIGHT_BYTES":      "2097152",
		"SLUICE_GATEWAY_MAX_CONCURRENT_REQUESTS":        "64",
		"SLUICE_GATEWAY_TENANT_MAX_CONCURRENT_REQUESTS": "8",
		"SLUICE_GATEWAY_MAX_RECORDS_PER_REQUEST":        "20000",
	})
	// Both tenants' credentials are checked and their clients made first:
	// the bound is on the steady state, not on a first SASL handshake.
	for _, tenant := range testTenants {
		if r := e.postOTLP(t, tenant, otlpRequest(nil, otlpLines(1, "warm up")...)); r.status != http.StatusOK {
			t.Fatalf("%s: %d %q", tenant, r.status, r.body)
		}
	}
	flood := bytes.Repeat([]byte("flooding line of about sixty bytes, sent over and over\n"), 6000) // 330 KB
	var (
		stop                 atomic.Bool
		accepted, refused    atomic.Int64
		wg                   sync.WaitGroup
		badRetryAfter, other atomic.Int64
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/lines", bytes.NewReader(flood))
				req.Header.Set("Authorization", basic("web", "web-secret"))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					other.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					accepted.Add(1)
				case http.StatusTooManyRequests:
					refused.Add(1)
					if resp.Header.Get("Retry-After") != "1" {
						badRetryAfter.Add(1)
					}
				default:
					other.Add(1)
				}
			}
		}()
	}
	// Let the flood build up, then send shop's requests through it.
	time.Sleep(200 * time.Millisecond)
	const requests, per = 20, 100
	var lat []time.Duration
	for i := range requests {
		start := time.Now()
		r := e.postOTLP(t, "shop", otlpRequest(nil, otlpLines(per, "healthy "+strconv.Itoa(i))...))
		d := time.Since(start)
		lat = append(lat, d)
		if r.status != http.StatusOK || decodeExportResponse(t, r).GetPartialSuccess() != nil {
			t.Errorf("shop's request %d: %d %q", i, r.status, r.body)
		}
		if d > healthyBound {
			t.Errorf("shop's request %d took %s, more than %s", i, d, healthyBound)
		}
	}
	stop.Store(true)
	wg.Wait()
	slices.Sort(lat)
	t.Logf("shop: %d requests of %d records, latency median %s, max %s; web: %d accepted, %d refused (429), %d other",
		requests, per, lat[len(lat)/2], lat[len(lat)-1], accepted.Load(), refused.Load(), other.Load())
	if refused.Load() == 0 {
		t.Error("the flooding tenant was never answered 429")
	}
	if other.Load() > 0 || badRetryAfter.Load() > 0 {
		t.Errorf("the flooding tenant got %d answers other than 200 and 429, %d 429s without Retry-After: 1", other.Load(), badRetryAfter.Load())
	}
	if got := len(e.readRaw(t, "shop")); got != requests*per+1 {
		t.Errorf("shop's topic has %d records, want %d", got, requests*per+1)
	}
	if got := e.g.lim.inflight(); got != 0 {
		t.Errorf("%d bytes still held", got)
	}
	if metricValue(t, e.reg, `sluice_gateway_rejections_total{reason="backpressure",tenant="web"}`)+
		metricValue(t, e.reg, `sluice_gateway_rejections_total{reason="tenant_requests",tenant="web"}`) != float64(refused.Load()) {
		t.Error("web's refusals are not all counted")
	}
}

// TestGatewayKafkaThrottle: when Kafka throttles a tenant's user (its produce
// quota), the request Kafka acknowledged is answered 200, and the tenant's
// next requests 429 with Kafka's delay as Retry-After until it passes.
func TestGatewayKafkaThrottle(t *testing.T) {
	e := startEnv(t, nil)
	// Warm up: the client is made and its producer id taken.
	if r := e.postOTLP(t, "shop", otlpRequest(nil, otlpLines(1, "warm")...)); r.status != http.StatusOK {
		t.Fatalf("answer %d", r.status)
	}
	e.throttleProduce(2500)
	if r := e.postOTLP(t, "shop", otlpRequest(nil, otlpLines(3, "throttled")...)); r.status != http.StatusOK {
		t.Fatalf("throttled request: %d %q", r.status, r.body)
	}
	r := e.postOTLP(t, "shop", otlpRequest(nil, otlpLines(3, "after")...))
	if r.status != http.StatusTooManyRequests || (r.header.Get("Retry-After") != "3" && r.header.Get("Retry-After") != "2") {
		t.Fatalf("request after the throttle: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	// Another tenant is not held back.
	if r := e.postOTLP(t, "web", otlpRequest(nil, otlpLines(3, "web")...)); r.status != http.StatusOK {
		t.Fatalf("web: %d %q", r.status, r.body)
	}
}
