package eslite

import (
	"strconv"
	"strings"
	"time"
)

// parseDate parses a strict_date_optional_time value,
// yyyy[-MM[-dd[THH[:mm[:ss[.f]]][zone]]]], into milliseconds since the
// epoch; a value without zone is UTC.
func parseDate(s string) (float64, bool) {
	num := func(width, lo, hi int) (int, bool) {
		if len(s) < width {
			return 0, false
		}
		v := 0
		for i := range width {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			v = v*10 + int(s[i]-'0')
		}
		s = s[width:]
		return v, v >= lo && v <= hi
	}
	sep := func(c byte) bool {
		if len(s) > 0 && s[0] == c {
			s = s[1:]
			return true
		}
		return false
	}
	var f [6]int // year, month, day, hour, minute, second
	f[1], f[2] = 1, 1
	var ok bool
	if f[0], ok = num(4, 0, 9999); !ok {
		return 0, false
	}
	nanos, zone := 0, 0
	for i, step := range [][3]int{{'-', 1, 12}, {'-', 1, 31}, {'T', 0, 23}, {':', 0, 59}, {':', 0, 59}} {
		if s == "" || i >= 3 && (s[0] == 'Z' || s[0] == '+' || s[0] == '-') {
			break // a zone may follow the hour or the minutes
		}
		if !sep(byte(step[0])) {
			return 0, false
		}
		if f[i+1], ok = num(2, step[1], step[2]); !ok {
			return 0, false
		}
		if i == 4 && (sep('.') || sep(',')) {
			d := 0
			for d < len(s) && d < 9 && s[d] >= '0' && s[d] <= '9' {
				nanos = nanos*10 + int(s[d]-'0')
				d++
			}
			if d == 0 {
				return 0, false
			}
			for range 9 - d {
				nanos *= 10
			}
			s = s[d:]
		}
	}
	if s != "" {
		switch {
		case s == "Z":
		case s[0] == '+' || s[0] == '-':
			sign := 1
			if s[0] == '-' {
				sign = -1
			}
			s = s[1:]
			h, ok := num(2, 0, 18)
			if !ok {
				return 0, false
			}
			m := 0
			if s != "" {
				sep(':')
				if m, ok = num(2, 0, 59); !ok || s != "" {
					return 0, false
				}
			}
			zone = sign * (h*3600 + m*60)
		default:
			return 0, false
		}
	}
	t := time.Date(f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], nanos, time.UTC)
	if t.Day() != f[2] {
		return 0, false // February 30th
	}
	return float64(t.UnixNano()/1e6) - float64(zone)*1000, true
}

// dateMath evaluates a date or a date math expression: now, or a date
// followed by ||, then operations +1h, -7d, /d (rounding). Units: y, M,
// w, d, h (H), m, s. roundUp rounds to the end of the unit, as
// Elasticsearch does for gt and lte bounds.
func dateMath(expr string, now time.Time, roundUp bool) (float64, bool) {
	var t time.Time
	ops := ""
	switch {
	case strings.HasPrefix(expr, "now"):
		t, ops = now.UTC(), expr[3:]
	default:
		anchor, rest, found := strings.Cut(expr, "||")
		ms, ok := parseDate(anchor)
		if !ok {
			if !isDecimal(anchor) {
				return 0, false
			}
			f, err := strconv.ParseFloat(anchor, 64)
			if err != nil {
				return 0, false
			}
			ms = f
		}
		if !found {
			return ms, true
		}
		t, ops = time.UnixMilli(int64(ms)).UTC(), rest
	}
	for ops != "" {
		op := ops[0]
		ops = ops[1:]
		n := 1
		if op == '+' || op == '-' {
			i := 0
			for i < len(ops) && ops[i] >= '0' && ops[i] <= '9' {
				i++
			}
			if i > 0 {
				n, _ = strconv.Atoi(ops[:i])
			}
			ops = ops[i:]
			if op == '-' {
				n = -n
			}
		} else if op != '/' {
			return 0, false
		}
		if ops == "" {
			return 0, false
		}
		unit := ops[0]
		ops = ops[1:]
		if op == '/' {
			t = roundDate(t, unit, roundUp)
			if t.IsZero() {
				return 0, false
			}
			continue
		}
		switch unit {
		case 'y':
			t = t.AddDate(n, 0, 0)
		case 'M':
			t = t.AddDate(0, n, 0)
		case 'w':
			t = t.AddDate(0, 0, 7*n)
		case 'd':
			t = t.AddDate(0, 0, n)
		case 'h', 'H':
			t = t.Add(time.Duration(n) * time.Hour)
		case 'm':
			t = t.Add(time.Duration(n) * time.Minute)
		case 's':
			t = t.Add(time.Duration(n) * time.Second)
		default:
			return 0, false
		}
	}
	return float64(t.UnixMilli()), true
}

// roundDate rounds t down to the unit, or up to its last millisecond.
func roundDate(t time.Time, unit byte, up bool) time.Time {
	var start, next time.Time
	y, mo, d := t.Date()
	switch unit {
	case 'y':
		start = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
		next = start.AddDate(1, 0, 0)
	case 'M':
		start = time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
		next = start.AddDate(0, 1, 0)
	case 'w':
		start = time.Date(y, mo, d-(int(t.Weekday())+6)%7, 0, 0, 0, 0, time.UTC)
		next = start.AddDate(0, 0, 7)
	case 'd':
		start = time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
		next = start.AddDate(0, 0, 1)
	case 'h', 'H':
		start = t.Truncate(time.Hour)
		next = start.Add(time.Hour)
	case 'm':
		start = t.Truncate(time.Minute)
		next = start.Add(time.Minute)
	case 's':
		start = t.Truncate(time.Second)
		next = start.Add(time.Second)
	default:
		return time.Time{}
	}
	if up {
		return next.Add(-time.Millisecond)
	}
	return start
}
