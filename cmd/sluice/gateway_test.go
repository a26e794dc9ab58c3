package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestGatewayValidate: sluice gateway --validate prints the settings when
// they are valid, and names every variable at fault when they are not.
func TestGatewayValidate(t *testing.T) {
	t.Setenv("SLUICE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"gateway", "--validate"}, &out, &out); err != nil {
		t.Fatalf("valid settings: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "SLUICE_GATEWAY_ADDR=:4318") {
		t.Errorf("--validate output:\n%s", out.String())
	}
	t.Setenv("SLUICE_KAFKA_SASL_MECHANISM", "none")
	t.Setenv("SLUICE_GATEWAY_MAX_RECORD_BYTES", "10")
	err := run(t.Context(), []string{"gateway", "--validate"}, &out, &out)
	for _, v := range []string{"SLUICE_KAFKA_SASL_MECHANISM", "SLUICE_GATEWAY_MAX_RECORD_BYTES"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("invalid settings: error %v does not name %s", err, v)
		}
	}
}
