// Package elastic holds the Elasticsearch connection shared by Sluice
// commands (the indexer, and later sluice search and sluice dev): settings
// read from the environment and the *elasticsearch.Client built from them.
//
//	es, err := cfg.Elastic.NewClient()
//	if err != nil { ... }
//	defer es.Close(context.Background())
//
// # Credentials
//
// Secrets come from the environment or from files (Kubernetes secrets mounted
// as files), never from flags and never from URLs. A secret file holds the
// value alone; one trailing newline is ignored, an empty file is an error.
// Files are read by NewClient each time it is called, so a rotated secret
// takes effect for clients created afterwards.
//
// # Precedence
//
// There is none, on purpose: where two settings could supply the same thing,
// setting both is a problem reported by Validate rather than one silently
// winning.
//
//   - At most one way to authenticate: basic authentication
//     (SLUICE_ELASTICSEARCH_USERNAME with SLUICE_ELASTICSEARCH_PASSWORD or
//     SLUICE_ELASTICSEARCH_PASSWORD_FILE), an API key
//     (SLUICE_ELASTICSEARCH_API_KEY or SLUICE_ELASTICSEARCH_API_KEY_FILE) or a
//     bearer token (SLUICE_ELASTICSEARCH_BEARER_TOKEN or
//     SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE). None of them means anonymous
//     requests.
//   - A value and its _FILE variant are never both set.
//   - URLs must not carry user:password@: go-elasticsearch would prefer them
//     over every other credential, and URLs are logged.
//   - go-elasticsearch's own ELASTICSEARCH_URL variable is never consulted:
//     SLUICE_ELASTICSEARCH_URLS has a default and must not be empty.
//
// # OpenSearch
//
// SLUICE_ELASTICSEARCH_FLAVOR=opensearch makes the same client work with
// OpenSearch 2.x; with the default, elasticsearch, a server that is not
// Elasticsearch is refused with a *ProductError saying what it is. See
// flavor.go for why one client serves both.
//
// # Requests
//
// The client spreads requests over all URLs (round robin) and fails over: a
// request that could not connect to a node is sent to the next node at once.
// Nothing else is retried by the client; see NewClient. A node on which a
// request failed without an HTTP response (refused, timed out, ...) is left
// alone for a while (go-elasticsearch: 60s, doubling with every failure in a
// row up to 32 minutes); when every node is left alone, one is tried anyway.
// Each request, bulk requests included, is limited to
// SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT; see ErrRequestTimeout.
package elastic

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/internal/config"
)

// Config is the Elasticsearch connection of a stage, loaded with
// config.Load. Embed it without an env prefix= so that the variable names
// below (and those in Validate's messages) are the ones in effect.
type Config struct {
	URLs []string `env:"ELASTICSEARCH_URLS, default=http://127.0.0.1:9200" help:"Elasticsearch URLs (http or https, optionally with a path prefix), comma-separated. Requests are spread over all of them; a node that cannot be reached is skipped for a while. No credentials in URLs: use the variables below."`

	Username     string `env:"ELASTICSEARCH_USERNAME" help:"User name for basic authentication; needs SLUICE_ELASTICSEARCH_PASSWORD or SLUICE_ELASTICSEARCH_PASSWORD_FILE."`
	Password     string `env:"ELASTICSEARCH_PASSWORD" secret:"true" help:"Password for basic authentication. Set this or SLUICE_ELASTICSEARCH_PASSWORD_FILE, not both."`
	PasswordFile string `env:"ELASTICSEARCH_PASSWORD_FILE" help:"File holding the password for basic authentication (one trailing newline is ignored), read at startup. Set this or SLUICE_ELASTICSEARCH_PASSWORD, not both."`

	APIKey     string `env:"ELASTICSEARCH_API_KEY" secret:"true" help:"API key in the base64 encoded form Elasticsearch returns as \"encoded\" (base64 of id:key), sent as Authorization: ApiKey. Set this or SLUICE_ELASTICSEARCH_API_KEY_FILE, not both."`
	APIKeyFile string `env:"ELASTICSEARCH_API_KEY_FILE" help:"File holding the encoded API key (one trailing newline is ignored), read at startup. Set this or SLUICE_ELASTICSEARCH_API_KEY, not both."`

	BearerToken     string `env:"ELASTICSEARCH_BEARER_TOKEN" secret:"true" help:"Service account token or OAuth2/JWT access token, sent as Authorization: Bearer. Set this or SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE, not both."`
	BearerTokenFile string `env:"ELASTICSEARCH_BEARER_TOKEN_FILE" help:"File holding the bearer token (one trailing newline is ignored), read at startup. Set this or SLUICE_ELASTICSEARCH_BEARER_TOKEN, not both."`

	CAFile                string `env:"ELASTICSEARCH_CA_FILE" help:"PEM file of CA certificates to verify https URLs with. Empty: the system roots."`
	TLSInsecureSkipVerify bool   `env:"ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY" help:"Do not verify the certificates of https URLs. For testing only."`

	RequestTimeout time.Duration `env:"ELASTICSEARCH_REQUEST_TIMEOUT, default=60s" help:"Limit on one HTTP request to Elasticsearch, bulk requests included: from connecting to reading the whole response."`

	Flavor string `env:"ELASTICSEARCH_FLAVOR, default=elasticsearch" help:"The server at SLUICE_ELASTICSEARCH_URLS: elasticsearch (Elasticsearch 8) or opensearch (OpenSearch 2.x; responses without Elastic's X-Elastic-Product header are accepted and no Elastic-only media type is sent)."`
}

// Full variable names, used in problems and errors.
var (
	varURLs            = config.Var("ELASTICSEARCH_URLS")
	varUsername        = config.Var("ELASTICSEARCH_USERNAME")
	varPassword        = config.Var("ELASTICSEARCH_PASSWORD")
	varPasswordFile    = config.Var("ELASTICSEARCH_PASSWORD_FILE")
	varAPIKey          = config.Var("ELASTICSEARCH_API_KEY")
	varAPIKeyFile      = config.Var("ELASTICSEARCH_API_KEY_FILE")
	varBearerToken     = config.Var("ELASTICSEARCH_BEARER_TOKEN")
	varBearerTokenFile = config.Var("ELASTICSEARCH_BEARER_TOKEN_FILE")
	varCAFile          = config.Var("ELASTICSEARCH_CA_FILE")
	varTLSInsecure     = config.Var("ELASTICSEARCH_TLS_INSECURE_SKIP_VERIFY")
	varRequestTimeout  = config.Var("ELASTICSEARCH_REQUEST_TIMEOUT")
	varFlavor          = config.Var("ELASTICSEARCH_FLAVOR")
)

// Validate reports every problem of c, joined, each naming its variable. It
// does no I/O: files are read by NewClient, which a validate command should
// call as well. Messages never contain a secret, nor the password of a URL.
//
// Settings that would be ignored are problems rather than ignored: a CA file
// or skipping verification with http URLs, a password without a user name,
// two ways to authenticate.
func (c Config) Validate() error {
	var p config.Problems

	// URLs.
	if len(c.URLs) == 0 {
		p.Add(varURLs, "must not be empty")
	}
	schemes := map[string]bool{}
	for _, s := range c.URLs {
		u, err := url.Parse(s)
		if err != nil {
			// url.Error repeats the whole URL, which may hold a password:
			// report its cause only.
			if ue, ok := err.(*url.Error); ok {
				err = ue.Err
			}
			p.Add(varURLs, "%q is not a URL: %v", redactURL(s), err)
			continue
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			p.Add(varURLs, "%q is not an absolute http or https URL", redactURL(s))
			continue
		}
		schemes[u.Scheme] = true
		if u.Hostname() == "" {
			p.Add(varURLs, "%q has no host", redactURL(s))
		}
		if u.User != nil {
			p.Add(varURLs, "%q must not contain credentials: use %s, %s or %s", redactURL(s), varUsername, varAPIKey, varBearerToken)
		}
		if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			p.Add(varURLs, "%q must not have a query or fragment", redactURL(s))
		}
	}
	if schemes["http"] && schemes["https"] {
		// Credentials would go in clear to some nodes and not others.
		p.Add(varURLs, "mixes http and https URLs")
	}

	// Flavor; "" (a Config not loaded from the environment) is the default.
	switch c.flavor() {
	case FlavorElasticsearch, FlavorOpenSearch:
	default:
		p.Add(varFlavor, "must be %s or %s, got %q", FlavorElasticsearch, FlavorOpenSearch, c.Flavor)
	}

	// Credentials: a value or its file, never both.
	both := func(valueVar, value, fileVar, file string) {
		if value != "" && file != "" {
			p.Add(valueVar, "must not be set together with %s", fileVar)
		}
	}
	both(varPassword, c.Password, varPasswordFile, c.PasswordFile)
	both(varAPIKey, c.APIKey, varAPIKeyFile, c.APIKeyFile)
	both(varBearerToken, c.BearerToken, varBearerTokenFile, c.BearerTokenFile)

	// Basic authentication needs both halves.
	switch pw := firstSet(varPassword, c.Password, varPasswordFile, c.PasswordFile); {
	case c.Username == "" && pw != "":
		p.Add(varUsername, "must be set with %s", pw)
	case c.Username != "" && pw == "":
		p.Add(varPassword, "or %s must be set with %s", varPasswordFile, varUsername)
	}

	// At most one way to authenticate.
	methods := []string{
		firstSet(varUsername, c.Username, varPassword, c.Password, varPasswordFile, c.PasswordFile),
		firstSet(varAPIKey, c.APIKey, varAPIKeyFile, c.APIKeyFile),
		firstSet(varBearerToken, c.BearerToken, varBearerTokenFile, c.BearerTokenFile),
	}
	first := ""
	for _, m := range methods {
		switch {
		case m == "":
		case first == "":
			first = m
		default:
			p.Add(m, "must not be set together with %s: choose one of basic authentication, API key or bearer token", first)
		}
	}

	// Secrets given as values; those in files are checked by NewClient.
	if c.Password != "" {
		p.AddErr(varPassword, checkControl(c.Password))
	}
	if c.APIKey != "" {
		p.AddErr(varAPIKey, checkAPIKey(c.APIKey))
	}
	if c.BearerToken != "" {
		p.AddErr(varBearerToken, checkHeaderValue(c.BearerToken))
	}

	// TLS settings apply to https URLs only.
	if len(c.URLs) > 0 && !schemes["https"] {
		if c.CAFile != "" {
			p.Add(varCAFile, "is set but %s has no https URL", varURLs)
		}
		if c.TLSInsecureSkipVerify {
			p.Add(varTLSInsecure, "is set but %s has no https URL", varURLs)
		}
	}

	p.Positive(map[string]time.Duration{"ELASTICSEARCH_REQUEST_TIMEOUT": c.RequestTimeout})
	return p.Err()
}

// firstSet takes pairs of variable name and value and returns the name of
// the first pair whose value is not empty, or "".
func firstSet(pairs ...string) string {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			return pairs[i]
		}
	}
	return ""
}

// checkControl reports a secret with a control character, most likely a
// stray newline. The error never contains the secret.
func checkControl(s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("contains a control character (a stray newline?)")
		}
	}
	return nil
}

// checkHeaderValue reports a token that cannot be sent in a header as is.
// The error never contains the token.
func checkHeaderValue(s string) error {
	if err := checkControl(s); err != nil {
		return err
	}
	for _, r := range s {
		if r == ' ' || r > 0x7e {
			return errors.New("contains a space or a non-ASCII character")
		}
	}
	return nil
}

// checkAPIKey reports an API key that is not in the encoded form, base64 of
// "id:key". The error never contains the key.
func checkAPIKey(s string) error {
	if err := checkHeaderValue(s); err != nil {
		return err
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || !strings.Contains(string(b), ":") {
		return errors.New(`is not an encoded API key (base64 of id:key, the "encoded" field of the create API key response)`)
	}
	return nil
}

// redactURL hides the password of a URL, or everything before the last '@'
// of a string that does not parse as one.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err == nil {
		if u.User == nil {
			return s // as the operator wrote it
		}
		return u.Redacted()
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return config.Redacted + s[i:]
	}
	return s
}

// HasCredentials says whether any credentials are set: a user name, an API
// key or a bearer token, as a value or a file.
func (c Config) HasCredentials() bool {
	return c.Username != "" || c.APIKey != "" || c.APIKeyFile != "" || c.BearerToken != "" || c.BearerTokenFile != ""
}

// LogValue implements slog.LogValuer: every setting by variable name, with
// secrets redacted (and the password of a URL, which Validate rejects).
func (c Config) LogValue() slog.Value {
	if len(c.URLs) > 0 {
		urls := make([]string, len(c.URLs))
		for i, u := range c.URLs {
			urls[i] = redactURL(u)
		}
		c.URLs = urls
	}
	return config.LogValue(c)
}

// String formats c as NAME=value pairs with secrets redacted, so that
// printing a Config with the fmt verbs never shows a secret.
func (c Config) String() string {
	var b strings.Builder
	for i, a := range c.LogValue().Group() {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", a.Key, a.Value.String())
	}
	return b.String()
}
