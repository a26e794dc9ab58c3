package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"

	"github.com/sluicelogs/sluice/internal/config"
)

func TestNewRegistry(t *testing.T) {
	mfs, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var goFound, processFound bool
	for _, mf := range mfs {
		switch mf.GetName() {
		case "go_goroutines":
			goFound = true
		case "process_cpu_seconds_total":
			processFound = true
		}
	}
	if !goFound {
		t.Error("go_goroutines not registered")
	}
	// The process collector only reports where procfs (or the platform
	// equivalent) is available.
	if !processFound && runtimeHasProcfs() {
		t.Error("process_cpu_seconds_total not registered")
	}
}

func runtimeHasProcfs() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Config
		errs []string
	}{
		{name: "defaults", want: Config{Addr: ":9464", LogFormat: "text", LogLevel: "info"}},
		{
			name: "set",
			env:  map[string]string{"SLUICE_TELEMETRY_ADDR": "127.0.0.1:0", "SLUICE_LOG_FORMAT": "JSON", "SLUICE_LOG_LEVEL": "Debug"},
			want: Config{Addr: "127.0.0.1:0", LogFormat: "JSON", LogLevel: "Debug"},
		},
		{
			name: "server disabled",
			env:  map[string]string{"SLUICE_TELEMETRY_ADDR": ""},
			want: Config{LogFormat: "text", LogLevel: "info"},
		},
		{
			name: "invalid",
			env:  map[string]string{"SLUICE_TELEMETRY_ADDR": "9464", "SLUICE_LOG_FORMAT": "logfmt", "SLUICE_LOG_LEVEL": "verbose"},
			want: Config{Addr: "9464", LogFormat: "logfmt", LogLevel: "verbose"},
			errs: []string{
				`SLUICE_TELEMETRY_ADDR: "9464" is not host:port (host may be empty)`,
				`SLUICE_LOG_FORMAT: "logfmt" is not text or json`,
				`SLUICE_LOG_LEVEL: "verbose" is not debug, info, warn or error`,
			},
		},
		{
			name: "bad port",
			env:  map[string]string{"SLUICE_TELEMETRY_ADDR": ":http"},
			want: Config{Addr: ":http", LogFormat: "text", LogLevel: "info"},
			errs: []string{`SLUICE_TELEMETRY_ADDR: ":http" is not host:port (host may be empty)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			if err := config.LoadFrom(context.Background(), &c, envconfig.MapLookuper(tt.env)); err != nil {
				t.Fatal(err)
			}
			if c != tt.want {
				t.Errorf("loaded %+v, want %+v", c, tt.want)
			}
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !reflect.DeepEqual(got, tt.errs) {
				t.Errorf("Validate():\n got %q\nwant %q", got, tt.errs)
			}
		})
	}
	for _, s := range config.Describe(Config{}) {
		if s.Help == "" {
			t.Errorf("%s has no help tag", s.Name)
		}
	}
	if d := config.Describe(Config{}); d[0].Default != DefaultAddr {
		t.Errorf("TELEMETRY_ADDR default %q, want DefaultAddr %q", d[0].Default, DefaultAddr)
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		format, level string
		wantJSON      bool
		debug, info   bool
		err           string
	}{
		{format: "", level: "", info: true},
		{format: "text", level: "debug", debug: true, info: true},
		{format: "JSON", level: "WARN", wantJSON: true},
		{format: "json", level: "error", wantJSON: true},
		{format: "xml", level: "info", err: `log format: "xml" is not text or json`},
		{format: "text", level: "trace", err: `log level: "trace" is not debug, info, warn or error`},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		log, err := NewLogger(&b, tt.format, tt.level)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("NewLogger(%q, %q) error %v, want %q", tt.format, tt.level, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("NewLogger(%q, %q): %v", tt.format, tt.level, err)
		}
		log.Debug("d")
		log.Info("i")
		log.Error("e", "k", "v")
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if want := 1 + btoi(tt.debug) + btoi(tt.info); len(lines) != want {
			t.Errorf("%q/%q: %d lines, want %d:\n%s", tt.format, tt.level, len(lines), want, b.String())
		}
		last := lines[len(lines)-1]
		var m map[string]any
		isJSON := json.Unmarshal([]byte(last), &m) == nil
		if isJSON != tt.wantJSON {
			t.Errorf("%q/%q: line %q, JSON %v, want %v", tt.format, tt.level, last, isJSON, tt.wantJSON)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestServerHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: "test", Name: "events_total", Help: "Events."})
	reg.MustRegister(c)
	c.Add(3)
	s := NewServer("127.0.0.1:0", reg, nil)
	h := s.Handler()

	get := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	tests := []struct {
		name   string
		ready  bool
		method string
		path   string
		code   int
		body   string
	}{
		{"metrics", false, http.MethodGet, "/metrics", 200, "sluice_test_events_total 3"},
		{"healthz", false, http.MethodGet, "/healthz", 200, "ok"},
		{"healthz head", false, http.MethodHead, "/healthz", 200, ""},
		{"readyz before ready", false, http.MethodGet, "/readyz", 503, "not ready"},
		{"readyz when ready", true, http.MethodGet, "/readyz", 200, "ok"},
		{"readyz after unready", false, http.MethodGet, "/readyz", 503, "not ready"},
		{"post", false, http.MethodPost, "/healthz", 405, ""},
		{"unknown", false, http.MethodGet, "/", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetReady(tt.ready)
			if s.Ready() != tt.ready {
				t.Fatalf("Ready() = %v, want %v", s.Ready(), tt.ready)
			}
			code, body := get(tt.method, tt.path)
			if code != tt.code || !strings.Contains(body, tt.body) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, code, body, tt.code, tt.body)
			}
		})
	}
}

func TestServerRun(t *testing.T) {
	var logs syncBuffer
	log, err := NewLogger(&logs, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer("127.0.0.1:0", NewRegistry(), log)
	if got := s.Addr(); got != "127.0.0.1:0" {
		t.Errorf("Addr() before Listen = %q", got)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if _, port, _ := net.SplitHostPort(addr); port == "0" || port == "" {
		t.Fatalf("Addr() after Listen = %q, want the picked port", addr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	client := &http.Client{Timeout: 5 * time.Second}
	status := func(path string) int {
		t.Helper()
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if got := status("/healthz"); got != 200 {
		t.Errorf("/healthz = %d", got)
	}
	if got := status("/readyz"); got != 503 {
		t.Errorf("/readyz before SetReady = %d", got)
	}
	s.SetReady(true)
	if got := status("/readyz"); got != 200 {
		t.Errorf("/readyz after SetReady = %d", got)
	}
	if got := status("/metrics"); got != 200 {
		t.Errorf("/metrics = %d", got)
	}

	// A second server cannot take the same port: Listen reports it.
	if err := NewServer(addr, NewRegistry(), nil).Listen(); err == nil {
		t.Error("second Listen on a bound port succeeded")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v, want nil after cancel", err)
		}
	case <-time.After(ShutdownTimeout + time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if resp, err := client.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Error("server still answering after Run returned")
	}
	for _, want := range []string{"telemetry server listening", "readiness changed", "telemetry server stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestServerRunDisabled(t *testing.T) {
	s := NewServer("", NewRegistry(), nil)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run() disabled = %v, want nil", err)
	}
	if s.Addr() != "" {
		t.Errorf("Addr() = %q, want empty", s.Addr())
	}
}

func TestServerRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = NewServer(ln.Addr().String(), NewRegistry(), nil).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "telemetry server: listen on") {
		t.Errorf("Run() on a taken port = %v", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("Run() error does not wrap the listen error: %v", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
