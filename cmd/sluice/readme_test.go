//go:build !nodev

package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/devstack"
	"github.com/sluicelogs/sluice/gateway"
	"github.com/sluicelogs/sluice/indexer"
	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/shipper"
)

var updateREADME = flag.Bool("update-readme", false, "rewrite the settings tables of the README and the guides from the configuration structs")

// settingsDocs are the files holding each settings table, between
// <!-- settings:NAME --> and <!-- end settings:NAME -->.
var settingsDocs = map[string]string{
	"shipper": "../../docs/shipper.md",
	"router":  "../../docs/router.md",
	"indexer": "../../docs/indexer.md",
	"dev":     "../../README.md",
	"gateway": "../../docs/gateway.md",
}

// TestREADMESettings keeps the settings tables of the README and the guides
// true: each must be exactly what the configuration structs describe. With
// -update-readme it rewrites them.
func TestREADMESettings(t *testing.T) {
	for name, cfg := range map[string]any{"shipper": &shipper.Config{}, "router": &router.Config{}, "indexer": &indexer.Config{}, "dev": &devstack.Config{}, "gateway": &gateway.Config{}} {
		path := settingsDocs[name]
		doc, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := config.WriteMarkdown(&want, cfg); err != nil {
			t.Fatal(err)
		}
		begin, end := "<!-- settings:"+name+" -->\n", "<!-- end settings:"+name+" -->"
		_, rest, ok := strings.Cut(string(doc), begin)
		got, _, ok2 := strings.Cut(rest, end)
		if !ok || !ok2 {
			t.Fatalf("%s has no %q ... %q section", path, begin, end)
		}
		if got == want.String() {
			continue
		}
		if !*updateREADME {
			t.Errorf("%s: settings for %s are out of date (go test ./cmd/sluice -run TestREADMESettings -update-readme); replace the section with:\n%s", path, name, want.String())
			continue
		}
		doc = []byte(strings.Replace(string(doc), begin+got+end, begin+want.String()+end, 1))
		if err := os.WriteFile(path, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"shipper", "--help"}, &out, &errOut); err != nil || errOut.Len() != 0 {
		t.Fatalf("shipper --help: err = %v, stderr %q", err, errOut.String())
	}
	for _, s := range config.Describe(&shipper.Config{}) {
		if !strings.Contains(out.String(), s.Name) {
			t.Errorf("shipper --help does not explain %s", s.Name)
		}
	}
	out.Reset()
	if err := run(t.Context(), []string{"version"}, &out, &out); err != nil || !strings.HasPrefix(out.String(), "sluice ") {
		t.Errorf("version = %q, %v", out.String(), err)
	}
	if err := run(t.Context(), []string{"nope"}, &out, &out); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestShipperValidate(t *testing.T) {
	t.Setenv("SLUICE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
	t.Setenv("SLUICE_KAFKA_SASL_USERNAME", "shipper")
	t.Setenv("SLUICE_KAFKA_SASL_PASSWORD", "s3cret-value")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"shipper", "--validate"}, &out, &out); err != nil {
		t.Fatalf("valid settings: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "s3cret-value") || !strings.Contains(out.String(), "SLUICE_KAFKA_SASL_USERNAME=shipper") {
		t.Errorf("--validate output leaks the password or misses settings:\n%s", out.String())
	}
	t.Setenv("SLUICE_SHIPPER_MAX_LINE_BYTES", "10")
	t.Setenv("SLUICE_SHIPPER_TENANT_MAP", "x=Not_A_Tenant")
	err := run(t.Context(), []string{"shipper", "--validate"}, &out, &out)
	for _, v := range []string{"SLUICE_SHIPPER_MAX_LINE_BYTES", "SLUICE_SHIPPER_TENANT_MAP"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("invalid settings: error %v does not name %s", err, v)
		}
	}
}
