package escompat

import (
	"math"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
)

// preview renders a value the way Elasticsearch previews it in a
// "failed to parse field" reason: Java's toString of the parsed value, so an
// object {"b":1} reads {b=1} and an array [1,2] reads [1, 2]. Java's HashMap
// order is not reproduced: members keep document order.
func preview(n *node) string {
	var b strings.Builder
	writePreview(&b, n)
	return b.String()
}

func writePreview(b *strings.Builder, n *node) {
	switch n.kind {
	case kindNull:
		b.WriteString("null")
	case kindBool:
		b.WriteString(strconv.FormatBool(n.b))
	case kindString:
		b.WriteString(n.text)
	case kindNumber:
		b.WriteString(javaNumber(n.text))
	case kindObject:
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteByte('=')
			writePreview(b, n.vals[i])
		}
		b.WriteByte('}')
	case kindArray:
		b.WriteByte('[')
		for i, e := range n.vals {
			if i > 0 {
				b.WriteString(", ")
			}
			writePreview(b, e)
		}
		b.WriteByte(']')
	}
}

// javaNumber renders a JSON number literal as Java's Integer, Long,
// BigInteger or Double toString would.
func javaNumber(lit string) string {
	if isIntegerLiteral(lit) {
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return lit
	}
	return javaDouble(f)
}

// javaDouble mimics Double.toString: plain notation for 1e-3 <= |f| < 1e7,
// computerized scientific notation ("1.0E7") otherwise.
func javaDouble(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	a := math.Abs(f)
	if a == 0 || (a >= 1e-3 && a < 1e7) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, 64) // e.g. 1E+07, 1.5E-05
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// scalarText is the text Elasticsearch's parser gives for a scalar token.
func scalarText(n *node) string {
	switch n.kind {
	case kindBool:
		return strconv.FormatBool(n.b)
	case kindNull:
		return "null"
	default:
		return n.text
	}
}

// integer range per Elasticsearch integer type.
var integerRanges = map[string][2]*big.Int{
	"byte":          {big.NewInt(math.MinInt8), big.NewInt(math.MaxInt8)},
	"short":         {big.NewInt(math.MinInt16), big.NewInt(math.MaxInt16)},
	"integer":       {big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)},
	"long":          {big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)},
	"unsigned_long": {big.NewInt(0), new(big.Int).SetUint64(math.MaxUint64)},
}

// floatMax is the largest finite value per Elasticsearch floating type.
var floatMax = map[string]float64{
	"double":       math.MaxFloat64,
	"float":        math.MaxFloat32,
	"half_float":   65504,
	"scaled_float": math.MaxFloat64,
}

// parseDecimal parses a decimal number as Java's BigDecimal would (no hex,
// no infinities, no surrounding spaces).
func parseDecimal(s string) (*big.Float, bool) {
	if s == "" {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return nil, false
		}
	}
	f, _, err := big.ParseFloat(s, 10, 200, big.ToZero)
	if err != nil {
		return nil, false
	}
	return f, true
}

// checkInteger validates a value for an integer-typed field. It returns the
// caused_by reason on failure.
func checkInteger(typ string, n *node, coerce bool) (string, bool) {
	switch n.kind {
	case kindNumber:
	case kindString:
		if !coerce {
			return "[coerce] is false, cannot parse string value [" + n.text + "]", false
		}
	case kindBool:
		return "Current token (" + n.jacksonToken() + ") not numeric, can not use numeric value accessors", false
	default:
		return "Current token (" + n.jacksonToken() + ") not numeric, can not use numeric value accessors", false
	}
	s := n.text
	rng := integerRanges[typ]
	if i, ok := new(big.Int).SetString(s, 10); ok {
		if i.Cmp(rng[0]) < 0 || i.Cmp(rng[1]) > 0 {
			return "Value [" + s + "] is out of range for " + articleType(typ), false
		}
		return "", true
	}
	f, ok := parseDecimal(s)
	if !ok {
		return `For input string: "` + s + `"`, false
	}
	i, acc := f.Int(nil)
	if acc != big.Exact && !coerce {
		return "Value [" + s + "] has a decimal part", false
	}
	if i.Cmp(rng[0]) < 0 || i.Cmp(rng[1]) > 0 {
		return "Value [" + s + "] is out of range for " + articleType(typ), false
	}
	return "", true
}

func articleType(typ string) string {
	switch typ {
	case "integer":
		return "an integer"
	case "unsigned_long":
		return "an unsigned long"
	}
	return "a " + typ
}

// checkFloat validates a value for a floating-point field.
func checkFloat(typ string, n *node, coerce bool) (string, bool) {
	switch n.kind {
	case kindNumber:
	case kindString:
		if !coerce {
			return "[coerce] is false, cannot parse string value [" + n.text + "]", false
		}
	default:
		return "Current token (" + n.jacksonToken() + ") not numeric, can not use numeric value accessors", false
	}
	f, ok := parseDecimal(n.text)
	if !ok {
		return `For input string: "` + n.text + `"`, false
	}
	v, _ := f.Float64()
	if math.IsInf(v, 0) || math.Abs(v) > floatMax[typ] {
		inf := "Infinity"
		if v < 0 {
			inf = "-Infinity"
		}
		return "[" + typ + "] supports only finite values, but got [" + inf + "]", false
	}
	return "", true
}

// checkBoolean validates a value for a boolean field: true, false, "true",
// "false", or "" (false).
func checkBoolean(n *node) (string, bool) {
	switch n.kind {
	case kindBool:
		return "", true
	case kindString:
		if n.text == "true" || n.text == "false" || n.text == "" {
			return "", true
		}
		return "Failed to parse value [" + n.text + "] as only [true] or [false] are allowed.", false
	default:
		return "Current token (" + n.jacksonToken() + ") not of boolean type", false
	}
}

func checkIP(n *node) (string, bool) {
	s := scalarText(n)
	if n.kind == kindString {
		if _, err := netip.ParseAddr(s); err == nil && !strings.Contains(s, "%") {
			return "", true
		}
	}
	return "'" + s + "' is not an IP string literal.", false
}

// defaultDateFormat is the format of a date field that names none.
const defaultDateFormat = "strict_date_optional_time||epoch_millis"

// dateFormats is the date format of a field, split on "||". An empty
// dateFormats accepts any value (a custom pattern esfake does not parse).
type dateFormats struct {
	names []string
	any   bool
}

func parseDateFormats(format string) dateFormats {
	if format == "" {
		format = defaultDateFormat
	}
	var df dateFormats
	for _, f := range strings.Split(format, "||") {
		f = strings.TrimSpace(f)
		switch f {
		case "strict_date_optional_time", "date_optional_time", "strict_date_optional_time_nanos",
			"strict_date_time", "date_time", "strict_date_time_no_millis", "date_time_no_millis",
			"epoch_millis", "epoch_second", "strict_date", "date", "yyyy-MM-dd", "iso8601":
			df.names = append(df.names, f)
		default:
			df.any = true
		}
	}
	return df
}

func (df dateFormats) String() string { return strings.Join(df.names, "||") }

// check validates a date value: ISO 8601 / RFC 3339 text for the
// *date_optional_time formats, digits for the epoch formats.
func (df dateFormats) check(n *node) bool {
	if df.any || n.kind == kindNull {
		return true
	}
	if n.kind != kindString && n.kind != kindNumber {
		return false
	}
	s := n.text
	for _, f := range df.names {
		switch f {
		case "epoch_millis", "epoch_second":
			if n.kind == kindNumber {
				return true
			}
			if _, ok := parseDecimal(s); ok && !strings.ContainsAny(s, "eE") {
				return true
			}
		case "strict_date_time", "date_time":
			if isISODate(s, true, true) {
				return true
			}
		case "strict_date_time_no_millis", "date_time_no_millis":
			if isISODate(s, true, true) && !strings.Contains(s, ".") {
				return true
			}
		case "strict_date", "date", "yyyy-MM-dd":
			if len(s) == 10 && isISODate(s, false, false) {
				return true
			}
		default: // *date_optional_time*, iso8601
			if isISODate(s, false, false) {
				return true
			}
		}
	}
	return false
}

// isISODate reports whether s is a strict_date_optional_time value:
// yyyy[-MM[-dd]][THH[:mm[:ss[.f{1,9}]]][zone]]. needTime and needZone
// demand a full time of day with zone (the date_time format).
func isISODate(s string, needTime, needZone bool) bool {
	num := func(width int, lo, hi int) (int, bool) {
		if len(s) < width {
			return 0, false
		}
		v := 0
		for i := 0; i < width; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		if v < lo || v > hi {
			return 0, false
		}
		s = s[width:]
		return v, true
	}
	sep := func(c byte) bool {
		if len(s) > 0 && s[0] == c {
			s = s[1:]
			return true
		}
		return false
	}
	year, ok := num(4, 0, 9999)
	if !ok {
		return false
	}
	if s == "" {
		return !needTime
	}
	if !sep('-') {
		return false
	}
	month, ok := num(2, 1, 12)
	if !ok {
		return false
	}
	if s == "" {
		return !needTime
	}
	if !sep('-') {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && (year%4 == 0 && year%100 != 0 || year%400 == 0) {
		days = 29
	}
	if _, ok := num(2, 1, days); !ok {
		return false
	}
	if s == "" {
		return !needTime
	}
	if !sep('T') {
		return false
	}
	if _, ok := num(2, 0, 23); !ok {
		return false
	}
	full := false
	if sep(':') {
		if _, ok := num(2, 0, 59); !ok {
			return false
		}
		if sep(':') {
			if _, ok := num(2, 0, 59); !ok {
				return false
			}
			full = true
			if sep('.') || sep(',') {
				d := 0
				for d < len(s) && s[d] >= '0' && s[d] <= '9' {
					d++
				}
				if d < 1 || d > 9 {
					return false
				}
				s = s[d:]
			}
		}
	}
	if needTime && !full {
		return false
	}
	if s == "" {
		return !needZone
	}
	if sep('Z') {
		return s == ""
	}
	if !sep('+') && !sep('-') {
		return false
	}
	if _, ok := num(2, 0, 18); !ok {
		return false
	}
	if s == "" {
		return true
	}
	sep(':')
	if _, ok := num(2, 0, 59); !ok {
		return false
	}
	return s == ""
}

// isDynamicDate reports whether a new string field is detected as a date
// under Elasticsearch's default dynamic_date_formats
// ["strict_date_optional_time", "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"].
// Like Elasticsearch it only tries strings holding ':', '-' or '/'.
func isDynamicDate(s string) bool {
	if !strings.ContainsAny(s, ":-/") {
		return false
	}
	if isISODate(s, false, false) {
		return true
	}
	// yyyy/MM/dd HH:mm:ss Z or yyyy/MM/dd Z, Z being an offset like +0000.
	if len(s) < 10 {
		return false
	}
	iso := strings.ReplaceAll(s[:10], "/", "-")
	if s[4] != '/' || s[7] != '/' || !isISODate(iso, false, false) {
		return false
	}
	rest := s[10:]
	if len(rest) > 9 && rest[0] == ' ' && isClock(rest[1:9]) {
		rest = rest[9:]
	}
	return len(rest) == 6 && rest[0] == ' ' && (rest[1] == '+' || rest[1] == '-') && allDigits(rest[2:])
}

func isClock(s string) bool {
	return len(s) == 8 && s[2] == ':' && s[5] == ':' && allDigits(s[:2]+s[3:5]+s[6:])
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
