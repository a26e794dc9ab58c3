package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// Options are what the caller provides besides the settings. Nil fields
// get the defaults of telemetry.StageDefaults.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Ready is called with true once the gateway listens, and with false
	// when it starts shutting down.
	Ready func(bool)
	// Version is written into every record's source.shipper, as
	// "sluice-gateway <version>".
	Version string
}

// Gateway is the ingest gateway. Build it with New, then Run it.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	ready   func(bool)
	m       *metrics
	lim     *limits
	pool    *pool
	tokens  *tokens
	tls     *tls.Config
	version string
	now     func() time.Time

	mu       sync.Mutex
	ln       net.Listener
	grpcLn   net.Listener
	draining bool
}

// New checks cfg and builds a gateway; it contacts nothing.
func New(cfg Config, opts Options) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway settings:\n%w", err)
	}
	log, reg, ready := telemetry.StageDefaults(opts.Logger, opts.Registerer, opts.Ready)
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	g := &Gateway{cfg: cfg, log: log, ready: ready, version: "sluice-gateway " + version, now: time.Now}
	g.lim = newLimits(&g.cfg)
	g.m = newMetrics(reg, func() float64 { return float64(g.lim.inflight()) })
	g.pool = newPool(&g.cfg, log, g.m, g.lim)
	if cfg.TokensFile != "" {
		t, err := loadTokens(cfg.TokensFile)
		if err != nil {
			return nil, err
		}
		g.tokens = t
	}
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, &config.Problem{Var: config.Var("GATEWAY_TLS_CERT_FILE"), Err: err}
		}
		g.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if cfg.TLSClientCAFile != "" {
			var pool *x509.CertPool
			if pool, err = config.ReadCertPool(config.Var("GATEWAY_TLS_CLIENT_CA_FILE"), cfg.TLSClientCAFile); err != nil {
				return nil, err
			}
			g.tls.ClientCAs, g.tls.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	return g, nil
}

// Listen binds the listeners of SLUICE_GATEWAY_ADDR (and
// SLUICE_GATEWAY_GRPC_ADDR); Run calls it if it was not called.
func (g *Gateway) Listen() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", g.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (%s): %w", g.cfg.Addr, config.Var("GATEWAY_ADDR"), err)
	}
	if g.cfg.GRPCAddr != "" {
		gl, err := net.Listen("tcp", g.cfg.GRPCAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (%s): %w", g.cfg.GRPCAddr, config.Var("GATEWAY_GRPC_ADDR"), err)
		}
		g.grpcLn = netutil.LimitListener(gl, g.cfg.MaxConnections)
	}
	g.ln = netutil.LimitListener(ln, g.cfg.MaxConnections)
	return nil
}

// Addr returns the address the HTTP listener is bound to ("" before
// Listen).
func (g *Gateway) Addr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln == nil {
		return ""
	}
	return g.ln.Addr().String()
}

// GRPCAddr returns the address the gRPC listener is bound to ("" when off
// or before Listen).
func (g *Gateway) GRPCAddr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.grpcLn == nil {
		return ""
	}
	return g.grpcLn.Addr().String()
}

// serve serves h on ln with the gateway's timeouts and TLS, over
// protocols (nil: HTTP/1 and, with TLS, HTTP/2), sending the end of
// Serve to errs.
func (g *Gateway) serve(ln net.Listener, h http.Handler, protocols *http.Protocols, errs chan<- error) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(g.cfg.ReadTimeout, 10*time.Second),
		ReadTimeout:       g.cfg.ReadTimeout,
		// Writing an answer waits for Kafka: the acknowledgement timeout
		// and a margin bound it.
		WriteTimeout:   g.cfg.ReadTimeout + g.cfg.AckTimeout + 5*time.Second,
		IdleTimeout:    g.cfg.IdleTimeout,
		MaxHeaderBytes: 64 << 10,
		TLSConfig:      g.tls.Clone(), // each server sets its own NextProtos
		Protocols:      protocols,
		HTTP2:          &http.HTTP2Config{MaxConcurrentStreams: grpcStreamsPerConn},
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	go func() {
		var err error
		if g.tls != nil {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errs <- err
	}()
	return srv
}

// Run serves until ctx ends, then stops taking requests (readiness first),
// lets those in progress finish within SLUICE_GATEWAY_SHUTDOWN_TIMEOUT,
// and closes the Kafka clients.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Listen(); err != nil {
		return err
	}
	errs := make(chan error, 2)
	srv := g.serve(g.ln, g.Handler(), nil, errs)
	var grpcSrv *http.Server
	if g.grpcLn != nil {
		// gRPC needs HTTP/2: with TLS by ALPN, without by prior
		// knowledge (what gRPC clients send on an insecure channel).
		p := new(http.Protocols)
		p.SetHTTP1(true) // answered 505, rather than a closed connection
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(g.tls == nil)
		grpcSrv = g.serve(g.grpcLn, http.HandlerFunc(g.serveGRPC), p, errs)
	}
	sweep := time.NewTicker(min(g.cfg.ClientIdle, g.cfg.AuthTTL, 30*time.Second))
	defer sweep.Stop()
	g.log.Info("gateway started", "addr", g.Addr(), "grpc_addr", g.GRPCAddr(), "tls", g.tls != nil,
		"mutual_tls", g.cfg.TLSClientCAFile != "", "tokens", g.tokens != nil, "kafka", g.cfg.Kafka)
	g.ready(true)
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errs:
			break loop
		case <-sweep.C:
			g.pool.sweep()
		}
	}
	g.ready(false)
	g.mu.Lock()
	g.draining = true
	g.mu.Unlock()
	g.log.Info("gateway stopping: finishing requests in progress", "timeout", g.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		g.log.Warn("requests still in progress at the shutdown timeout", "err", serr)
		_ = srv.Close()
	}
	if grpcSrv != nil {
		if serr := grpcSrv.Shutdown(sctx); serr != nil {
			_ = grpcSrv.Close()
		}
	}
	g.pool.close()
	g.log.Info("gateway stopped")
	return err
}
