package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/sluicelogs/sluice/internal/config"
)

// DefaultAddr is where the telemetry server listens unless
// SLUICE_TELEMETRY_ADDR says otherwise: port 9464, the port OpenTelemetry's
// Prometheus exporters use, so that scrape configs and network policies
// written for those fit. Each stage runs in its own pod; processes sharing a
// network namespace need distinct addresses.
const DefaultAddr = ":9464"

// Config is the telemetry and logging settings of a process, loaded with
// config.Load. Embed it without an env prefix= so that the variable names
// below (and those in Validate's messages) are the ones in effect.
type Config struct {
	Addr      string `env:"TELEMETRY_ADDR, default=:9464" help:"Listen address of the /metrics, /healthz and /readyz server, host:port. Empty disables the server."`
	LogFormat string `env:"LOG_FORMAT, default=text" help:"Log format: text or json."`
	LogLevel  string `env:"LOG_LEVEL, default=info" help:"Lowest level logged: debug, info, warn or error."`
}

// Validate reports every problem of c, joined, each naming its variable.
func (c Config) Validate() error {
	var p config.Problems
	if c.Addr != "" {
		_, port, err := net.SplitHostPort(c.Addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			p.Add(config.Var("TELEMETRY_ADDR"), "%q is not host:port (host may be empty)", c.Addr)
		}
	}
	if _, err := parseFormat(c.LogFormat); err != nil {
		p.AddErr(config.Var("LOG_FORMAT"), err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		p.AddErr(config.Var("LOG_LEVEL"), err)
	}
	return p.Err()
}

// Logger returns NewLogger(w, c.LogFormat, c.LogLevel).
func (c Config) Logger(w io.Writer) (*slog.Logger, error) {
	return NewLogger(w, c.LogFormat, c.LogLevel)
}

// NewLogger returns a logger writing to w in format (text or json) at level
// (debug, info, warn or error) and above. Both are case-insensitive; empty
// means text and info.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	f, err := parseFormat(format)
	if err != nil {
		return nil, fmt.Errorf("log format: %w", err)
	}
	l, err := parseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	if f == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

func parseFormat(s string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "", "text":
		return "text", nil
	case "json":
		return f, nil
	}
	return "", fmt.Errorf("%q is not text or json", s)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "", "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
}
