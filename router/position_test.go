package router

import (
	"strings"
	"testing"
)

// TestErrorsAtTheValue: a problem with a pattern or an expression is
// shown at the line and column of the part of it at fault, not at the
// step.
func TestErrorsAtTheValue(t *testing.T) {
	src := `tenant: a
version: 1
steps:
  - regex:
      pattern: '^(?P<a>x)(?P<b>[z-a])'
  - set:
      field: x
      expr: attributes.a + nosuch
  - grok: {pattern: ['%{INT:n}', '%{IP:ip} %{NOPE:x}']}
  - drop:
      if: |
        attributes.a == "x" &&
          nosuch2 > 1
`
	lines := strings.Split(src, "\n")
	at := func(line int, text string) [2]int {
		i := strings.Index(lines[line-1], text)
		if i < 0 {
			t.Fatalf("%q not on line %d", text, line)
		}
		return [2]int{line, i + 1}
	}
	_, err := Parse([]byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	got := map[[2]int]string{}
	for _, e := range specErrors(t, err) {
		got[[2]int{e.Line, e.Column}] = e.Msg
	}
	for pos, want := range map[[2]int]string{
		at(5, "z-a"):       "invalid character class range",
		at(8, "nosuch"):    "unknown name nosuch",
		at(9, "%{NOPE:x}"): "no pattern named NOPE",
		at(13, "nosuch2"):  "unknown name nosuch2",
	} {
		if msg, ok := got[pos]; !ok || !strings.Contains(msg, want) {
			t.Errorf("at line %d, column %d: want %q; errors: %v", pos[0], pos[1], want, got)
		}
	}
}
