package gateway

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestGatewayBudgetReader: a body is charged bodyCharge times what is read, in
// steps, never for the caller's buffer; reading past the tenant's bound
// fails with errBudget; what was taken is given back whole.
func TestGatewayBudgetReader(t *testing.T) {
	cfg := Config{MaxInflightBytes: 1 << 20, TenantMaxInflightBytes: 256 << 10, MaxRequests: 4}
	l := newLimits(&cfg)
	tn := l.tenant("shop")
	br := &budgetReader{r: strings.NewReader(strings.Repeat("x", 100<<10)), l: l, t: tn}
	b := make([]byte, 0, 4<<20) // a pooled buffer far larger than the body
	buf := bytes.NewBuffer(b)
	if _, err := buf.ReadFrom(br); err != nil || buf.Len() != 100<<10 {
		t.Fatalf("read %d: %v", buf.Len(), err)
	}
	if br.held < 200<<10 || br.held > 256<<10 || l.inflight() != br.held {
		t.Fatalf("held %d for 100 KiB read, %d in all", br.held, l.inflight())
	}
	l.give(tn, br.held)
	big := &budgetReader{r: strings.NewReader(strings.Repeat("x", 200<<10)), l: l, t: tn}
	if _, err := io.ReadAll(big); !errors.Is(err, errBudget) {
		t.Fatalf("reading 200 KiB within 256 KiB: %v", err)
	}
	l.give(tn, big.held)
	if l.inflight() != 0 || tn.bytes != 0 {
		t.Fatalf("%d bytes left held", l.inflight())
	}
	// Another tenant's bound is its own; the gateway's is shared.
	if !l.startRequest() || !l.startTenantRequest(tn) {
		t.Fatal("no request slot")
	}
}

func TestGatewayConfigValidate(t *testing.T) {
	valid := func() Config {
		return Config{
			Kafka: kafkaConfig(), Addr: ":4318", AuthTTL: 1, AuthFailureTTL: 1, MaxClients: 1, ClientIdle: 1,
			MaxBodyBytes: 1 << 20, MaxDecompressedBytes: 4 << 20, MaxRecords: 10, MaxLogBytes: 1024, MaxRecordBytes: 4096,
			MaxInflightBytes: 16 << 20, MaxRequests: 8, MaxConnections: 8, AckTimeout: 1, RetryAfter: 1,
			ReadTimeout: 1, IdleTimeout: 1, ShutdownTimeout: 1,
		}
	}
	c := valid()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	for name, tc := range map[string]struct {
		edit func(*Config)
		want string
	}{
		"no sasl":         {func(c *Config) { c.Kafka.SASLMechanism = "none" }, "SLUICE_KAFKA_SASL_MECHANISM"},
		"own credentials": {func(c *Config) { c.Kafka.SASLUsername = "gw" }, "SLUICE_KAFKA_SASL_USERNAME"},
		"insecure + sasl": {func(c *Config) { c.InsecureTrustUsername = true }, "SLUICE_GATEWAY_INSECURE_TRUST_USERNAME"},
		"bomb bound":      {func(c *Config) { c.MaxDecompressedBytes = 1 }, "SLUICE_GATEWAY_MAX_DECOMPRESSED_BYTES"},
		"record bytes":    {func(c *Config) { c.MaxRecordBytes = 2 << 20 }, "SLUICE_GATEWAY_MAX_RECORD_BYTES"},
		"inflight":        {func(c *Config) { c.MaxInflightBytes = 4 << 20 }, "SLUICE_GATEWAY_MAX_INFLIGHT_BYTES"},
		"tenant requests": {func(c *Config) { c.TenantMaxRequests = 9 }, "SLUICE_GATEWAY_TENANT_MAX_CONCURRENT_REQUESTS"},
		"client ca":       {func(c *Config) { c.TLSClientCAFile = "ca.pem" }, "SLUICE_GATEWAY_TLS_CLIENT_CA_FILE"},
		"addr":            {func(c *Config) { c.GRPCAddr = "nope" }, "SLUICE_GATEWAY_GRPC_ADDR"},
	} {
		c := valid()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a problem with %s", name, err, tc.want)
		}
	}
	// Without SASL, only the development switch lets the gateway start.
	c = valid()
	c.Kafka.SASLMechanism, c.InsecureTrustUsername = "none", true
	if err := c.Validate(); err != nil {
		t.Errorf("insecure development settings: %v", err)
	}
}
