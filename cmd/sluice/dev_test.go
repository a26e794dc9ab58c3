//go:build !nodev

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// TestDevCommand runs `sluice dev` as a user does (its wiring is tested in
// package devstack): the flags choose the addresses and the directory, the
// banner says where everything is, and the other commands work against it:
// a line dropped into the node tree is found by sluice search and shown by
// sluice tail.
func TestDevCommand(t *testing.T) {
	for _, k := range []string{"SLUICE_KAFKA_BROKERS", "SLUICE_ELASTICSEARCH_URLS"} { // the embedded servers
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("SLUICE_TELEMETRY_ADDR", "127.0.0.1:0")
	t.Setenv("SLUICE_LOG_LEVEL", "warn")
	t.Setenv("GOGC", "100") // else the command raises this process's GC percent
	dir := filepath.Join(t.TempDir(), "dev")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, logs := newSyncBuffer(), newSyncBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--no-demo", "--dir", dir, "--kafka-addr", "127.0.0.1:0", "--es-addr", "127.0.0.1:0"}, out, logs)
	}()
	ended := false
	defer func() {
		cancel()
		if ended {
			return
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("dev did not stop")
		}
		if t.Failed() {
			t.Logf("output:\n%s\nlogs:\n%s", out.String(), logs.String())
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if !out.waitFor(wctx, "Ctrl-C stops everything.") {
		select {
		case err := <-done:
			ended = true
			t.Fatalf("dev ended: %v\n%s", err, logs.String())
		default:
			t.Fatal("no banner within 60s")
		}
	}
	banner := out.String()
	field := func(name string) string {
		m := regexp.MustCompile(`(?m)^  ` + name + ` +(\S+)`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("the banner has no %s:\n%s", name, banner)
		}
		return m[1]
	}
	brokers, esURL := field("Kafka"), field("Elasticsearch")
	if strings.HasSuffix(brokers, ":9092") || strings.HasSuffix(esURL, ":9200") || field("Data") != dir ||
		field("Node log tree") != filepath.Join(dir, "node") || strings.Contains(banner, "Demo tenants") {
		t.Fatalf("the flags were not applied:\n%s", banner)
	}
	t.Setenv("SLUICE_KAFKA_BROKERS", brokers)
	t.Setenv("SLUICE_ELASTICSEARCH_URLS", esURL)

	c, err := (&nodelog.Node{Root: filepath.Join(dir, "node")}).AddContainer("alpha", "api-1", "app", nodelog.CRI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if err := c.Write(time.Now(), "stdout", fmt.Sprintf("hello from alpha %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 90*time.Second, "sluice search to find alpha's lines", func() (bool, string) {
		var b, e bytes.Buffer
		err := run(ctx, []string{"search", "--tenant", "alpha", "--json", "hello"}, &b, &e)
		return err == nil && strings.Count(b.String(), "hello from alpha") == 3, fmt.Sprintf("%v %s %s", err, b.String(), e.String())
	})
	var tail bytes.Buffer
	tctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()
	if err := run(tctx, []string{"tail", "--tenant", "alpha", "--from-beginning", "-n", "3"}, &tail, io.Discard); err != nil {
		t.Fatalf("tail: %v\n%s", err, tail.String())
	}
	if !strings.Contains(tail.String(), "hello from alpha 2") {
		t.Errorf("tail: %q", tail.String())
	}
}

// TestDevHelp: the dev stack's settings are in its help, with the
// loopback default of its telemetry address.
func TestDevHelp(t *testing.T) {
	help, _, _ := sluice(t, t.Context(), "dev", "--help")
	if !regexp.MustCompile(`\nSLUICE_TELEMETRY_ADDR +string +127\.0\.0\.1:9464 `).MatchString(help) {
		t.Errorf("dev --help:\n%s", help)
	}
	for _, s := range []string{"SLUICE_DEV_DIR", "SLUICE_DEV_ES_FAULT_STATUS", "--no-demo", "--kafka-addr"} {
		if !strings.Contains(help, s) {
			t.Errorf("dev --help does not mention %s", s)
		}
	}
}
