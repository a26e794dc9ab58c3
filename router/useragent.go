package router

import (
	"sync"
	"unicode/utf8"

	useragent "github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"
)

// MaxUserAgentLen bounds what parseUserAgent reads: a longer string is cut
// to this many bytes (at a character boundary) before it is parsed. Real
// User-Agent headers are shorter than 300 bytes, and the tokens that name
// the browser, system and device come first.
const MaxUserAgentLen = 512

// Cost of parseUserAgent, in work units and bytes.
const (
	// costUAByte is charged per byte parsed: a walk down a trie that takes
	// at most about 35ns a byte, on input made to be slow.
	costUAByte = 4
	// uaCost is charged per call for building the result.
	uaCost = 64
	// uaAlloc is the result: a map of five entries and the version.
	uaAlloc = 512
)

// uaParser is the User-Agent parser, built at its first use (about 5 MB
// of trie, built in some 50ms): a router whose pipelines never call
// parseUserAgent does not build it. compileExpr builds it for a pipeline
// that calls it, so that no record waits for it. The parser is read-only
// once built, safe for concurrent use, and allocates nothing per call.
var uaParser = sync.OnceValue(useragent.NewParser)

// fnParseUserAgent parses a User-Agent header into a map: browser,
// browser_version, os, device (desktop, mobile, tablet, tv or bot) and bot.
// What is not recognised is "" (false for bot); an empty or unknown string
// is not an error.
func fnParseUserAgent(m *meter, args []any) (any, error) {
	s, _ := args[0].(string)
	if len(s) > MaxUserAgentLen {
		n := MaxUserAgentLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	if err := m.charge(add(mul(int64(len(s)), costUAByte), costCall+uaCost), uaAlloc); err != nil {
		return nil, err
	}
	ua := uaParser().Parse(s)
	browser, version := string(ua.Browser()), ""
	if browser != "" {
		// A version is only the browser's.
		version = ua.BrowserVersion()
	}
	return map[string]any{
		"browser":         browser,
		"browser_version": version,
		"os":              string(ua.OS()),
		"device":          uaDevice(ua.Device()),
		"bot":             ua.IsBot(),
	}, nil
}

// uaDevice is a device type in lower case.
func uaDevice(d agents.Device) string {
	switch d {
	case agents.DeviceDesktop:
		return "desktop"
	case agents.DeviceMobile:
		return "mobile"
	case agents.DeviceTablet:
		return "tablet"
	case agents.DeviceTV:
		return "tv"
	case agents.DeviceBot:
		return "bot"
	}
	return ""
}
