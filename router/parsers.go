package router

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	// The time zones of timestamp and klog steps are looked up in the
	// binary's own copy of the zone database: the image has none.
	_ "time/tzdata"
)

// parseLogfmt calls set for every key=value pair of a logfmt line. Values
// are strings; a quoted value is unquoted with Go escapes; a bare key gets
// the value true. A line with no key=value pair at all is an error, so that
// free text is not taken for a list of bare keys.
func parseLogfmt(s, prefix string, set func(k string, v any)) error {
	pairs := 0
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] <= ' ' {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] > ' ' && s[i] != '=' && s[i] != '"' {
			i++
		}
		key := s[start:i]
		if key == "" {
			return fmt.Errorf("logfmt: unexpected %q at offset %d", s[i], i)
		}
		if i >= len(s) || s[i] != '=' {
			if i < len(s) && s[i] == '"' {
				return fmt.Errorf("logfmt: unexpected '\"' at offset %d", i)
			}
			set(prefix+key, true)
			continue
		}
		i++ // '='
		var val string
		if i < len(s) && s[i] == '"' {
			j := i + 1
			escaped := false
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					escaped = true
					continue
				}
				if s[j] == '"' {
					break
				}
			}
			if j >= len(s) {
				return fmt.Errorf("logfmt: unterminated quoted value at offset %d", i)
			}
			if escaped {
				u, err := strconv.Unquote(s[i : j+1])
				if err != nil {
					return fmt.Errorf("logfmt: bad quoted value at offset %d: %w", i, err)
				}
				val = u
			} else {
				val = s[i+1 : j]
			}
			i = j + 1
		} else {
			start := i
			for i < len(s) && s[i] > ' ' {
				i++
			}
			val = s[start:i]
		}
		set(prefix+key, val)
		pairs++
	}
	if pairs == 0 {
		return errors.New("logfmt: no key=value pair")
	}
	return nil
}

// klogRE matches the klog/glog header:
// Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg
var klogRE = regexp.MustCompile(`^([IWEF])(\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) +(\d+) ([^:\] ]+):(\d+)\] ?`)

var klogSeverity = map[byte]string{'I': "info", 'W': "warning", 'E': "error", 'F': "fatal"}

// klogLine is a parsed klog header.
type klogLine struct {
	severity string
	time     time.Time
	pid      int64
	file     string
	line     int64
	message  string
}

// parseKlog parses a klog header. klog does not print the year: it is taken
// from ref, and a time more than 7 days after ref is moved one year back
// (a December line read in January).
func parseKlog(s string, ref time.Time, loc *time.Location) (klogLine, error) {
	m := klogRE.FindStringSubmatchIndex(s)
	if m == nil {
		return klogLine{}, errors.New("klog: no klog header")
	}
	num := func(g int) int {
		n, _ := strconv.Atoi(s[m[2*g]:m[2*g+1]])
		return n
	}
	month, day, hh, mm, ss, us := num(2), num(3), num(4), num(5), num(6), num(7)
	if month < 1 || month > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return klogLine{}, fmt.Errorf("klog: bad date or time %q", s[m[4]:m[15]])
	}
	t := time.Date(ref.Year(), time.Month(month), day, hh, mm, ss, us*1000, loc).UTC()
	if t.Day() != day {
		return klogLine{}, fmt.Errorf("klog: bad date %q", s[m[4]:m[7]])
	}
	if t.After(ref.Add(7 * 24 * time.Hour)) {
		t = t.AddDate(-1, 0, 0)
	}
	pid, err := strconv.ParseInt(s[m[16]:m[17]], 10, 64)
	if err != nil {
		return klogLine{}, fmt.Errorf("klog: bad thread id: %w", err)
	}
	line, err := strconv.ParseInt(s[m[20]:m[21]], 10, 64)
	if err != nil {
		return klogLine{}, fmt.Errorf("klog: bad line number: %w", err)
	}
	return klogLine{
		severity: klogSeverity[s[m[2]]],
		time:     t,
		pid:      pid,
		file:     s[m[18]:m[19]],
		line:     line,
		message:  s[m[1]:],
	}, nil
}

// splitKlogStructured splits the message of a structured klog line
// (klog's InfoS and ErrorS: "Pod updated" pod="kube-system/dns" err="x")
// into the unquoted message and its key/value pairs, values as strings.
// A message that does not have that form whole is returned as it is, with
// no pairs: a line that merely starts with a quote is not an error.
func splitKlogStructured(s string) (string, []kvPair) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return s, nil
	}
	msg, err := strconv.Unquote(q)
	if err != nil {
		return s, nil
	}
	rest := strings.TrimLeft(s[len(q):], " ")
	if rest == "" {
		return msg, nil
	}
	var kv []kvPair
	if err := parseLogfmt(rest, "", func(k string, v any) { kv = append(kv, kvPair{k, v}) }); err != nil {
		return s, nil
	}
	for _, p := range kv {
		if p.v == true { // a bare word: not key=value, so not this form
			return s, nil
		}
	}
	return msg, kv
}

// namedLayouts are the layout names a timestamp step accepts besides a Go
// reference-time layout.
var namedLayouts = map[string]string{
	"ANSIC":       time.ANSIC,
	"UnixDate":    time.UnixDate,
	"RubyDate":    time.RubyDate,
	"RFC822":      time.RFC822,
	"RFC822Z":     time.RFC822Z,
	"RFC850":      time.RFC850,
	"RFC1123":     time.RFC1123,
	"RFC1123Z":    time.RFC1123Z,
	"RFC3339":     time.RFC3339,
	"RFC3339Nano": time.RFC3339Nano,
	"Kitchen":     time.Kitchen,
	"Stamp":       time.Stamp,
	"StampMilli":  time.StampMilli,
	"StampMicro":  time.StampMicro,
	"StampNano":   time.StampNano,
	"DateTime":    time.DateTime,
	"DateOnly":    time.DateOnly,
}

// unixScales are the epoch layouts and their unit in nanoseconds.
var unixScales = map[string]int64{
	"unix":    1e9,
	"unix_ms": 1e6,
	"unix_us": 1e3,
	"unix_ns": 1,
}

// timeLayout is one resolved layout of a timestamp step: a Go layout, or
// an epoch in units of scale nanoseconds.
type timeLayout struct {
	layout string
	scale  int64
}

// parseTime converts v with a resolved layout to UTC; a time written
// without a zone is in loc.
func parseTime(v any, l timeLayout, loc *time.Location) (time.Time, error) {
	if l.scale != 0 {
		ns, err := epochNanos(v, l.scale)
		if err != nil {
			return time.Time{}, err
		}
		return time.Unix(0, ns).UTC(), nil
	}
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("parse time: want a string, got %T", v)
	}
	t, err := time.ParseInLocation(l.layout, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse time: %w", err)
	}
	return t.UTC(), nil
}

// iso8601 are the Go layouts of the ISO8601 preset: date and time with
// T or a space, with or without fractional seconds, a Z, an offset with
// or without its colon, or no zone (then the step's timezone).
var iso8601 = func() []string {
	var out []string
	for _, sep := range []string{"T", " "} {
		for _, zone := range []string{"Z07:00", "Z0700", "Z07", ""} {
			out = append(out, "2006-01-02"+sep+"15:04:05.999999999"+zone)
		}
	}
	return out
}()

// resolveLayout turns a spec layout into the layouts it stands for: a Go
// layout, a Go layout name (RFC3339, ...), ISO8601, an epoch
// (unix, unix_ms, unix_us, unix_ns) or a strftime layout (one with a %). A
// Go layout must contain at least one reference-time element.
func resolveLayout(l string) ([]timeLayout, error) {
	if s, ok := unixScales[l]; ok {
		return []timeLayout{{scale: s}}, nil
	}
	if l == "ISO8601" {
		out := make([]timeLayout, len(iso8601))
		for i, g := range iso8601 {
			out[i] = timeLayout{layout: g}
		}
		return out, nil
	}
	if g, ok := namedLayouts[l]; ok {
		return []timeLayout{{layout: g}}, nil
	}
	if strings.Contains(l, "%") {
		g, err := strftimeLayout(l)
		if err != nil {
			return nil, err
		}
		return []timeLayout{{layout: g}}, nil
	}
	// A layout must at least tell days or minutes apart: that rejects
	// names like "rfc3339", whose "3" alone is the hour element.
	ref := time.Date(2001, 3, 4, 1, 7, 8, 9, time.UTC)
	f := ref.Format(l)
	if l == "" || (f == ref.AddDate(0, 0, 1).Format(l) && f == ref.Add(time.Minute).Format(l)) {
		return nil, fmt.Errorf("layout %q is neither a known name, a strftime layout nor a Go reference-time layout with a day or minute", l)
	}
	return []timeLayout{{layout: l}}, nil
}

// strftimeDirectives are the strftime conversions a layout may use, as Go
// layout elements.
var strftimeDirectives = map[byte]string{
	'Y': "2006", 'y': "06", 'm': "01", 'd': "02", 'e': "_2", 'j': "002",
	'H': "15", 'I': "03", 'M': "04", 'S': "05", 'p': "PM",
	'b': "Jan", 'h': "Jan", 'B': "January", 'a': "Mon", 'A': "Monday",
	'z': "-0700", 'Z': "MST", 'T': "15:04:05", 'F': "2006-01-02", 'D': "01/02/06", 'R': "15:04",
}

// strftimeLayout converts a strftime layout to a Go layout. %f (and %N)
// are the fractional seconds, after a '.' or ','; %:z an offset with a
// colon; %% a percent sign.
func strftimeLayout(l string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(l) {
			return "", fmt.Errorf("layout %q: a lone %% at its end", l)
		}
		i++
		switch d := l[i]; {
		case d == '%':
			b.WriteByte('%')
		case d == 'f' || d == 'N':
			if i < 2 || (l[i-2] != '.' && l[i-2] != ',') {
				return "", fmt.Errorf("layout %q: %%%c must follow a '.' or ','", l, d)
			}
			b.WriteString("999999999")
		case d == ':' && i+1 < len(l) && l[i+1] == 'z':
			i++
			b.WriteString("-07:00")
		default:
			g, ok := strftimeDirectives[d]
			if !ok {
				return "", fmt.Errorf("layout %q: %%%c is not a strftime directive this step knows (%%Y %%m %%d %%H %%M %%S %%f %%z %%Z %%b %%a ...)", l, d)
			}
			b.WriteString(g)
		}
	}
	return b.String(), nil
}

// loadZone returns the location a timezone setting names: UTC when empty,
// an IANA name (Europe/Paris) or a fixed offset (+01:00).
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if t, err := time.Parse("-07:00", name); err == nil {
		_, off := t.Zone()
		return time.FixedZone(name, off), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (an IANA name such as Europe/Paris, or an offset such as +01:00)", name)
	}
	return loc, nil
}

// epochNanos converts an epoch in units of scale nanoseconds to
// nanoseconds, exactly: an integer is multiplied, a decimal string is
// read digit by digit (1795255200.123 seconds is 123 ms, not the
// 122.999999 a float64 product gives), and a float64 is read as the
// shortest decimal that is that float64.
func epochNanos(v any, scale int64) (int64, error) {
	var s string
	switch x := v.(type) {
	case int64:
		if x > math.MaxInt64/scale || x < math.MinInt64/scale {
			return 0, fmt.Errorf("parse epoch: %d out of range", x)
		}
		return x * scale, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("parse epoch: %v out of range", x)
		}
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		s = strings.TrimSpace(x)
	default:
		return 0, fmt.Errorf("parse epoch: want a number, got %T", v)
	}
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	whole, frac, _ := strings.Cut(digits, ".")
	if whole == "" && frac == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return 0, fmt.Errorf("parse epoch %q: not a number", s)
	}
	w := int64(0)
	if whole != "" {
		var err error
		if w, err = strconv.ParseInt(whole, 10, 64); err != nil || w > math.MaxInt64/scale {
			return 0, fmt.Errorf("parse epoch %q: out of range", s)
		}
	}
	ns := w * scale
	// The fraction's digits, in units of scale: only as many as make
	// whole nanoseconds count; the rest are dropped (truncated).
	unit := scale
	for i := 0; i < len(frac) && unit > 1; i++ {
		unit /= 10
		ns += int64(frac[i]-'0') * unit
	}
	if ns < 0 {
		return 0, fmt.Errorf("parse epoch %q: out of range", s)
	}
	if neg {
		ns = -ns
	}
	return ns, nil
}
