package elastic

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/testcerts"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/sluicelogs/sluice/internal/config"
)

// received is what a fake Elasticsearch node saw of one request.
type received struct {
	Auth string // Authorization header
	Path string
	Body string
}

// fakeES is an httptest server answering like an Elasticsearch node and
// recording every request.
type fakeES struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

// startES starts a node, plain or TLS, closed when the test ends. respond
// answers requests after the product header is set; nil answers with the
// root endpoint's JSON.
func startES(t *testing.T, useTLS bool, respond http.HandlerFunc) *fakeES {
	t.Helper()
	f := &fakeES{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, received{Auth: r.Header.Get("Authorization"), Path: r.URL.Path, Body: string(body)})
		f.mu.Unlock()
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		if respond != nil {
			respond(w, r)
			return
		}
		io.WriteString(w, `{"name":"node-1","version":{"number":"8.19.0"},"tagline":"You Know, for Search"}`)
	})
	if useTLS {
		f.Server = httptest.NewTLSServer(h)
	} else {
		f.Server = httptest.NewServer(h)
	}
	t.Cleanup(f.Close)
	return f
}

func (f *fakeES) received() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.reqs...)
}

// hang answers only once the test is over or the client gave up.
func hang(t *testing.T) http.HandlerFunc {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) }) // runs before the servers' Close
	return func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}
}

// deadURL returns an http URL on which nothing listens: connections are
// refused.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newClient returns c.NewClient(opts...), closed when the test ends.
func newClient(t *testing.T, c Config, opts ...Option) *elasticsearch.Client {
	t.Helper()
	es, err := c.NewClient(opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { es.Close(context.Background()) })
	return es
}

// info sends GET / and returns the status code.
func info(t *testing.T, es *elasticsearch.Client) (int, error) {
	t.Helper()
	res, err := es.Info()
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// hosts records the host of every attempt the client makes.
type hosts struct {
	mu   sync.Mutex
	list []string
}

func (h *hosts) option() Option {
	return func(cfg *elasticsearch.Config) {
		next := cfg.Transport
		cfg.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
			h.mu.Lock()
			h.list = append(h.list, req.URL.Host)
			h.mu.Unlock()
			return next.RoundTrip(req)
		})
	}
}

func (h *hosts) count(host string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, x := range h.list {
		if x == host {
			n++
		}
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func hostOf(rawURL string) string {
	return strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://")
}

func TestClientAuthentication(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:"+secret))
	tests := []struct {
		name string
		cfg  Config
		want string // Authorization header
	}{
		{name: "anonymous", cfg: Config{}},
		{name: "basic", cfg: Config{Username: "elastic", Password: secret}, want: basic},
		{
			name: "basic from file",
			cfg:  Config{Username: "elastic", PasswordFile: writeFile(t, "pw", secret+"\n")},
			want: basic,
		},
		{
			name: "basic from file with CRLF",
			cfg:  Config{Username: "elastic", PasswordFile: writeFile(t, "pw", secret+"\r\n")},
			want: basic,
		},
		// Elasticsearch matches the scheme name case-insensitively, as
		// RFC 9110 says; go-elasticsearch writes it "APIKey".
		{name: "API key", cfg: Config{APIKey: apiKey}, want: "APIKey " + apiKey},
		{
			name: "API key from file",
			cfg:  Config{APIKeyFile: writeFile(t, "key", apiKey+"\n")},
			want: "APIKey " + apiKey,
		},
		{name: "bearer token", cfg: Config{BearerToken: secret}, want: "Bearer " + secret},
		{
			name: "bearer token from file without newline",
			cfg:  Config{BearerTokenFile: writeFile(t, "token", secret)},
			want: "Bearer " + secret,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startES(t, false, nil)
			c := tt.cfg
			c.URLs, c.RequestTimeout = []string{srv.URL}, 5*time.Second
			es := newClient(t, c)
			for range 2 {
				if code, err := info(t, es); err != nil || code != http.StatusOK {
					t.Fatalf("Info() = %d, %v; want 200", code, err)
				}
			}
			got := srv.received()
			if len(got) != 2 {
				t.Fatalf("server received %d requests, want 2", len(got))
			}
			for _, r := range got {
				if r.Auth != tt.want {
					t.Errorf("Authorization = %q, want %q", r.Auth, tt.want)
				}
			}
		})
	}
}

func TestClientSecretFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		cfg     Config
		wantVar string
		want    string // in the message
	}{
		{
			name:    "missing password file",
			cfg:     Config{Username: "elastic", PasswordFile: missing},
			wantVar: "SLUICE_ELASTICSEARCH_PASSWORD_FILE", want: "no such file",
		},
		{
			name:    "empty password file",
			cfg:     Config{Username: "elastic", PasswordFile: writeFile(t, "empty", "\n")},
			wantVar: "SLUICE_ELASTICSEARCH_PASSWORD_FILE", want: "is empty",
		},
		{
			name:    "two newlines",
			cfg:     Config{Username: "elastic", PasswordFile: writeFile(t, "pw", secret+"\n\n")},
			wantVar: "SLUICE_ELASTICSEARCH_PASSWORD_FILE", want: "control character",
		},
		{
			name:    "missing API key file",
			cfg:     Config{APIKeyFile: missing},
			wantVar: "SLUICE_ELASTICSEARCH_API_KEY_FILE", want: "no such file",
		},
		{
			name:    "API key file not encoded",
			cfg:     Config{APIKeyFile: writeFile(t, "key", "id:"+secret+"\n")},
			wantVar: "SLUICE_ELASTICSEARCH_API_KEY_FILE", want: "is not an encoded API key",
		},
		{
			name:    "empty bearer token file",
			cfg:     Config{BearerTokenFile: writeFile(t, "empty", "")},
			wantVar: "SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE", want: "is empty",
		},
		{
			name:    "bearer token file with the scheme",
			cfg:     Config{BearerTokenFile: writeFile(t, "token", "Bearer "+secret)},
			wantVar: "SLUICE_ELASTICSEARCH_BEARER_TOKEN_FILE", want: "contains a space",
		},
		{
			name:    "missing CA file",
			cfg:     Config{URLs: []string{"https://es:9200"}, CAFile: missing},
			wantVar: "SLUICE_ELASTICSEARCH_CA_FILE", want: "no such file",
		},
		{
			name:    "CA file without PEM",
			cfg:     Config{URLs: []string{"https://es:9200"}, CAFile: writeFile(t, "ca.pem", secret)},
			wantVar: "SLUICE_ELASTICSEARCH_CA_FILE", want: "no PEM certificate",
		},
		{
			name:    "invalid",
			cfg:     Config{Password: secret},
			wantVar: "SLUICE_ELASTICSEARCH_URLS", want: "must not be empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cfg
			if c.URLs == nil && tt.wantVar != "SLUICE_ELASTICSEARCH_URLS" {
				c.URLs = []string{"http://127.0.0.1:9200"}
			}
			if c.RequestTimeout == 0 {
				c.RequestTimeout = time.Second
			}
			es, err := c.NewClient()
			if err == nil {
				es.Close(context.Background())
				t.Fatal("NewClient() succeeded, want an error")
			}
			var p *config.Problem
			if !errors.As(err, &p) || p.Var != tt.wantVar {
				t.Errorf("NewClient() = %v, want a problem with %s", err, tt.wantVar)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewClient() = %v, want %q in the message", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error contains the secret: %v", err)
			}
		})
	}
}

func TestClientTLS(t *testing.T) {
	srv := startES(t, true, nil)
	caFile := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
	base := Config{URLs: []string{srv.URL}, BearerToken: secret, RequestTimeout: 5 * time.Second}

	t.Run("CA file", func(t *testing.T) {
		c := base
		c.CAFile = caFile
		if code, err := info(t, newClient(t, c)); err != nil || code != http.StatusOK {
			t.Fatalf("Info() = %d, %v; want 200", code, err)
		}
		if got := srv.received(); len(got) == 0 || got[len(got)-1].Auth != "Bearer "+secret {
			t.Errorf("server received %+v", got)
		}
	})
	t.Run("system roots", func(t *testing.T) {
		n := len(srv.received())
		_, err := info(t, newClient(t, base))
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("Info() error = %v, want an unknown authority", err)
		}
		if got := len(srv.received()); got != n {
			t.Errorf("server received %d requests over an unverified connection", got-n)
		}
	})
	t.Run("another CA", func(t *testing.T) {
		c := base
		c.CAFile = writeFile(t, "other.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testcerts.SelfSigned(t, "sluice test CA").Cert.Raw})))
		_, err := info(t, newClient(t, c))
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("Info() error = %v, want an unknown authority", err)
		}
	})
	t.Run("insecure", func(t *testing.T) {
		c := base
		c.TLSInsecureSkipVerify = true
		if code, err := info(t, newClient(t, c)); err != nil || code != http.StatusOK {
			t.Fatalf("Info() = %d, %v; want 200", code, err)
		}
	})
}

func TestClientFailover(t *testing.T) {
	srv := startES(t, false, nil)
	dead := deadURL(t)
	var h hosts
	es := newClient(t, Config{URLs: []string{dead, srv.URL}, Username: "elastic", Password: secret, RequestTimeout: 5 * time.Second}, h.option())
	for i := range 6 {
		if code, err := info(t, es); err != nil || code != http.StatusOK {
			t.Fatalf("request %d: Info() = %d, %v; want 200", i, code, err)
		}
	}
	if got := len(srv.received()); got != 6 {
		t.Errorf("live node received %d requests, want 6", got)
	}
	// The dead node was tried once, then left alone.
	if got := h.count(hostOf(dead)); got != 1 {
		t.Errorf("dead node tried %d times, want 1", got)
	}
}

func TestClientFailoverResendsBody(t *testing.T) {
	srv := startES(t, false, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"took":1,"errors":false,"items":[]}`)
	})
	var h hosts
	es := newClient(t, Config{URLs: []string{deadURL(t), deadURL(t), srv.URL}, RequestTimeout: 5 * time.Second}, h.option())
	bodies := []string{
		`{"create":{"_index":"logs-a"}}` + "\n" + `{"message":"one"}` + "\n",
		`{"create":{"_index":"logs-a"}}` + "\n" + `{"message":"two"}` + "\n",
		`{"create":{"_index":"logs-a"}}` + "\n" + `{"message":"three"}` + "\n",
	}
	for _, body := range bodies {
		// A reader net/http cannot replay by itself.
		res, err := es.Bulk(io.MultiReader(strings.NewReader(body)))
		if err != nil {
			t.Fatalf("Bulk(): %v", err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("Bulk() status %d", res.StatusCode)
		}
	}
	var got []string
	for _, r := range srv.received() {
		got = append(got, r.Body)
	}
	if !reflect.DeepEqual(got, bodies) {
		t.Errorf("live node received bodies %q, want %q", got, bodies)
	}
	h.mu.Lock()
	attempts := len(h.list)
	h.mu.Unlock()
	if attempts != 5 { // each dead node once, each body once on the live one
		t.Errorf("%d attempts, want 5: %q", attempts, h.list)
	}
}

func TestClientAllNodesDown(t *testing.T) {
	dead1, dead2 := deadURL(t), deadURL(t)
	var h hosts
	es := newClient(t, Config{URLs: []string{dead1, dead2}, RequestTimeout: 5 * time.Second}, h.option())
	_, err := info(t, es)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("Info() error = %v, want a dial error", err)
	}
	if n1, n2 := h.count(hostOf(dead1)), h.count(hostOf(dead2)); n1 != 1 || n2 != 1 {
		t.Errorf("attempts: %d and %d, want one per node", n1, n2)
	}
}

func TestClientSingleURLNotRetried(t *testing.T) {
	dead := deadURL(t)
	var h hosts
	es := newClient(t, Config{URLs: []string{dead}, RequestTimeout: 5 * time.Second}, h.option())
	if _, err := info(t, es); err == nil {
		t.Fatal("Info() succeeded against a dead node")
	}
	if got := h.count(hostOf(dead)); got != 1 {
		t.Errorf("dead node tried %d times, want 1", got)
	}
}

func TestClientDoesNotRetryStatus(t *testing.T) {
	unavailable := func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"type":"unavailable_shards_exception"},"status":503}`)
	}
	srv1, srv2 := startES(t, false, unavailable), startES(t, false, unavailable)
	es := newClient(t, Config{URLs: []string{srv1.URL, srv2.URL}, RequestTimeout: 5 * time.Second})
	code, err := info(t, es)
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("Info() = %d, %v; want 503", code, err)
	}
	if n := len(srv1.received()) + len(srv2.received()); n != 1 {
		t.Errorf("nodes received %d requests, want 1", n)
	}
}

func TestClientRequestTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	t.Run("no response", func(t *testing.T) {
		srv1, srv2 := startES(t, false, hang(t)), startES(t, false, hang(t))
		es := newClient(t, Config{URLs: []string{srv1.URL, srv2.URL}, RequestTimeout: timeout})
		start := time.Now()
		_, err := info(t, es)
		if !errors.Is(err, ErrRequestTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Info() error = %v, want ErrRequestTimeout", err)
		}
		if d := time.Since(start); d < timeout || d > 10*timeout {
			t.Errorf("gave up after %s, want about %s", d, timeout)
		}
		// Not retried: the node may be working on it.
		if n := len(srv1.received()) + len(srv2.received()); n != 1 {
			t.Errorf("nodes received %d requests, want 1", n)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		wait := hang(t)
		srv := startES(t, false, func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"name":`)
			w.(http.Flusher).Flush()
			wait(w, r)
		})
		es := newClient(t, Config{URLs: []string{srv.URL}, RequestTimeout: timeout})
		res, err := es.Info()
		if err != nil {
			t.Fatalf("Info(): %v", err)
		}
		defer res.Body.Close()
		start := time.Now()
		_, err = io.ReadAll(res.Body)
		if !errors.Is(err, ErrRequestTimeout) {
			t.Fatalf("reading the body: %v, want ErrRequestTimeout", err)
		}
		if d := time.Since(start); d > 10*timeout {
			t.Errorf("gave up after %s, want about %s", d, timeout)
		}
	})
	t.Run("caller's deadline", func(t *testing.T) {
		srv := startES(t, false, hang(t))
		es := newClient(t, Config{URLs: []string{srv.URL}, RequestTimeout: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		res, err := es.Info(es.Info.WithContext(ctx))
		if err == nil {
			res.Body.Close()
			t.Fatal("Info() succeeded")
		}
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRequestTimeout) {
			t.Errorf("Info() error = %v, want the caller's deadline", err)
		}
	})
}

func TestIsConnectError(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	tests := []struct {
		name string
		req  *http.Request
		err  error
		want bool
	}{
		{"dial", req, dial, true},
		{"wrapped dial", req, fmt.Errorf("x: %w", dial), true},
		{"dial after the caller gave up", req.WithContext(cancelled), dial, false},
		{"read", req, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, false},
		{"timeout", req, ErrRequestTimeout, false},
		{"tls", req, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false},
		{"eof", req, io.ErrUnexpectedEOF, false},
	}
	for _, tt := range tests {
		if got := isConnectError(tt.req, tt.err); got != tt.want {
			t.Errorf("%s: isConnectError = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewClientSettings(t *testing.T) {
	caFile := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testcerts.SelfSigned(t, "sluice test CA").Cert.Raw})))
	tests := []struct {
		name string
		cfg  Config
		// want holds the go-elasticsearch settings checked.
		want elasticsearch.Config
	}{
		{
			name: "one URL",
			cfg:  Config{URLs: []string{"http://es:9200"}, RequestTimeout: time.Minute},
			want: elasticsearch.Config{Addresses: []string{"http://es:9200"}, DisableRetry: true},
		},
		{
			name: "three URLs",
			cfg:  Config{URLs: []string{"https://es1:9200", "https://es2:9200", "https://es3:9200"}, CAFile: caFile, RequestTimeout: 3 * time.Second},
			want: elasticsearch.Config{
				Addresses:     []string{"https://es1:9200", "https://es2:9200", "https://es3:9200"},
				MaxRetries:    2,
				RetryOnStatus: []int{noStatus},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got elasticsearch.Config
			newClient(t, tt.cfg, func(cfg *elasticsearch.Config) { got = *cfg })

			if !reflect.DeepEqual(got.Addresses, tt.want.Addresses) {
				t.Errorf("Addresses = %q, want %q", got.Addresses, tt.want.Addresses)
			}
			if got.DisableRetry != tt.want.DisableRetry || got.MaxRetries != tt.want.MaxRetries ||
				!reflect.DeepEqual(got.RetryOnStatus, tt.want.RetryOnStatus) || (got.RetryOnError != nil) != !tt.want.DisableRetry {
				t.Errorf("retries: DisableRetry %v, MaxRetries %d, RetryOnStatus %v, RetryOnError set %v; want %v, %d, %v, %v",
					got.DisableRetry, got.MaxRetries, got.RetryOnStatus, got.RetryOnError != nil,
					tt.want.DisableRetry, tt.want.MaxRetries, tt.want.RetryOnStatus, !tt.want.DisableRetry)
			}
			if got.CompressRequestBody || got.DiscoverNodesOnStart || got.DiscoverNodesInterval != 0 || got.CACert != nil {
				t.Errorf("unexpected settings: %+v", got)
			}
			tt2, ok := got.Transport.(timeoutTransport)
			if !ok {
				t.Fatalf("Transport is %T, want timeoutTransport", got.Transport)
			}
			if tt2.timeout != tt.cfg.RequestTimeout {
				t.Errorf("timeout = %s, want %s", tt2.timeout, tt.cfg.RequestTimeout)
			}
			ft, ok := tt2.next.(*flavorTransport)
			if !ok || ft.openSearch {
				t.Fatalf("inner transport is %T (%+v), want an Elasticsearch flavorTransport", tt2.next, tt2.next)
			}
			tr, ok := ft.next.(*http.Transport)
			if !ok {
				t.Fatalf("inner transport is %T", ft.next)
			}
			if tr.MaxIdleConnsPerHost < 16 || tr.IdleConnTimeout <= 0 || tr.TLSHandshakeTimeout <= 0 || tr.TLSHandshakeTimeout > tt.cfg.RequestTimeout {
				t.Errorf("pooling: MaxIdleConnsPerHost %d, IdleConnTimeout %s, TLSHandshakeTimeout %s",
					tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tr.TLSHandshakeTimeout)
			}
			if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 ||
				(tr.TLSClientConfig.RootCAs != nil) != (tt.cfg.CAFile != "") || tr.TLSClientConfig.InsecureSkipVerify {
				t.Errorf("TLS config %+v", tr.TLSClientConfig)
			}
		})
	}
}

func TestClientErrorsNeverContainSecrets(t *testing.T) {
	// A node rejecting the credentials: go-elasticsearch returns the
	// response; nothing about it may echo what was sent.
	srv := startES(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"type":"security_exception","reason":"unable to authenticate"},"status":401}`)
	})
	for _, c := range []Config{
		{URLs: []string{srv.URL}, Username: "elastic", PasswordFile: writeFile(t, "pw", secret)},
		{URLs: []string{deadURL(t), deadURL(t)}, BearerToken: secret},
		{URLs: []string{srv.URL}, APIKey: apiKey},
	} {
		c.RequestTimeout = 5 * time.Second
		es := newClient(t, c)
		res, err := es.Info()
		var out bytes.Buffer
		if err != nil {
			out.WriteString(err.Error())
		} else {
			fmt.Fprint(&out, res)
			res.Body.Close()
		}
		fmt.Fprint(&out, c)
		for _, s := range []string{secret, apiKey} {
			if strings.Contains(out.String(), s) {
				t.Errorf("output contains a secret: %s", out.String())
			}
		}
	}
}
