package escompat

import "testing"

func TestGlobs(t *testing.T) {
	match := []struct {
		pattern, s string
		want       bool
	}{
		{"logs-*", "logs-acme", true},
		{"logs-*", "logs-", true},
		{"logs-*", "metrics-acme", false},
		{"*-acme-*", "logs-acme-2024", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"*ab*ab", "ab", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	}
	for _, tc := range match {
		if got := GlobMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("GlobMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
	intersect := []struct {
		p, q string
		want bool
	}{
		{"logs-*", "logs-acme-*", true},
		{"logs-*", "metrics-*", false},
		{"*-prod", "logs-*", true},
		{"a*", "*b", true},
		{"ab", "a*c", false},
		{"x", "x", true},
	}
	for _, tc := range intersect {
		if got := globsIntersect(tc.p, tc.q); got != tc.want {
			t.Errorf("globsIntersect(%q, %q) = %v", tc.p, tc.q, got)
		}
		if got := globsIntersect(tc.q, tc.p); got != tc.want {
			t.Errorf("globsIntersect(%q, %q) = %v (reversed)", tc.q, tc.p, got)
		}
	}
}

func TestJavaFormatting(t *testing.T) {
	for lit, want := range map[string]string{
		"1": "1", "1.5": "1.5", "1e3": "1000.0", "1e7": "1.0E7", "0.0001": "1.0E-4", "-2.5e-5": "-2.5E-5",
		"123456789012345678901234567890": "123456789012345678901234567890",
	} {
		if got := javaNumber(lit); got != want {
			t.Errorf("javaNumber(%s) = %s, want %s", lit, got, want)
		}
	}
	doc, err := ParseDocument([]byte(`{"a":{"b":[1,"x",null,{"c":true}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := preview(doc.root); got != "{a={b=[1, x, null, {c=true}]}}" {
		t.Errorf("preview = %s", got)
	}
}

func TestDates(t *testing.T) {
	for s, want := range map[string]bool{
		"2024":                                 true,
		"2024-05":                              true,
		"2024-05-01":                           true,
		"2024-05-01T10":                        true,
		"2024-05-01T10:11":                     true,
		"2024-05-01T10:11:12,5Z":               true,
		"2024-05-01T10:11:12.123456789-0700":   true,
		"2024-05-01T10:11:12.123456789-07":     true,
		"2024-05-01 10:11:12":                  false,
		"2024-5-1":                             false,
		"2024-05-01T24:00":                     false,
		"2024-05-01T10:11:12.":                 false,
		"2024-05-01T10:11:12Zjunk":             false,
		"2024-05-01T10:11:12.1234567891+00:00": false,
	} {
		if got := isISODate(s, false, false); got != want {
			t.Errorf("isISODate(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{
		"2024-05-01":                true,
		"2024/05/01 10:11:12 +0000": true,
		"2024/05/01 +0100":          true,
		"2024":                      false, // no ':', '-' or '/'
		"12:30":                     false,
		"a-b":                       false,
	} {
		if got := isDynamicDate(s); got != want {
			t.Errorf("isDynamicDate(%q) = %v", s, got)
		}
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		unit string
		want string
	}{
		{225, "", "225b"}, {4608, "", "4.5kb"}, {1 << 20, "", "1mb"}, {4608, "b", "4608"}, {4608, "kb", "4"},
	} {
		if got := byteSize(tc.n, tc.unit); got != tc.want {
			t.Errorf("byteSize(%d, %q) = %s, want %s", tc.n, tc.unit, got, tc.want)
		}
	}
}

func TestFilterPathEncode(t *testing.T) {
	v := obj{
		{"took", 3},
		{"errors", true},
		{"items", []any{
			obj{{"create", obj{{"_id", "1"}, {"status", 201}}}},
			obj{{"index", obj{{"_id", "2"}, {"status", 400}, {"error", obj{{"type", "x"}, {"reason", "y"}}}}}},
		}},
	}
	for fp, want := range map[string]string{
		"errors,items.*.status,items.*.error": `{"errors":true,"items":[{"create":{"status":201}},{"index":{"status":400,"error":{"type":"x","reason":"y"}}}]}`,
		"items.*.error.type":                  `{"items":[{"index":{"error":{"type":"x"}}}]}`,
		"**.reason":                           `{"items":[{"index":{"error":{"reason":"y"}}}]}`,
		"it*.*._id":                           `{"items":[{"create":{"_id":"1"}},{"index":{"_id":"2"}}]}`,
		"nothing":                             `{}`,
		"took.deeper":                         `{}`,
	} {
		if got := string(Encode(v, ParseFilterPath(fp))); got != want {
			t.Errorf("filter_path=%s:\n got  %s\n want %s", fp, got, want)
		}
	}
	if got := string(Encode(obj{{"s", "a\"<>&\n\x01\xff"}}, nil)); got != `{"s":"a\"<>&\n\u0001\ufffd"}` {
		t.Errorf("string escaping: %s", got)
	}
}
