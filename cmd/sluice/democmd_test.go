//go:build !nodev

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sethvargo/go-envconfig"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelogs/sluice/internal/config"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/telemetry"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/router"
)

// noAuthorizer makes c answer ACL requests as a Kafka without an
// authorizer does: SECURITY_DISABLED for every creation and deletion.
func noAuthorizer(c *kfake.Cluster) *kfake.FaultHandle {
	return c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.CreateACLs, kmsg.DeleteACLs}, Err: kerr.SecurityDisabled, Count: -1})
}

// TestDemoCommand: `sluice demo` started before Kafka retries its setup
// until Kafka answers, on a cluster without an authorizer; then the demo
// tenants' topics, their pipelines in the config topic and the dataset
// topics exist, and container logs appear under --root behind
// relative symlinks that resolve.
func TestDemoCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	t.Setenv("SLUICE_KAFKA_BROKERS", fmt.Sprintf("127.0.0.1:%d", port))
	t.Setenv("SLUICE_TELEMETRY_ADDR", "127.0.0.1:0")
	root := t.TempDir()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--root", root, "--rate", "200", "--node", "test-node", "--setup-timeout", "90s"}, &out, &logs)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("demo did not stop")
		}
		if t.Failed() {
			t.Logf("logs:\n%s", logs.String())
		}
	}()

	// Kafka comes up late, as it may under docker compose.
	time.Sleep(1500 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("demo ended without Kafka: %v", err)
	default:
	}
	c := kafkatest.Cluster(t, kafkatest.With(kfake.Ports(port)))
	acls := noAuthorizer(c)
	cl := kafkatest.Client(t, c, kgo.MetadataMinAge(100*time.Millisecond))
	adm := kadm.NewClient(cl)

	want := []string{"logs.status", "logs.tenants", "logs.parsed.payments.audit"}
	for _, tenant := range []string{"payments", "shop", "web"} {
		want = append(want, "logs.raw."+tenant, "logs.parsed."+tenant, "logs.dlq."+tenant, "logs.config."+tenant, "logs.status."+tenant)
	}
	slices.Sort(want)
	var (
		topics   []string
		versions map[string]int
	)
	testwait.For(t, 90*time.Second, "the demo to be set up", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v", err)
		default:
		}
		state := func(problem string) string {
			return fmt.Sprintf("topics %v, pipelines %v; %s", topics, versions, problem)
		}
		qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
		defer qcancel()
		listed, err := adm.ListTopics(qctx)
		topics = listed.Names()
		slices.Sort(topics)
		if err != nil || !slices.Equal(topics, want) {
			return false, state(fmt.Sprintf("list topics: %v", err))
		}
		versions = map[string]int{}
		for _, tenant := range []string{"payments", "shop", "web"} {
			sp, rerr := router.ReadPipeline(qctx, cl, kafka.Topics{Prefix: "logs"}, tenant)
			if rerr != nil {
				err = rerr
			} else if sp != nil {
				versions[tenant] = int(sp.Version)
			}
		}
		if err != nil {
			return false, state(fmt.Sprintf("read config: %v", err))
		}
		if len(versions) != 3 || versions["shop"] != 1 || versions["payments"] != 1 || versions["web"] != 1 {
			return false, state("pipelines missing")
		}
		problem := checkDemoTree(root, 4)
		return problem == "", state(problem)
	})
	if acls.Hits() == 0 {
		t.Error("the demo set no ACL: the cluster without an authorizer was never asked")
	}
	for _, s := range []string{"demo setup failed; retrying", "no authorizer", "demo tenants ready", "node=test-node"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("the demo's logs do not say %q", s)
		}
	}
}

// checkDemoTree reports what is wrong with the node log tree under root:
// want container links in var/log/containers, each relative (so the tree
// works at any mount path), resolving to a non-empty file under
// var/log/pods. "" when all is well.
func checkDemoTree(root string, want int) string {
	links, _ := filepath.Glob(filepath.Join(root, "var", "log", "containers", "*.log"))
	if len(links) != want {
		return fmt.Sprintf("%d container links, want %d", len(links), want)
	}
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil {
			return err.Error()
		}
		resolved := filepath.Join(filepath.Dir(l), target)
		if filepath.IsAbs(target) || !strings.HasPrefix(resolved, filepath.Join(root, "var", "log", "pods")+string(filepath.Separator)) {
			return fmt.Sprintf("link %s -> %s is not relative into var/log/pods", l, target)
		}
		fi, err := os.Stat(l)
		if err != nil {
			return fmt.Sprintf("link %s does not resolve: %v", l, err)
		}
		if fi.Size() == 0 {
			return fmt.Sprintf("%s is empty", target)
		}
	}
	return ""
}

// TestDemoNoSetup: with --no-setup the demo talks to no Kafka and is ready
// at once; a bounded run leaves links to the logs it wrote.
func TestDemoNoSetup(t *testing.T) {
	root := t.TempDir()
	var ready atomic.Bool
	var logs syncBuffer
	log, err := telemetry.NewLogger(&logs, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	cfg := demoConfig{}
	if err := config.LoadFrom(t.Context(), &cfg, envconfig.MapLookuper(map[string]string{"SLUICE_KAFKA_BROKERS": "127.0.0.1:1"})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts := demoOptions{root: filepath.Join(root, "node"), rate: 1000, node: "n1", limit: 200}
	st := stage{log: log, reg: prometheus.NewRegistry(), ready: func(b bool) {
		if b {
			ready.Store(true)
		}
	}}
	if err := runDemoWith(ctx, cfg, opts, st); err != nil {
		t.Fatalf("demo: %v\n%s", err, logs.String())
	}
	if !ready.Load() {
		t.Error("the demo never reported ready")
	}
	if problem := checkDemoTree(filepath.Join(root, "node"), 4); problem != "" {
		t.Error(problem)
	}
	if strings.Contains(logs.String(), "demo setup") {
		t.Errorf("--no-setup set up Kafka:\n%s", logs.String())
	}
}

// TestDemoFlags: --help lists the flags and settings; bad flags are
// refused before anything is written.
func TestDemoFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"demo", "--help"}, &out, &errOut); err != nil || errOut.Len() != 0 {
		t.Fatalf("demo --help: %v, stderr %q", err, errOut.String())
	}
	for _, s := range []string{"-root", "-rate", "-node", "-no-setup", "-setup-timeout", "SLUICE_KAFKA_BROKERS", "SLUICE_TOPIC_PREFIX", "SLUICE_TELEMETRY_ADDR"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("demo --help does not mention %s", s)
		}
	}
	root := t.TempDir()
	for _, args := range [][]string{
		{"--rate", "0"},
		{"--setup-timeout", "0s"},
		{"--root", ""},
		{"extra"},
	} {
		if err := run(t.Context(), append([]string{"demo", "--root", root}, args...), &out, &out); err == nil {
			t.Errorf("demo %v accepted", args)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("refused flags wrote %d entries under --root", len(entries))
	}
}

// TestTenantCreateWithoutAuthorizer: on a Kafka without an authorizer,
// `sluice tenant create` makes the tenant and warns, in one line, that
// its topics are not protected.
func TestTenantCreateWithoutAuthorizer(t *testing.T) {
	c := kafkatest.Cluster(t)
	noAuthorizer(c)
	t.Setenv("SLUICE_KAFKA_BROKERS", strings.Join(c.ListenAddrs(), ","))
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"tenant", "create", "--no-user", "--partitions", "1", "shop"}, &out, &errOut); err != nil {
		t.Fatalf("create: %v\n%s", err, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "tenant shop ready") {
		t.Errorf("create printed:\n%s", out.String())
	}
	warning := strings.TrimSuffix(errOut.String(), "\n")
	if !strings.Contains(warning, "no authorizer") || !strings.Contains(warning, "shop") || strings.Contains(warning, "\n") {
		t.Errorf("create warned %q, want one line about the missing authorizer", errOut.String())
	}
	errOut.Reset()
	if err := run(t.Context(), []string{"tenant", "delete", "--yes", "shop"}, &out, &errOut); err != nil {
		t.Fatalf("delete: %v", err)
	}
}
