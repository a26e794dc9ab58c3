package eslite

import (
	"reflect"
	"strings"
	"testing"
)

// projectQueries are the query strings of the README, the CLI's help and
// cmd/sluice's tests.
var projectQueries = []string{
	`level:error AND http.status:500`, `level:error`, `kubernetes.labels.app:cart`, `kubernetes.pod_name:cart-1 AND level:error`,
	`kubernetes.pod_name:cart-1`, `*`, `-level:debug`, `old`, `checkout`, `level:*`, `-level:error -level:debug`, `level:warn`,
	`n:[0 TO 9999]`, `kubernetes.labels.app_kubernetes_io/name:cart AND http.status:201`,
	`kubernetes.labels.app:cart AND kubernetes.workload.name:cart`, `kubernetes.labels.app:cart AND kubernetes.pod_name:checkout*`,
	`kubernetes.labels.version:1.5.0 AND kubernetes.labels.app:cart`, `kubernetes.namespace_name:billing`,
}

// TestParseQueryString: how queries parse, shown by the printer: every
// clause with its occurrence (+ required, - prohibited, bare optional).
func TestParseQueryString(t *testing.T) {
	for _, tt := range []struct{ query, or, and string }{
		{`level:error AND http.status:500`, `+level:error +http.status:500`, `+level:error +http.status:500`},
		{`a b`, `a b`, `+a +b`},
		{`a OR b`, `a b`, `a b`},
		{`a AND b OR c`, `+a +b c`, `+a b c`},
		{`a OR b AND c`, `a +b +c`, `a +b +c`},
		{`-level:error -level:debug`, `-level:error -level:debug`, `-level:error -level:debug`},
		{`+a -b c`, `+a -b c`, `+a -b +c`},
		{`NOT a`, `-a`, `-a`},
		{`!a && b || c`, `-a +b c`, `-a b c`},
		{`a AND NOT b`, `+a -b`, `+a -b`},
		{`f:(a OR b) g:"x y"`, `(f:a f:b) g:"x y"`, `+(f:a f:b) +g:"x y"`},
		{`(a (b c))^2`, `(a (b c))^2`, `+(+a +(+b +c))^2`},
		{`n:[0 TO 9999]`, `n:[0 TO 9999]`, `+n:[0 TO 9999]`},
		{`n:{a TO *] n:[* TO "b c"}`, `n:{a TO *] n:[* TO "b c"}`, `+n:{a TO *] +n:[* TO "b c"}`},
		{`s:>=500 s:<1 s:>now-1h`, `s:[500 TO *] s:[* TO 1} s:{now-1h TO *]`, `+s:[500 TO *] +s:[* TO 1} +s:{now-1h TO *]`},
		{`field: value`, `field:value`, `+field:value`},
		{`pod:cart\-1 a\:b \"q\"`, `pod:cart\-1 a\:b \"q\"`, `+pod:cart\-1 +a\:b +\"q\"`},
		{`labels.app_kubernetes_io/name:cart`, `labels.app_kubernetes_io/name:cart`, `+labels.app_kubernetes_io/name:cart`},
		{`kubernetes.pod_name:checkout* qu?ck *:*`, `kubernetes.pod_name:checkout* qu?ck *:*`, `+kubernetes.pod_name:checkout* +qu?ck +*:*`},
		{`and or not a&&b`, `and or not a&&b`, `+and +or +not +a&&b`},
		{`   `, ``, ``},
	} {
		for _, c := range []struct {
			and  bool
			want string
		}{{false, tt.or}, {true, tt.and}} {
			g, err := parseQueryString(tt.query, c.and)
			if err != nil {
				t.Errorf("%q (and %v): %s at %d", tt.query, c.and, err.msg, err.pos)
				continue
			}
			if got := g.String(); got != c.want {
				t.Errorf("%q (and %v): %q, want %q", tt.query, c.and, got, c.want)
			}
		}
	}
	for _, q := range projectQueries {
		if _, err := parseQueryString(q, true); err != nil {
			t.Errorf("%q: %s", q, err.msg)
		}
	}
}

// TestQueryStringErrors: what is refused, and why; the error is a 400
// query_shard_exception whose cause says where.
func TestQueryStringErrors(t *testing.T) {
	st := New()
	for q, want := range map[string]string{
		`a:(b`:                        "missing ')' at column 5",
		`a)`:                          "unexpected ')' at column 2",
		`()`:                          "empty group '()' at column 2",
		`a AND`:                       "a clause must follow AND at column 6",
		`a OR )`:                      "a clause must follow OR at column 6",
		`AND a`:                       "unexpected AND at column 1",
		`+`:                           "a clause must follow a + or - or NOT",
		`a:`:                          `a term must follow "a:"`,
		`"open`:                       "unterminated phrase at column 1",
		`a\`:                          "a backslash must escape a character",
		`n:[1 TO`:                     "a range bound is missing",
		`n:[1 2]`:                     "a range needs TO between its bounds",
		`n:[1 TO 2`:                   "a range must end with ] or }",
		`roam~`:                       "fuzzy and proximity searches (~) are not supported",
		`"a b"~2`:                     "fuzzy and proximity searches (~) are not supported",
		`log:/ab.*/`:                  "regular expressions (/.../) are not supported",
		`a^`:                          "a boost (^) needs a number",
		`a:b:c`:                       `unexpected ":"`,
		strings.Repeat("(", 60) + "a": "groups nested too deeply",
	} {
		_, e := st.parseQueryString(map[string]any{"query": q})
		if e == nil || e.Status != 400 || e.Type != "query_shard_exception" || e.CausedBy == nil || e.CausedBy.Type != "parse_exception" ||
			!strings.Contains(e.CausedBy.Reason, want) {
			t.Errorf("%q: %v, want %q", q, e, want)
		}
	}
}

// FuzzQueryString: the parser never panics; what it refuses is a 400
// query_shard_exception with a reason; what it accepts prints to a query
// that parses to the same tree, and runs.
func FuzzQueryString(f *testing.F) {
	for _, q := range append(projectQueries, `a:(b OR "c d")^2 +e:[1 TO *} -f:>=3 g\:h*`, `((a))`, `a:b:c`, `"x\" y"`, `x:\(`) {
		f.Add(q)
	}
	st := New()
	d := &doc{vals: []val{{f: st.fields.id("a"), k: vText, s: "hello world"}, {f: st.fields.id("b"), k: vNum, num: 3}}}
	f.Fuzz(func(t *testing.T, q string) {
		for _, and := range []bool{false, true} {
			g, err := parseQueryString(q, and)
			if err != nil {
				if err.msg == "" || err.pos < 0 || err.pos > len(q) {
					t.Fatalf("%q: error %+v", q, err)
				}
				_, e := st.parseQueryString(map[string]any{"query": q})
				if e == nil || e.Status != 400 || e.Type != "query_shard_exception" || !strings.HasPrefix(e.CausedBy.Reason, "Cannot parse") {
					t.Fatalf("%q: %v", q, e)
				}
				continue
			}
			printed := g.String()
			again, err := parseQueryString(printed, false)
			if err != nil {
				t.Fatalf("%q printed %q, which does not parse: %s", q, printed, err.msg)
			}
			if !reflect.DeepEqual(g, again) {
				t.Fatalf("%q printed %q, which parses to %q", q, printed, again.String())
			}
			if len(g.clauses) > 0 {
				st.compileQS(g, &qsOptions{and: and}).match(d)
			}
		}
	})
}
