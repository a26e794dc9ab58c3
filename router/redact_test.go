package router

import (
	"strings"
	"testing"

	"github.com/sluicelogs/sluice/schemas"
)

// TestRedactFunctions: the redaction and shaping functions, as a pipeline
// uses them.
func TestRedactFunctions(t *testing.T) {
	for _, c := range []struct {
		expr string
		log  string
		want any
	}{
		{`replaceRegex(log, "[0-9]{4}-[0-9]{4}-[0-9]{4}-([0-9]{4})", "****-****-****-$1")`, "card 1234-5678-9012-3456 ok", "card ****-****-****-3456 ok"},
		{`replaceRegex(log, "(?P<user>[a-z]+)@example\\.com", "${user}@…")`, "from bob@example.com to amy@example.com", "from bob@… to amy@…"},
		{`replaceRegex(log, "x", "y")`, "no match", "no match"},
		{`sha256(log)`, "alice", "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"},
		{`sha256(log, "pepper") == sha256("pepperalice")`, "alice", true},
		{`sha256(log, "pepper") != sha256(log)`, "alice", true},
		{`mask(log)`, "secret", "******"},
		{`mask(log, 4)`, "4111111111111111", "************1111"},
		{`mask(log, 9)`, "short", "short"},
		{`mask(log, 2)`, "héllo", "***lo"},
		{`truncate(log, 3)`, "abcdef", "abc"},
		{`truncate(log, 2)`, "héllo", "h"},
		{`truncate(log, 10)`, "abc", "abc"},
		{`parseURL(log).host`, "https://bob@shop.example.com:8443/cart/items?id=7&ref=mail#top", "shop.example.com"},
		{`parseURL(log).port + " " + parseURL(log).path + " " + parseURL(log).query.id + " " + parseURL(log).user + " " + parseURL(log).fragment`,
			"https://bob@shop.example.com:8443/cart/items?id=7&ref=mail#top", "8443 /cart/items 7 bob top"},
		{`parseURL(log).query.nosuch == ""`, "/a?b=c", false},
	} {
		p, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n  - set: {field: out, expr: '" + strings.ReplaceAll(c.expr, "'", "''") + "'}\n"))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		r := schemas.Record{Log: c.log}
		res := p.Process(&r)
		if res.DLQ != nil || r.Attributes["out"] != c.want {
			t.Errorf("%s on %q: %#v (%v), want %#v", c.expr, c.log, r.Attributes["out"], res.DLQ, c.want)
		}
	}
}

// TestRedactFunctionsBounded: the new functions stay within the sandbox's
// bounds however they are called.
func TestRedactFunctionsBounded(t *testing.T) {
	big := strings.Repeat("a", 64<<10)
	for _, expr := range []string{
		`replaceRegex(log, "", log)`,                           // a match at every position, each replaced by the whole line
		`replaceRegex(log, "(a)", "$1$1$1$1")`,                 // grows 4x at every character
		`len(replaceRegex(log, "(?:a{1,30}){1,30}", "x")) > 0`, // a large program over a long line
	} {
		p, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n  - set: {field: out, expr: '" + expr + "'}\n"))
		if err != nil {
			if strings.Contains(err.Error(), "instructions") {
				continue // refused at compile time: bounded too
			}
			t.Fatalf("%s: %v", expr, err)
		}
		r := schemas.Record{Log: big}
		res := p.Process(&r)
		if res.DLQ == nil || res.DLQ.Reason != ReasonCostExceeded {
			t.Errorf("%s: %+v, want cost_exceeded", expr, res.DLQ)
		}
	}
	// Errors, not panics.
	for _, expr := range []string{`mask(log, -1)`, `truncate(log, -1)`, `parseURL("%zz")`, `replaceRegex(log, "(", "")`} {
		p, err := Load([]byte("tenant: t\nversion: 1\nsteps:\n  - set: {field: out, expr: '" + expr + "'}\n"))
		if err != nil {
			continue
		}
		r := schemas.Record{Log: "x"}
		if res := p.Process(&r); res.DLQ == nil || res.DLQ.Reason != ReasonExpr {
			t.Errorf("%s: %+v, want an expression error", expr, res.DLQ)
		}
	}
}
