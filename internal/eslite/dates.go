package eslite

import (
	"strconv"
	"strings"
	"time"
)

// dateLayouts are the forms of strict_date_optional_time:
// yyyy[-MM[-dd[THH[:mm[:ss[.f]]][zone]]]], the commonest first; time.Parse
// takes a fraction after the seconds whatever the layout.
var dateLayouts = []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02", "2006-01-02T15:04:05-0700", "2006-01-02T15:04Z07:00",
	"2006-01-02T15:04", "2006-01-02T15:04-0700", "2006-01-02T15Z07:00", "2006-01-02T15", "2006-01", "2006"}

// parseDate parses a strict_date_optional_time value into milliseconds
// since the epoch; a value without zone is UTC.
func parseDate(s string) (float64, bool) {
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return float64(t.UnixMilli()), true
		}
	}
	return 0, false
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
