package router

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Functions for redaction and shaping: replaceRegex, sha256, pseudonym
// (pseudonym.go), mask, truncate, parseURL and parseUserAgent
// (useragent.go). Like every function of the sandbox, each charges the
// meter what it will read and allocate before it works.

var redactFuncs = []meteredFunc{
	{"replaceRegex", fnReplaceRegex, []any{new(func(*meter, string, string, string) string)}},
	{"sha256", fnSHA256, []any{new(func(*meter, string) string), new(func(*meter, string, string) string)}},
	{"pseudonym", fnPseudonym, []any{new(func(*meter, string) string)}},
	{"mask", fnMask, []any{new(func(*meter, string) string), new(func(*meter, string, int) string)}},
	{"truncate", fnTruncate, []any{new(func(*meter, string, int) string)}},
	{"parseURL", fnParseURL, []any{new(func(*meter, string) map[string]any)}},
	{"parseUserAgent", fnParseUserAgent, []any{new(func(*meter, string) map[string]any)}},
}

// dynamicRegex returns the compiled pattern p from the meter's cache,
// compiling (and charging for) it the first time.
func (m *meter) dynamicRegex(p, fn string) (*sandboxRE, error) {
	if re := m.res[p]; re != nil {
		return re, nil
	}
	// Compiling costs about the pattern's size times its program.
	if err := m.charge(mul(int64(len(p)), 64), 0); err != nil {
		return nil, err
	}
	re, err := compileRegex(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	if m.res == nil || len(m.res) >= maxRegexCache {
		m.res = make(map[string]*sandboxRE, maxRegexCache)
	}
	m.res[p] = re
	return re, nil
}

// fnReplaceRegex replaces every match of an RE2 pattern: replaceRegex(s,
// pattern, repl); repl may refer to groups as $1 or ${name}. Each
// replacement is charged its largest possible size before it is made.
func fnReplaceRegex(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	p, _ := args[1].(string)
	repl, _ := args[2].(string)
	re, err := m.dynamicRegex(p, "replaceRegex")
	if err != nil {
		return nil, err
	}
	if err := m.charge(add(re.cost(len(s)), costCall), 0); err != nil {
		return nil, err
	}
	refs := int64(strings.Count(repl, "$"))
	var b strings.Builder
	last := 0
	for _, loc := range re.re.FindAllStringSubmatchIndex(s, -1) {
		// The locations slice of each match is charged with the text.
		kept := int64(loc[0] - last)
		most := add(int64(len(repl)), mul(refs, int64(len(s))))
		if err := m.charge(add(kept, most), add(kept, add(most, int64(8*len(loc))))); err != nil {
			return nil, err
		}
		b.WriteString(s[last:loc[0]])
		b.Write(re.re.ExpandString(nil, repl, s, loc))
		last = loc[1]
	}
	rest := int64(len(s) - last)
	if err := m.charge(rest, rest); err != nil {
		return nil, err
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

// fnSHA256 is the hex SHA-256 of a string, sha256(s), or of a salt and the
// string, sha256(s, salt): a pseudonym that still joins equal values, but
// whose salt is in the pipeline for all its readers to see (pseudonym(s)
// keeps its key out of the pipeline).
func fnSHA256(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	salt := ""
	if len(args) > 1 {
		salt, _ = args[1].(string)
	}
	if err := m.charge(add(int64(len(s)+len(salt)), costCall), 2*sha256.Size); err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write([]byte(salt))
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fnMask replaces the characters of a string with '*', all of them,
// mask(s), or all but the last keep, mask(s, keep).
func fnMask(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	keep := 0
	if len(args) > 1 {
		keep, _ = args[1].(int)
	}
	if keep < 0 {
		return nil, fmt.Errorf("mask: negative count %d", keep)
	}
	n := int64(len(s))
	if err := m.charge(add(n, costCall), n); err != nil {
		return nil, err
	}
	runes := utf8.RuneCountInString(s)
	if keep >= runes {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for j := range s {
		if i >= runes-keep {
			b.WriteString(s[j:])
			break
		}
		b.WriteByte('*')
		i++
	}
	return b.String(), nil
}

// fnTruncate keeps the first n bytes of a string, cut back to a whole
// character.
func fnTruncate(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	n, _ := args[1].(int)
	if n < 0 {
		return nil, fmt.Errorf("truncate: negative length %d", n)
	}
	if err := m.charge(costCall+4, 0); err != nil {
		return nil, err
	}
	if len(s) <= n {
		return s, nil
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], nil
}

// fnParseURL splits a URL into a map: scheme, user, host, port, path,
// query (a map of the first value of each key) and fragment; a string
// that is not a URL is an error.
func fnParseURL(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	// The parts and the query's map together hold at most the URL's bytes
	// twice (escapes decoded), plus a map entry per parameter.
	n := int64(len(s))
	if err := m.charge(add(mul(n, 4), costCall), add(mul(n, 2), mul(int64(strings.Count(s, "&")+8), 64))); err != nil {
		return nil, err
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parseURL: %w", err)
	}
	query := map[string]any{}
	for k, v := range u.Query() {
		if len(v) > 0 {
			query[k] = v[0]
		}
	}
	return map[string]any{
		"scheme":   u.Scheme,
		"user":     u.User.Username(),
		"host":     u.Hostname(),
		"port":     u.Port(),
		"path":     u.Path,
		"query":    query,
		"fragment": u.Fragment,
	}, nil
}
