package router

import (
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/schemas"
)

// TestStepGuards: if runs a step only when true, on any step; on_error
// decides what a failing step does: dead_letter (the default), skip, or
// keep_going with the error noted; a record over its cost bound is
// dead-lettered whatever on_error says.
func TestStepGuards(t *testing.T) {
	run := func(t *testing.T, doc, log string) (schemas.Record, Result) {
		t.Helper()
		p, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n" + doc))
		if err != nil {
			t.Fatal(err)
		}
		r := schemas.Record{Log: log, Kubernetes: schemas.Kubernetes{ContainerName: "api"}}
		return r, p.Process(&r)
	}
	t.Run("if on a parse step", func(t *testing.T) {
		doc := "  - json: {if: 'container == \"api\"'}\n  - set: {field: seen, value: yes, if: 'attributes.level == \"info\"'}\n"
		r, res := run(t, doc, `{"level":"info"}`)
		if res.DLQ != nil || r.Attributes["level"] != "info" || r.Attributes["seen"] != "yes" {
			t.Fatalf("%v %v", res.DLQ, r.Attributes)
		}
		doc = "  - json: {if: 'container == \"web\"'}\n"
		r, res = run(t, doc, `not json`)
		if res.DLQ != nil || len(r.Attributes) != 0 {
			t.Fatalf("a step whose if is false ran: %v %v", res.DLQ, r.Attributes)
		}
	})
	t.Run("if on sample", func(t *testing.T) {
		doc := "  - json: {}\n  - sample: {one_in: 1000000, if: 'attributes.level == \"debug\"'}\n"
		if _, res := run(t, doc, `{"level":"error"}`); res.Dropped {
			t.Error("an error line was sampled out")
		}
	})
	t.Run("dead_letter by default", func(t *testing.T) {
		_, res := run(t, "  - set: {field: n, expr: 'int(log)'}\n", "x")
		if res.DLQ == nil || res.DLQ.Reason != ReasonExpr {
			t.Fatalf("%+v", res)
		}
		_, res = run(t, "  - set: {field: n, expr: 'int(log)', on_error: dead_letter}\n", "x")
		if res.DLQ == nil {
			t.Fatal("dead_letter did not dead-letter")
		}
	})
	t.Run("skip", func(t *testing.T) {
		doc := "  - set: {field: n, expr: 'int(log)', on_error: skip}\n  - set: {field: after, value: 1}\n"
		r, res := run(t, doc, "x")
		if res.DLQ != nil || r.Attributes["after"] != int64(1) || r.Attributes["n"] != nil || r.Attributes[ErrorsKey] != nil {
			t.Fatalf("%v %v", res.DLQ, r.Attributes)
		}
	})
	t.Run("keep_going notes each error", func(t *testing.T) {
		doc := "  - json: {on_error: keep_going}\n  - set: {field: n, expr: 'int(log)', on_error: keep_going}\n  - set: {field: after, value: 1}\n"
		r, res := run(t, doc, "x")
		errs, _ := r.Attributes[ErrorsKey].(string)
		lines := strings.Split(errs, "\n")
		if res.DLQ != nil || r.Attributes["after"] != int64(1) || len(lines) != 2 ||
			!strings.HasPrefix(lines[0], "step 1 (json): ") || !strings.HasPrefix(lines[1], "step 2 (set): ") {
			t.Fatalf("%v %q", res.DLQ, errs)
		}
	})
	t.Run("an if that fails is the step's error", func(t *testing.T) {
		_, res := run(t, "  - set: {field: a, value: 1, if: 'int(log) > 1'}\n", "x")
		if res.DLQ == nil || res.DLQ.Reason != ReasonExpr {
			t.Fatalf("%+v", res)
		}
		r, res := run(t, "  - set: {field: a, value: 1, if: 'int(log) > 1', on_error: skip}\n", "x")
		if res.DLQ != nil || r.Attributes["a"] != nil {
			t.Fatalf("%v %v", res.DLQ, r.Attributes)
		}
	})
	t.Run("cost exceeded is not skipped", func(t *testing.T) {
		_, res := run(t, "  - set: {field: big, expr: 'repeat(log, 100000000)', on_error: skip}\n", "xxxxxxxx")
		if res.DLQ == nil || res.DLQ.Reason != ReasonCostExceeded {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("bad on_error and if", func(t *testing.T) {
		_, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n  - json: {on_error: ignore}\n  - rename: {from: a, to: b, if: 'nosuch'}\n"))
		if err == nil || !strings.Contains(err.Error(), "on_error must be dead_letter, skip or keep_going") || !strings.Contains(err.Error(), "rename.if") {
			t.Fatalf("%v", err)
		}
	})
}
