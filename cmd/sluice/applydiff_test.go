package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/router"
)

// TestPipelineApplyDiff: apply FILE shows the diff against the stored
// version, and stores a version that removes steps only when told to: a
// yes on a terminal, or --yes; without a terminal it refuses, naming the
// steps and the flag.
func TestPipelineApplyDiff(t *testing.T) {
	cl := startKafka(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	topics := kafka.Topics{Prefix: "logs"}
	if _, err := kafka.ProvisionTenant(ctx, kadm.NewClient(cl), topics, "shop", kafka.TenantSpec{Partitions: 1, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	terminal := false
	old := isTerminal
	isTerminal = func(io.Reader) bool { return terminal }
	t.Cleanup(func() { isTerminal = old })
	stored := func() int64 {
		t.Helper()
		sp, err := router.ReadPipeline(ctx, cl, topics, "shop")
		if err != nil || sp == nil {
			t.Fatalf("stored pipeline: %v", err)
		}
		return sp.Version
	}

	v1 := writePipeline(t, "tenant: shop\nversion: 1\nsteps:\n  - json: {field: log}\n  - drop: {if: 'attributes[\"level\"] == \"debug\"'}\n  - set: {field: env, value: prod}\n")
	stdout, stderr, code := sluice(t, ctx, "pipeline", "apply", v1)
	if code != 0 || stdout != "--- logs.config.shop (nothing stored: pass-through)\n+++ "+v1+" (version 1)\n@@ -0,0 +1,6 @@\n"+
		"+tenant: shop\n+version: 1\n+steps:\n+  - json: {field: log}\n+  - drop: {if: 'attributes[\"level\"] == \"debug\"'}\n+  - set: {field: env, value: prod}\n"+
		"applied: tenant shop version 1 to logs.config.shop\n" {
		t.Fatalf("apply v1: exit %d:\n%s%s", code, stdout, stderr)
	}

	// Changing a step removes none: no question.
	v2 := writePipeline(t, "tenant: shop\nversion: 2\nsteps:\n  - json: {field: log}\n  - drop: {if: 'attributes[\"level\"] == \"trace\"'}\n  - set: {field: env, value: prod}\n")
	stdout, stderr, code = sluice(t, ctx, "pipeline", "apply", v2)
	if code != 0 || !strings.Contains(stdout, "--- logs.config.shop (stored: version 1)\n+++ "+v2+" (version 2)\n@@ -1,6 +1,6 @@\n tenant: shop\n-version: 1\n+version: 2\n") ||
		!strings.Contains(stdout, "\n-  - drop: {if: 'attributes[\"level\"] == \"debug\"'}\n+  - drop: {if: 'attributes[\"level\"] == \"trace\"'}\n") {
		t.Fatalf("apply v2: exit %d:\n%s%s", code, stdout, stderr)
	}

	// Version 3 drops the drop and set steps.
	v3 := writePipeline(t, "tenant: shop\nversion: 3\nsteps:\n  - json: {field: log}\n")
	refusal := "sluice: pipeline apply: version 3 removes 2 step(s) of the stored version 2: drop (line 5), set (line 6); store it with --yes (stdin is not a terminal to ask on)\n" +
		"run 'sluice pipeline apply --help' for usage\n"
	setStdin(t, "")
	stdout, stderr, code = sluice(t, ctx, "pipeline", "apply", v3)
	if code != 2 || stderr != refusal || !strings.Contains(stdout, "-  - set: {field: env, value: prod}\n") || stored() != 2 {
		t.Errorf("apply v3 without a terminal: exit %d, stdout:\n%s\nstderr %q", code, stdout, stderr)
	}
	terminal = true
	setStdin(t, "n\n")
	_, stderr, code = sluice(t, ctx, "pipeline", "apply", v3)
	if code != 1 || stderr != "Version 3 removes 2 step(s) of the stored version 2: drop (line 5), set (line 6). Store it? [y/N] sluice: apply "+v3+": not stored\n" || stored() != 2 {
		t.Errorf("apply v3, answered n: exit %d, stderr %q", code, stderr)
	}
	setStdin(t, "y\n")
	stdout, _, code = sluice(t, ctx, "pipeline", "apply", v3)
	if code != 0 || !strings.HasSuffix(stdout, "applied: tenant shop version 3 to logs.config.shop\n") || stored() != 3 {
		t.Errorf("apply v3, answered y: exit %d:\n%s", code, stdout)
	}
	// Without a terminal, --yes stores it; the pipeline from stdin (-f -)
	// cannot be confirmed on it.
	terminal = false
	v4 := "tenant: shop\nversion: 4\nsteps: []\n"
	setStdin(t, v4)
	if _, stderr, code = sluice(t, ctx, "pipeline", "apply", "-f", "-"); code != 2 || !strings.Contains(stderr, "version 4 removes 1 step(s) of the stored version 3: json (line 4); store it with --yes") {
		t.Errorf("apply -f - without --yes: exit %d, %q", code, stderr)
	}
	setStdin(t, v4)
	if stdout, _, code = sluice(t, ctx, "pipeline", "apply", "-", "--yes"); code != 0 || stored() != 4 || !strings.Contains(stdout, "-  - json: {field: log}\n") {
		t.Errorf("apply - --yes: exit %d:\n%s", code, stdout)
	}
	// An old version is refused before the diff, saying what to change.
	stdout, stderr, code = sluice(t, ctx, "pipeline", "apply", v1)
	if code != 1 || stdout != "" || stderr != "sluice: apply "+v1+": pipeline version must increase: tenant shop: version 1 is not greater than the stored version 4 (raise version: in "+v1+")\n" {
		t.Errorf("apply v1 again: exit %d, %q %q", code, stdout, stderr)
	}
}

func TestRemovedSteps(t *testing.T) {
	steps := func(doc string) []pipelineStep { return documentSteps([]byte("tenant: a\nversion: 1\nsteps:\n" + doc)) }
	for _, tt := range []struct {
		old, new, want string
	}{
		{"  - json: {}\n", "  - json: {}\n  - drop: {}\n", ""},
		{"  - json: {}\n  - drop: {}\n", "  - json: {}\n", "drop (line 5)"},
		{"  - json: {}\n  - drop: {if: a}\n  - drop: {if: b}\n", "  - drop: {if: b}\n  - json: {}\n", "drop (line 5)"},
		{"  - json: {}\n", "  - logfmt: {}\n", "json (line 4)"},
		{"  - json: {}\n  - set: {field: a, value: 1}\n", "  - json: {depth: 2}\n  - set: {field: a, value: 2}\n", ""},
		{"  - json: {}\n", "", "json (line 4)"},
	} {
		if got := describeSteps(removedSteps(steps(tt.old), steps(tt.new))); got != tt.want {
			t.Errorf("%q -> %q: removed %q, want %q", tt.old, tt.new, got, tt.want)
		}
	}
	if got := documentSteps([]byte("not: [yaml")); got != nil {
		t.Errorf("steps of a broken document: %v", got)
	}
}
