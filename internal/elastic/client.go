package elastic

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/sluicelogs/sluice/internal/config"
)

// Connection pooling. A stage sends concurrent bulk requests to every node;
// idle connections beyond the per-host limit are closed after each burst and
// reopened (with a TLS handshake) on the next, so keep enough of them.
const (
	maxIdleConnsPerHost = 32
	idleConnTimeout     = 90 * time.Second
	keepAlive           = 30 * time.Second
	// maxDialTimeout bounds connecting to one node, so that an unreachable
	// node (no answer at all) leaves time to fail over to the next one
	// within the request timeout.
	maxDialTimeout      = 5 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
)

// noStatus is a status code no HTTP response has; see NewClient.
const noStatus = -1

// ErrRequestTimeout is the cause of a request that took longer than
// SLUICE_ELASTICSEARCH_REQUEST_TIMEOUT. Errors of such requests match both
// ErrRequestTimeout and context.DeadlineExceeded with errors.Is.
var ErrRequestTimeout = fmt.Errorf("elasticsearch request timed out (%s): %w", varRequestTimeout, context.DeadlineExceeded)

// Option adjusts the go-elasticsearch configuration NewClient has built,
// just before the client is created: to wrap Transport (tracing, tests) or
// to set a Logger or Instrumentation. Changing the settings NewClient
// derives from Config (addresses, credentials, retries) is unsupported.
type Option func(*elasticsearch.Config)

// NewClient validates c, reads the secret and CA files and returns a client
// for c.URLs. Errors name the variable at fault and never contain a secret.
// The files are read on every call: a rotated secret takes effect for
// clients created afterwards. NewClient starts nothing: no request is sent
// until the caller sends one. Close the client when done.
//
// Requests are not retried, with one exception. Sluice stages retry failed
// requests themselves, with jittered backoff and knowing which items of a
// bulk request failed; retries inside the client would multiply theirs,
// retry without backoff, and resend whole bulk bodies of which Elasticsearch
// may already have indexed a part. The exception is failover: go-elasticsearch
// moves to the next node only by retrying, so with several URLs a request is
// retried, on another node and at once, when connecting failed (refused,
// unreachable, DNS): such a request never reached Elasticsearch, so resending
// it is always safe. Timeouts, TLS errors and every HTTP status, 502-504
// included, are returned to the caller.
//
// A request body that is not a *bytes.Buffer, *bytes.Reader or
// *strings.Reader (whose requests can be replayed by net/http) is read into
// memory first when there are several URLs, so that it can be resent.
func (c Config) NewClient(opts ...Option) (*elasticsearch.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	username, password, apiKey, bearerToken, err := c.credentials()
	if err != nil {
		return nil, err
	}
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}

	dialTimeout := min(maxDialTimeout, c.RequestTimeout/2)
	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: keepAlive,
		}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: min(tlsHandshakeTimeout, c.RequestTimeout),
		// HTTP/1.1, which is what Elasticsearch speaks: concurrent requests
		// to a node each need a connection of their own.
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		IdleConnTimeout:     idleConnTimeout,
		// No ResponseHeaderTimeout: timeoutTransport limits the whole
		// exchange, uploading a bulk body and reading the response
		// included, like http.Client.Timeout; a response header timeout
		// starts after the upload and could never fire first.
	}

	cfg := elasticsearch.Config{
		Addresses:    c.URLs,
		Username:     username,
		Password:     password,
		APIKey:       apiKey,
		ServiceToken: bearerToken, // sent as "Authorization: Bearer <token>", whatever kind of token it is
		Transport:    timeoutTransport{next: newFlavorTransport(c, transport), timeout: c.RequestTimeout},
		// Bulk bodies compress well, but Elasticsearch's CPU is the usual
		// bottleneck of a log pipeline, not the network to it.
		CompressRequestBody: false,
		// Nodes are the URLs given: behind a load balancer or a Kubernetes
		// service, the addresses nodes publish are often unreachable.
		DiscoverNodesOnStart: false,
		// Elastic's client telemetry means nothing to OpenSearch.
		DisableMetaHeader: c.flavor() == FlavorOpenSearch,
	}
	if len(c.URLs) == 1 {
		// Nothing to fail over to.
		cfg.DisableRetry = true
	} else {
		// DisableRetry would also disable failover (it makes go-elasticsearch
		// ignore RetryOnError), so retries stay enabled but are limited to
		// connection failures, at most one attempt per node. go-elasticsearch
		// replaces an empty RetryOnStatus with 502, 503 and 504; a status no
		// response has turns status retries off.
		cfg.RetryOnError = isConnectError
		cfg.MaxRetries = len(c.URLs) - 1
		cfg.RetryOnStatus = []int{noStatus}
	}
	for _, o := range opts {
		o(&cfg)
	}

	es, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("create elasticsearch client: %w", err)
	}
	return es, nil
}

// isConnectError reports whether err means that no connection to the node
// could be made, so that the request was not sent, and the caller is still
// waiting.
func isConnectError(req *http.Request, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// credentials returns the credentials of the one authentication method set
// (Validate allows at most one), reading files as needed.
func (c Config) credentials() (username, password, apiKey, bearerToken string, err error) {
	switch {
	case c.Username != "":
		password, err = readSecret(varPasswordFile, c.Password, c.PasswordFile, checkControl)
		return c.Username, password, "", "", err
	case c.APIKey != "" || c.APIKeyFile != "":
		apiKey, err = readSecret(varAPIKeyFile, c.APIKey, c.APIKeyFile, checkAPIKey)
		return "", "", apiKey, "", err
	case c.BearerToken != "" || c.BearerTokenFile != "":
		bearerToken, err = readSecret(varBearerTokenFile, c.BearerToken, c.BearerTokenFile, checkHeaderValue)
		return "", "", "", bearerToken, err
	}
	return "", "", "", "", nil
}

// readSecret returns value, or the content of file if set, less one trailing
// newline, checked with check. Errors name fileVar and never contain the
// secret.
func readSecret(fileVar, value, file string, check func(string) error) (string, error) {
	if file == "" {
		return value, nil // checked by Validate
	}
	secret, err := config.ReadSecret(fileVar, file)
	if err != nil {
		return "", err
	}
	if err := check(secret); err != nil {
		return "", &config.Problem{Var: fileVar, Err: fmt.Errorf("content of %s %w", file, err)}
	}
	return secret, nil
}

// tlsConfig returns the TLS settings for https URLs. They are set on the
// transport here rather than with go-elasticsearch's CACert, which only
// works on an unwrapped *http.Transport and reports an unusable file without
// naming it.
func (c Config) tlsConfig() (*tls.Config, error) {
	return config.TLS{CAFile: c.CAFile, CAVar: varCAFile, InsecureSkipVerify: c.TLSInsecureSkipVerify}.Config()
}

// timeoutTransport limits each exchange, from sending the request to closing
// the response body, to timeout; the cause of the cancellation is
// ErrRequestTimeout. Each attempt of a failed-over request has its own
// limit.
type timeoutTransport struct {
	next    http.RoundTripper
	timeout time.Duration
}

func (t timeoutTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeoutCause(req.Context(), t.timeout, ErrRequestTimeout)
	res, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrRequestTimeout) && !errors.Is(err, ErrRequestTimeout) {
			err = fmt.Errorf("%w: %w", ErrRequestTimeout, err)
		}
		cancel()
		return nil, err
	}
	res.Body = &cancelBody{ReadCloser: res.Body, ctx: ctx, cancel: cancel}
	return res, nil
}

// cancelBody releases the context of an exchange when the response body is
// closed, and reports ErrRequestTimeout for a read cut short by it.
type cancelBody struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), ErrRequestTimeout) {
		err = fmt.Errorf("read response: %w", ErrRequestTimeout)
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
