package router

import (
	_ "embed"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/schemas"
)

// Grok: patterns written with named, reusable parts, %{NAME},
// %{NAME:field} and %{NAME:field:type}, as Logstash, Fluent Bit and
// Vector users know them, expanded to one RE2 pattern when the pipeline
// is compiled. The built-in library (grok-patterns.txt) has Logstash's
// core names, rewritten for RE2; a pipeline's patterns: add names or
// replace built-in ones.

//go:embed grok-patterns.txt
var grokPatternsText string

// grokBuiltin is the built-in library, by name.
var grokBuiltin = func() map[string]string {
	defs, err := parseGrokDefs(grokPatternsText)
	if err != nil {
		panic(err)
	}
	return defs
}()

// Limits of grok expansion.
const (
	// maxGrokDepth bounds how deeply patterns may refer to patterns.
	maxGrokDepth = 16
	// maxGrokExpanded bounds an expanded pattern; the compiled program is
	// bounded by MaxRegexInsts as well.
	maxGrokExpanded = 64 << 10
)

// grokNameRE is a pattern name.
var grokNameRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// grokTypes are the types a capture may be given.
var grokTypes = map[string]bool{"string": true, "int": true, "float": true, "bool": true, "ip": true,
	"duration": true, "bytes": true, "timestamp": true}

// parseGrokDefs reads "NAME pattern" lines; blank lines and lines starting
// with # are skipped.
func parseGrokDefs(text string) (map[string]string, error) {
	defs := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		name, pat, ok := strings.Cut(line, " ")
		if !ok || !grokNameRE.MatchString(name) {
			return nil, fmt.Errorf("grok patterns line %d: want NAME pattern", i+1)
		}
		defs[name] = strings.TrimSpace(pat)
	}
	return defs, nil
}

// grokCapture is a capture of an expanded pattern: the attribute it sets
// and the type its text is converted to.
type grokCapture struct {
	field string
	typ   string // "" or "string": the text as it is
}

// grokExpander expands grok patterns with a pipeline's own patterns over
// the built-in ones.
type grokExpander struct {
	user map[string]string
	caps []grokCapture
	b    strings.Builder
}

// expandGrok expands a grok pattern into an RE2 pattern whose capture
// groups are named _0, _1, ...: caps[i] says what _i sets. A named group
// written as (?P<name>...) in the pattern sets the attribute name, as in a
// regex step.
func expandGrok(pattern string, user map[string]string) (string, []grokCapture, error) {
	e := &grokExpander{user: user}
	if err := e.expand(pattern, nil); err != nil {
		return "", nil, err
	}
	return e.b.String(), e.caps, nil
}

func (e *grokExpander) expand(p string, stack []string) error {
	if len(stack) > maxGrokDepth {
		return fmt.Errorf("patterns nest more than %d deep: %s", maxGrokDepth, strings.Join(stack, " > "))
	}
	for len(p) > 0 {
		if e.b.Len() > maxGrokExpanded {
			return fmt.Errorf("the expanded pattern is longer than %d bytes", maxGrokExpanded)
		}
		i := strings.Index(p, "%{")
		j, open := namedGroup(p)
		if j >= 0 && (i < 0 || j < i) {
			// A named group of plain RE2: its name is an attribute.
			e.b.WriteString(p[:j])
			end := strings.IndexByte(p[j:], '>')
			if end < 0 {
				return fmt.Errorf("unterminated group name at %q", clipText(p[j:], 20))
			}
			name := p[j+open : j+end]
			if name == "" {
				return fmt.Errorf("empty group name")
			}
			fmt.Fprintf(&e.b, "(?P<_%d>", len(e.caps))
			e.caps = append(e.caps, grokCapture{field: name})
			p = p[j+end+1:]
			continue
		}
		if i < 0 {
			e.b.WriteString(p)
			return nil
		}
		e.b.WriteString(p[:i])
		end := strings.IndexByte(p[i:], '}')
		if end < 0 {
			return fmt.Errorf("unterminated %%{ at %q", clipText(p[i:], 20))
		}
		ref := p[i+2 : i+end]
		p = p[i+end+1:]
		name, field, typ := ref, "", ""
		if k := strings.IndexByte(ref, ':'); k >= 0 {
			name, field = ref[:k], ref[k+1:]
			if k := strings.IndexByte(field, ':'); k >= 0 {
				field, typ = field[:k], field[k+1:]
			}
		}
		if !grokNameRE.MatchString(name) {
			return fmt.Errorf("%%{%s}: %q is not a pattern name (letters, digits, _)", ref, name)
		}
		def, ok := e.user[name]
		if !ok {
			def, ok = grokBuiltin[name]
		}
		if !ok {
			return fmt.Errorf("%%{%s}: no pattern named %s", ref, name)
		}
		for _, s := range stack {
			if s == name {
				return fmt.Errorf("%%{%s}: pattern %s refers to itself: %s > %s", ref, name, strings.Join(stack, " > "), name)
			}
		}
		if typ != "" && !grokTypes[typ] {
			return fmt.Errorf("%%{%s}: unknown type %q (string, int, float, bool, ip, duration, bytes, timestamp)", ref, typ)
		}
		if field == "" && typ != "" {
			return fmt.Errorf("%%{%s}: a type needs a field", ref)
		}
		if field != "" {
			if _, err := attrKey(field); err != nil {
				return fmt.Errorf("%%{%s}: %w", ref, err)
			}
			fmt.Fprintf(&e.b, "(?P<_%d>", len(e.caps))
			e.caps = append(e.caps, grokCapture{field: field, typ: typ})
		} else {
			e.b.WriteString("(?:")
		}
		if err := e.expand(def, append(stack, name)); err != nil {
			return err
		}
		e.b.WriteString(")")
	}
	return nil
}

// namedGroup finds the first named group of RE2 syntax in p, (?P<name> or
// (?<name>, and returns where it starts and the length of its opening
// before the name; -1 when there is none.
func namedGroup(p string) (int, int) {
	for i := 0; i+3 < len(p); i++ {
		switch {
		case p[i] == '\\':
			i++ // an escaped character, such as \(
		case strings.HasPrefix(p[i:], "(?P<"):
			return i, 4
		case strings.HasPrefix(p[i:], "(?<") && i+3 < len(p) && (p[i+3] == '_' || isLetter(p[i+3])):
			return i, 3
		}
	}
	return -1, 0
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// attrKey checks a capture's field name: an attribute key.
func attrKey(field string) (string, error) {
	if strings.TrimSpace(field) != field || field == "" || strings.ContainsAny(field, "{}") {
		return "", fmt.Errorf("%q is not a field name", field)
	}
	return field, nil
}

// clipText shortens s to n bytes for a message.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// grokPattern is one compiled grok pattern of a step.
type grokPattern struct {
	re   *sandboxRE
	caps []grokCapture
}

// compileGrok expands and compiles a grok pattern.
func compileGrok(pattern string, user map[string]string) (*grokPattern, error) {
	if len(pattern) > MaxPatternLen {
		return nil, fmt.Errorf("pattern longer than %d bytes", MaxPatternLen)
	}
	expanded, caps, err := expandGrok(pattern, user)
	if err != nil {
		return nil, err
	}
	if len(caps) == 0 {
		return nil, fmt.Errorf("no capture: name at least one part, as in %%{IP:client}")
	}
	re, err := compileRegexExpanded(expanded)
	if err != nil {
		return nil, err
	}
	return &grokPattern{re: re, caps: caps}, nil
}

// grokStep matches the field against its patterns in order; the first that
// matches sets its captures.
type grokStep struct {
	field    fieldRef
	patterns []*grokPattern
}

func (s *grokStep) apply(r *schemas.Record, st *state) *stepError {
	in, serr := parseInput(s.field, r)
	if serr != nil {
		return serr
	}
	for _, p := range s.patterns {
		if err := st.charge(p.re.cost(len(in)), "grok"); err != nil {
			return err
		}
		m := p.re.re.FindStringSubmatchIndex(in)
		if m == nil {
			continue
		}
		// Converted first, set after: a capture that does not convert
		// leaves the record as it was.
		kv := make([]kvPair, 0, len(p.caps))
		for i, c := range p.caps {
			lo, hi := m[2*i+2], m[2*i+3]
			if lo < 0 {
				continue // the group did not take part in the match
			}
			v, ok, err := convertCapture(in[lo:hi], c.typ)
			if err != nil {
				return failf(ReasonParse, "grok: %s: %v", c.field, err)
			}
			if ok {
				kv = append(kv, kvPair{c.field, v})
			}
		}
		for _, p := range kv {
			setAttr(r, p.k, p.v)
		}
		return nil
	}
	return failf(ReasonParse, "grok: %s matches none of the %d patterns", s.field.name, len(s.patterns))
}

// convertCapture converts a capture's text to its type. A typed capture
// that is empty or "-" (what access logs write for "none") is absent, not
// an error.
func convertCapture(text, typ string) (any, bool, error) {
	if typ == "" || typ == "string" {
		return text, true, nil
	}
	if text == "" || text == "-" {
		return nil, false, nil
	}
	switch typ {
	case "int":
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, false, fmt.Errorf("%q is not an int", text)
		}
		return n, true, nil
	case "float":
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, false, fmt.Errorf("%q is not a float", text)
		}
		return f, true, nil
	case "bool":
		switch strings.ToLower(text) {
		case "true", "yes", "on", "1":
			return true, true, nil
		case "false", "no", "off", "0":
			return false, true, nil
		}
		return nil, false, fmt.Errorf("%q is not a bool", text)
	case "ip":
		a, err := netip.ParseAddr(text)
		if err != nil {
			return nil, false, fmt.Errorf("%q is not an IP address", text)
		}
		return a.Unmap().String(), true, nil
	case "duration":
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return f, true, nil
		}
		d, err := time.ParseDuration(text)
		if err != nil {
			return nil, false, fmt.Errorf("%q is not a duration (1.5s, 120ms, 2h45m, or seconds)", text)
		}
		return d.Seconds(), true, nil
	case "bytes":
		n, err := parseBytes(text)
		if err != nil {
			return nil, false, err
		}
		return n, true, nil
	case "timestamp":
		for _, l := range iso8601 {
			if t, err := time.Parse(l, text); err == nil {
				return t.UTC().Format(time.RFC3339Nano), true, nil
			}
		}
		return nil, false, fmt.Errorf("%q is not an ISO 8601 time", text)
	}
	return nil, false, fmt.Errorf("unknown type %q", typ)
}

// byteUnits are the units a bytes value may have, in bytes.
var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
}

// parseBytes reads a size: a number and an optional unit, SI (kB, MB)
// or binary (KiB, MiB), case-insensitive ("512", "10KB", "1.5 MiB").
func parseBytes(text string) (int64, error) {
	i := 0
	for i < len(text) && (text[i] >= '0' && text[i] <= '9' || text[i] == '.') {
		i++
	}
	f, err := strconv.ParseFloat(text[:i], 64)
	unit, ok := byteUnits[strings.ToLower(strings.TrimSpace(text[i:]))]
	if err != nil || !ok || f*unit >= 1<<63 {
		return 0, fmt.Errorf("%q is not a size (512, 10KB, 1.5MiB)", text)
	}
	return int64(f * unit), nil
}
