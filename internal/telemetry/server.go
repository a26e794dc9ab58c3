package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ShutdownTimeout bounds how long Run waits for in-flight requests (a
// scrape, a probe) after its context is cancelled.
const ShutdownTimeout = 5 * time.Second

// Server serves a process's telemetry over HTTP:
//
//   - /metrics: the gatherer, in the Prometheus exposition formats;
//   - /healthz: 200 while the process is alive (liveness probe);
//   - /readyz: 200 once SetReady(true) and until SetReady(false), else 503
//     (readiness probe).
//
// NewServer starts nothing. Listen binds; Run serves until its context is
// cancelled. Addr, SetReady and Ready are safe for concurrent use.
type Server struct {
	addr    string
	handler http.Handler
	log     *slog.Logger
	ready   atomic.Bool

	mu sync.Mutex
	ln net.Listener
}

// NewServer returns a server for addr (host:port; port 0 picks a free port,
// see Addr; empty disables serving, see Run) exposing g. log receives
// lifecycle events and errors; nil discards them. The server starts not
// ready.
func NewServer(addr string, g prometheus.Gatherer, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{addr: addr, log: log}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.ready.Load() {
			writeText(w, http.StatusOK, "ok\n")
			return
		}
		writeText(w, http.StatusServiceUnavailable, "not ready\n")
	})
	s.handler = mux
	return s
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

// Handler returns the server's routes, for tests with httptest.
func (s *Server) Handler() http.Handler { return s.handler }

// SetReady sets what /readyz reports. A stage sets it once it can do its
// work (e.g. joined its consumer group) and clears it when it starts
// draining.
func (s *Server) SetReady(ready bool) {
	if s.ready.Swap(ready) != ready {
		s.log.Info("readiness changed", "ready", ready)
	}
}

// Ready reports what /readyz reports.
func (s *Server) Ready() bool { return s.ready.Load() }

// Listen binds the listen address, so that a taken port fails a process at
// startup and Addr reports the port picked for port 0. It does nothing if
// already bound or if the address is empty. Run calls it if needed.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil || s.addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("telemetry server: listen on %s: %w", s.addr, err)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address once Listen has succeeded (with the actual
// port when the configured one was 0), else the configured address.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Run listens (unless Listen was called) and serves until ctx is cancelled,
// then stops accepting, waits up to ShutdownTimeout for in-flight requests
// and returns nil. It returns an error if it cannot listen or serving fails.
// With an empty address it serves nothing and just waits for ctx, so that
// callers need no special case. Run must be called at most once.
//
// To keep /metrics scrapable while a stage drains, give Run a context that
// is cancelled after the stage's Run returned.
func (s *Server) Run(ctx context.Context) error {
	if s.addr == "" {
		s.log.Info("telemetry server disabled")
		<-ctx.Done()
		return nil
	}
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("telemetry server listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("telemetry server: serve: %w", err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("telemetry server: shut down: %w", err)
	}
	s.log.Info("telemetry server stopped")
	return nil
}
