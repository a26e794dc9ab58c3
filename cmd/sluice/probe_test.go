package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProbe: `sluice probe` exits 0 on 2xx and fails with a one-line reason
// on any other status, on a server that is not there, and on one that does
// not answer in time.
func TestProbe(t *testing.T) {
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }))
	defer ready.Close()
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	stuck := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-stuck }))
	defer slow.Close()
	defer close(stuck)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	for _, tc := range []struct {
		name, url string
		extra     []string
		want      string // in the error; "" for success
	}{
		{"200", ready.URL + "/readyz", nil, ""},
		{"503", notReady.URL + "/readyz", nil, "503 Service Unavailable: not ready"},
		{"unreachable", gone.URL + "/readyz", nil, "connection refused"},
		{"timeout", slow.URL + "/readyz", []string{"--timeout", "200ms"}, "no answer within 200ms"},
		{"not a URL", "127.0.0.1:9464/readyz", nil, "is not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			start := time.Now()
			err := run(t.Context(), append([]string{"probe", "--url", tc.url}, tc.extra...), &out, &errOut)
			if time.Since(start) > 5*time.Second {
				t.Errorf("probe took %s", time.Since(start))
			}
			if tc.want == "" {
				if err != nil || !strings.Contains(out.String(), "200 OK") {
					t.Fatalf("probe: %v, printed %q", err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("probe: %v, want an error with %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("reason is not one line: %q", err.Error())
			}
		})
	}
}

// TestProbeDefaultURL: without --url the probe asks the port the stage
// listens on, from SLUICE_TELEMETRY_ADDR.
func TestProbeDefaultURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	t.Setenv("SLUICE_TELEMETRY_ADDR", ":"+port)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"probe"}, &out, &out); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if want := "http://127.0.0.1:" + port + "/readyz: 200 OK\n"; out.String() != want {
		t.Errorf("printed %q, want %q", out.String(), want)
	}

	for addr, want := range map[string]string{
		":9464":          "http://127.0.0.1:9464/readyz",
		"0.0.0.0:9500":   "http://127.0.0.1:9500/readyz",
		"[::]:9464":      "http://127.0.0.1:9464/readyz",
		"10.1.2.3:9464":  "http://10.1.2.3:9464/readyz",
		"localhost:9464": "http://localhost:9464/readyz",
	} {
		if got, err := readyzURL(addr); err != nil || got != want {
			t.Errorf("readyzURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, addr := range []string{"", "9464"} {
		if _, err := readyzURL(addr); err == nil {
			t.Errorf("readyzURL(%q) accepted", addr)
		}
	}
	t.Setenv("SLUICE_TELEMETRY_ADDR", "")
	if err := run(t.Context(), []string{"probe"}, &out, &out); err == nil || !strings.Contains(err.Error(), "--url") {
		t.Errorf("probe with the telemetry server disabled: %v", err)
	}
}

func TestProbeHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"probe", "--help"}, &out, &errOut); err != nil || errOut.Len() != 0 {
		t.Fatalf("probe --help: %v, stderr %q", err, errOut.String())
	}
	for _, s := range []string{"--url", "--timeout", "SLUICE_TELEMETRY_ADDR", "/readyz"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("probe --help does not mention %s:\n%s", s, out.String())
		}
	}
}
