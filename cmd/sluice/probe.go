package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sluicelogs/sluice/internal/cli"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// probeCommand is `sluice probe`: a health check for images without a
// shell or curl (the distroless image), such as docker compose's
// ["CMD", "/usr/local/bin/sluice", "probe"].
func probeCommand() *cli.Command {
	return &cli.Command{
		Name:    "probe",
		Summary: "exit 0 when a stage's /readyz answers 2xx (health checks in images without a shell)",
		Usage:   "[--url URL] [--timeout DURATION]",
		Description: `GETs a stage's /readyz (or URL) and exits 0 when it answers 2xx, else 1 with a one-line reason. It
is the health check of the container image, which has no shell and no curl; it reads the port from
SLUICE_TELEMETRY_ADDR, as the stage in the same container does.`,
		Examples: []string{
			"sluice probe                                          # the stage in this container",
			"sluice probe --url http://127.0.0.1:9465/readyz --timeout 1s",
		},
		Flags: func(fs *flag.FlagSet) cli.Action {
			target := fs.String("url", "", "URL to GET (default http://127.0.0.1:<port of SLUICE_TELEMETRY_ADDR, 9464>/readyz)")
			timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
			return func(ctx context.Context, _ []string, stdout, _ io.Writer) error {
				if *timeout <= 0 {
					return cli.Usagef("--timeout must be positive, got %s", *timeout)
				}
				u := *target
				if u == "" {
					addr, set := os.LookupEnv("SLUICE_TELEMETRY_ADDR")
					if !set {
						addr = telemetry.DefaultAddr
					}
					var err error
					if u, err = readyzURL(addr); err != nil {
						return fmt.Errorf("probe: %w", err)
					}
				}
				if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
					return cli.Usagef("--url %q is not an http(s) URL", u)
				}
				status, err := probe(ctx, u, *timeout)
				if err != nil {
					return fmt.Errorf("probe: %w", err)
				}
				_, err = fmt.Fprintf(stdout, "%s: %s\n", u, status)
				return err
			}
		},
	}
}

// readyzURL is the /readyz URL of a telemetry server listening on addr
// (SLUICE_TELEMETRY_ADDR): a wildcard or empty host becomes 127.0.0.1.
func readyzURL(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("SLUICE_TELEMETRY_ADDR is empty: the stage serves no /readyz (give --url)")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("SLUICE_TELEMETRY_ADDR=%q is not host:port: %w", addr, err)
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// probe GETs u and returns its status when it is 2xx; an error otherwise,
// in one line.
func probe(ctx context.Context, u string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{
		// A health check must not follow a redirect elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("GET %s: no answer within %s", u, timeout)
		}
		return "", oneLineErr(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("GET %s: %s", u, resp.Status)
		if b := strings.TrimSpace(oneLine(string(body))); b != "" {
			msg += ": " + b
		}
		return "", errors.New(msg)
	}
	return resp.Status, nil
}

func oneLineErr(err error) error { return errors.New(oneLine(err.Error())) }
