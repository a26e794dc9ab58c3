package router

import (
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/sluicelogs/sluice/schemas"
)

// Real User-Agent headers, as access logs show them.
const (
	uaChrome    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaSafariIOS = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	uaFirefox   = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
	uaCurl      = "curl/8.5.0"
	uaGooglebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaKubeProbe = "kube-probe/1.30"
	uaGoClient  = "Go-http-client/1.1"
)

// uaGarbage is n random bytes, mostly not UTF-8: the slowest input for
// the parser per byte.
func uaGarbage(n int) string {
	rng := rand.New(rand.NewSource(1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Intn(256))
	}
	return string(b)
}

func uaWant(browser, version, os, device string, bot bool) map[string]any {
	return map[string]any{"browser": browser, "browser_version": version, "os": os, "device": device, "bot": bot}
}

// TestParseUserAgent: parseUserAgent as a pipeline uses it.
func TestParseUserAgent(t *testing.T) {
	unknown := uaWant("", "", "", "", false)
	for _, c := range []struct {
		name, ua string
		want     map[string]any
	}{
		{"chrome desktop", uaChrome, uaWant("Chrome", "124.0.0.0", "Windows", "desktop", false)},
		{"safari ios", uaSafariIOS, uaWant("Safari", "17.4", "iOS", "mobile", false)},
		{"safari ipad", "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", uaWant("Safari", "17.4", "iOS", "tablet", false)},
		{"firefox", uaFirefox, uaWant("Firefox", "125.0", "Linux", "desktop", false)},
		{"edge", uaChrome + " Edg/124.0.2478.51", uaWant("Edge", "124.0.2478.51", "Windows", "desktop", false)},
		{"chrome android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36", uaWant("Chrome", "124.0.6367.82", "Android", "mobile", false)},
		{"curl", uaCurl, uaWant("", "", "", "bot", true)},
		{"googlebot", uaGooglebot, uaWant("", "", "", "bot", true)},
		{"go client", uaGoClient, uaWant("", "", "", "bot", true)},
		{"kube-probe", uaKubeProbe, unknown},
		{"empty", "", unknown},
		// Only the first MaxUserAgentLen bytes are read.
		{"long", uaChrome + " " + strings.Repeat("x", 1<<20), uaWant("Chrome", "124.0.0.0", "Windows", "desktop", false)},
		{"long after the limit", strings.Repeat(" ", MaxUserAgentLen) + uaChrome, unknown},
	} {
		// A map is stored as its JSON text.
		p := mustPipeline(t, StepSpec{Type: "set", Field: "ua", Expr: `parseUserAgent(log)`})
		r := schemas.Record{Log: c.ua}
		if res := p.Process(&r); res.DLQ != nil || r.Attributes["ua"] != jsonString(c.want) {
			t.Errorf("%s: %v (%v), want %v", c.name, r.Attributes["ua"], res.DLQ, jsonString(c.want))
		}
	}
	// Through expressions: a missing attribute is an unknown agent.
	for _, c := range []struct {
		expr, log string
		want      any
	}{
		{`parseUserAgent(log).browser + " " + parseUserAgent(log).os`, uaSafariIOS, "Safari iOS"},
		{`parseUserAgent(log).bot`, uaGooglebot, true},
		{`parseUserAgent(log).device == "desktop"`, uaFirefox, true},
		{`parseUserAgent(attributes.nosuch).browser`, uaChrome, ""},
		{`parseUserAgent(attributes.nosuch).bot`, uaChrome, false},
	} {
		p := mustPipeline(t, StepSpec{Type: "set", Field: "out", Expr: c.expr})
		r := schemas.Record{Log: c.log}
		if res := p.Process(&r); res.DLQ != nil || r.Attributes["out"] != c.want {
			t.Errorf("%s on %q: %#v (%v), want %#v", c.expr, c.log, r.Attributes["out"], res.DLQ, c.want)
		}
	}
}

// TestParseUserAgentCompiles: compiling an expression that calls
// parseUserAgent notes it, so that the parser is built then.
func TestParseUserAgentCompiles(t *testing.T) {
	for src, want := range map[string]bool{
		`parseUserAgent(log).os`:                   true,
		`log != "" && parseUserAgent(log).bot`:     true,
		`parseURL(log).host`:                       false,
		`attributes.parseUserAgent == "something"`: false,
	} {
		tree, err := parser.Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		var tc treeChecker
		ast.Walk(&tree.Node, &tc)
		if tc.err != nil || tc.userAgent != want {
			t.Errorf("%s: userAgent %v (%v), want %v", src, tc.userAgent, tc.err, want)
		}
	}
}

// TestParseUserAgentCost: a call on a 1 MiB string is charged for the
// MaxUserAgentLen bytes it reads, far within the record's budget, and
// calls in a loop end in cost_exceeded within the budget.
func TestParseUserAgentCost(t *testing.T) {
	big := uaGarbage(1 << 20)
	prog, err := compileExpr(`parseUserAgent(log)`, false)
	if err != nil {
		t.Fatal(err)
	}
	st := state{tenant: "t"}
	st.reset()
	r := schemas.Record{Log: big}
	if _, err := newEvaluator().run(prog, &st, &r); err != nil {
		t.Fatal(err)
	}
	work, alloc := MaxRecordCost-st.work, ExprAllocBudget-st.alloc
	if want := int64(MaxUserAgentLen*costUAByte + costCall + uaCost); work != want || alloc != uaAlloc {
		t.Errorf("charged %d units and %d bytes, want %d and %d", work, alloc, want, uaAlloc)
	}

	p := mustPipeline(t, StepSpec{Type: "set", Field: "ua", Expr: `parseUserAgent(log)`})
	r = schemas.Record{ID: "x", Log: big}
	if res, a := processMeasured(p, &r); res.DLQ != nil || a > allocLimit {
		t.Fatalf("%v; allocated %d KiB", res.DLQ, a>>10)
	}

	p = mustPipeline(t, StepSpec{Type: "set", Field: "n", Expr: `count(1..90000, parseUserAgent(log).bot)`})
	r = schemas.Record{ID: "x", Log: big}
	start := time.Now()
	res, a := processMeasured(p, &r)
	took := time.Since(start)
	if res.DLQ == nil || res.DLQ.Reason != ReasonCostExceeded {
		t.Fatalf("%+v, want cost_exceeded", res)
	}
	if a > allocLimit {
		t.Errorf("allocated %d MiB", a>>20)
	}
	t.Logf("%v after %v; allocated %d KiB", res.DLQ, took, a>>10)
}

// FuzzParseUserAgent: parseUserAgent never panics, returns its five keys,
// and is charged at most for MaxUserAgentLen bytes, whatever the input.
func FuzzParseUserAgent(f *testing.F) {
	for _, s := range []string{uaChrome, uaSafariIOS, uaFirefox, uaCurl, uaGooglebot, uaKubeProbe, uaGoClient, "", "\xff\xfe(((", "Android (Mobile/ Version/ é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, in := range []string{s, strings.Repeat(s, max(1, 4*MaxUserAgentLen/(len(s)+1)))} {
			m := &meter{}
			m.reset()
			out, err := fnParseUserAgent(m, []any{in})
			if err != nil {
				t.Fatalf("%q: %v", in, err)
			}
			if work := MaxRecordCost - m.work; work > MaxUserAgentLen*costUAByte+costCall+uaCost {
				t.Fatalf("%q: charged %d units", in, work)
			}
			got := out.(map[string]any)
			if len(got) != 5 {
				t.Fatalf("%q: %v", in, got)
			}
			for _, k := range []string{"browser", "browser_version", "os", "device"} {
				if _, ok := got[k].(string); !ok {
					t.Fatalf("%q: %s is %T", in, k, got[k])
				}
			}
			bot, ok := got["bot"].(bool)
			if !ok {
				t.Fatalf("%q: bot is %T", in, got["bot"])
			}
			switch d := got["device"].(string); {
			case d != "" && d != "desktop" && d != "mobile" && d != "tablet" && d != "tv" && d != "bot", bot != (d == "bot"):
				t.Fatalf("%q: device %q, bot %v", in, d, bot)
			}
			if v := got["browser_version"].(string); len(v) > 32 || (v != "" && got["browser"] == "") {
				t.Fatalf("%q: %v", in, got)
			}
		}
	})
}

// BenchmarkParseUserAgent is a set step that parses the whole line and
// keeps one part (a whole map would be stored as JSON text, which costs
// more than the parse).
func BenchmarkParseUserAgent(b *testing.B) {
	p := mustPipeline(b, StepSpec{Type: "set", Field: "browser", Expr: `parseUserAgent(log).browser`})
	for _, c := range []struct{ name, ua string }{
		{"chrome", uaChrome},
		{"safari-ios", uaSafariIOS},
		{"firefox", uaFirefox},
		{"curl", uaCurl},
		{"googlebot", uaGooglebot},
		{"kube-probe", uaKubeProbe},
		{"go-client", uaGoClient},
		{"empty", ""},
		{"garbage-1MiB", uaGarbage(1 << 20)},
	} {
		b.Run(c.name, func(b *testing.B) { benchmark(b, p, c.ua) })
	}
}
