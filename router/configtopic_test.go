package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const testConfigTopic = "logs.config"

// newConfigCluster starts a one-broker kfake cluster and returns client
// options for it and a client, both cleaned up at the end of the test.
func newConfigCluster(t *testing.T) ([]kgo.Opt, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	return opts, cl
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testPipeline is a valid pipeline document with one step and one test.
func testPipeline(tenant string, version int64) []byte {
	return fmt.Appendf(nil, `tenant: %s
version: %d
steps:
  - set:
      field: env
      value: prod
tests:
  - name: sets env
    line: hello
    expect:
      attributes:
        env: prod
`, tenant, version)
}

func TestEnsureConfigTopic(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(cl)
	for i := range 2 { // idempotent
		if err := EnsureConfigTopic(ctx, adm, testConfigTopic); err != nil {
			t.Fatalf("ensure #%d: %v", i+1, err)
		}
	}
	details, err := adm.ListTopics(ctx, testConfigTopic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details[testConfigTopic].Partitions); n != 1 {
		t.Errorf("partitions = %d, want 1", n)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, testConfigTopic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(testConfigTopic, nil)
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}

	// A topic of the same name with the delete policy is reported.
	const other = "other.config"
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, other); err != nil {
		t.Fatal(err)
	}
	if err := EnsureConfigTopic(ctx, adm, other); !errors.Is(err, ErrConfigTopicNotCompacted) {
		t.Errorf("ensure on a delete-policy topic: %v, want ErrConfigTopicNotCompacted", err)
	}
}

func TestReadConfigMissingAndEmptyTopic(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	snap, err := ReadConfig(ctx, cl, testConfigTopic)
	if err != nil {
		t.Fatalf("read missing topic: %v", err)
	}
	if len(snap.Pipelines) != 0 || len(snap.Statuses) != 0 {
		t.Errorf("missing topic: %+v, want empty", snap)
	}
	if err := EnsureConfigTopic(ctx, kadm.NewClient(cl), testConfigTopic); err != nil {
		t.Fatal(err)
	}
	snap, err = ReadConfig(ctx, cl, testConfigTopic)
	if err != nil {
		t.Fatalf("read empty topic: %v", err)
	}
	if len(snap.Tenants()) != 0 {
		t.Errorf("empty topic: tenants %v", snap.Tenants())
	}
}

func TestApplyReadDelete(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	if err := EnsureConfigTopic(ctx, kadm.NewClient(cl), testConfigTopic); err != nil {
		t.Fatal(err)
	}

	for _, doc := range [][]byte{testPipeline("acme", 1), testPipeline("beta", 7), testPipeline("acme", 2)} {
		p, err := ApplyPipeline(ctx, cl, testConfigTopic, doc)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if p.Tenant == "" || p.Version == 0 {
			t.Errorf("apply returned %+v", p)
		}
	}

	snap, err := ReadConfig(ctx, cl, testConfigTopic)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(snap.Tenants(), ","); got != "acme,beta" {
		t.Errorf("tenants = %s, want acme,beta", got)
	}
	for tenant, want := range map[string]int64{"acme": 2, "beta": 7} {
		sp := snap.Pipelines[tenant]
		if sp == nil || sp.Err != nil || sp.Version != want || string(sp.Source) != string(testPipeline(tenant, want)) {
			t.Errorf("%s: got %+v, want version %d with its source", tenant, sp, want)
		}
	}

	// The version must increase.
	for _, v := range []int64{2, 1} {
		_, err := ApplyPipeline(ctx, cl, testConfigTopic, testPipeline("acme", v))
		if !errors.Is(err, ErrVersionNotIncreasing) {
			t.Errorf("re-apply version %d: %v, want ErrVersionNotIncreasing", v, err)
		}
	}

	if err := DeletePipeline(ctx, cl, testConfigTopic, "acme"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := DeletePipeline(ctx, cl, testConfigTopic, "acme"); !errors.Is(err, ErrNoPipeline) {
		t.Errorf("delete again: %v, want ErrNoPipeline", err)
	}
	snap, err = ReadConfig(ctx, cl, testConfigTopic)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := snap.Pipelines["acme"]; ok {
		t.Errorf("acme still stored after delete")
	}
	// After a deletion any version may be applied again.
	if _, err := ApplyPipeline(ctx, cl, testConfigTopic, testPipeline("acme", 1)); err != nil {
		t.Errorf("apply after delete: %v", err)
	}
}

func TestApplyInvalidWritesNothing(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	if err := EnsureConfigTopic(ctx, kadm.NewClient(cl), testConfigTopic); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, doc string
		line      int
	}{
		{"unknown step", "tenant: acme\nversion: 1\nsteps:\n  - frobnicate: {}\n", 4},
		{"failing test", "tenant: acme\nversion: 1\nsteps:\n  - set: {field: env, value: prod}\ntests:\n  - name: wrong\n    line: x\n    expect:\n      attributes: {env: dev}\n", 6},
		{"bad tenant", "tenant: Not_A_Tenant\nversion: 1\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ApplyPipeline(ctx, cl, testConfigTopic, []byte(tt.doc))
			if err == nil {
				t.Fatal("apply succeeded")
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %v has no SpecError", err)
			}
			if se.Line != tt.line {
				t.Errorf("line = %d, want %d (%v)", se.Line, tt.line, err)
			}
			snap, err := ReadConfig(ctx, cl, testConfigTopic)
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Pipelines) != 0 {
				t.Errorf("something was written: %v", snap.Tenants())
			}
		})
	}
}

func TestReadConfigReportsBrokenDocuments(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	if err := EnsureConfigTopic(ctx, kadm.NewClient(cl), testConfigTopic); err != nil {
		t.Fatal(err)
	}
	produce := func(key string, value []byte) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: testConfigTopic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("acme", []byte("not: [a pipeline"))
	produce("beta", testPipeline("gamma", 4)) // stored under the wrong key
	produce("delta", []byte("tenant: delta\nversion: 9\nsteps:\n  - retired-step: {}\n"))
	produce("status/acme/r1", []byte("{garbage"))
	produce("", []byte("no key"))

	snap, err := ReadConfig(ctx, cl, testConfigTopic)
	if err != nil {
		t.Fatal(err)
	}
	for tenant, version := range map[string]int64{"acme": 0, "beta": 4, "delta": 9} {
		sp := snap.Pipelines[tenant]
		if sp == nil || sp.Err == nil || !errors.Is(sp.Err, ErrInvalidSpec) || sp.Version != version {
			t.Errorf("%s: got %+v, want a stored document with an ErrInvalidSpec error and version %d", tenant, sp, version)
		}
	}
	// The version check holds against the leniently read version.
	if _, err := ApplyPipeline(ctx, cl, testConfigTopic, testPipeline("delta", 9)); !errors.Is(err, ErrVersionNotIncreasing) {
		t.Errorf("apply over a broken version 9: %v, want ErrVersionNotIncreasing", err)
	}
	if _, err := ApplyPipeline(ctx, cl, testConfigTopic, testPipeline("acme", 1)); err != nil {
		t.Errorf("apply over a broken document without version: %v", err)
	}
	st := snap.Statuses["acme"]
	if len(st) != 1 || st[0].Router != "r1" || !strings.Contains(st[0].Error, "undecodable") {
		t.Errorf("garbage status: %+v", st)
	}
	if len(snap.Pipelines) != 3 {
		t.Errorf("pipelines %v, want acme, beta and delta only", snap.Tenants())
	}
}

func TestPublishStatus(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	if err := EnsureConfigTopic(ctx, kadm.NewClient(cl), testConfigTopic); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, st := range []RouterStatus{
		{Router: "r2", Tenant: "acme", Stored: 2, Applied: 1, Error: "version 2: line 4: boom", Since: since},
		{Router: "r1", Tenant: "acme", Stored: 1, Applied: 1, Since: since},
		{Router: "r1", Tenant: "acme", Stored: 2, Applied: 2, Since: since.Add(time.Minute)}, // replaces the one before
		{Router: "r1", Tenant: "beta", Since: since},
	} {
		if err := PublishStatus(ctx, cl, testConfigTopic, st); err != nil {
			t.Fatalf("publish %+v: %v", st, err)
		}
	}
	for _, bad := range []RouterStatus{{Router: "r1", Tenant: "a/b"}, {Router: "", Tenant: "acme"}, {Router: "x/y", Tenant: "acme"}} {
		if err := PublishStatus(ctx, cl, testConfigTopic, bad); err == nil {
			t.Errorf("publish %+v succeeded", bad)
		}
	}
	if _, err := ApplyPipeline(ctx, cl, testConfigTopic, testPipeline("acme", 2)); err != nil {
		t.Fatal(err)
	}

	snap, err := ReadConfig(ctx, cl, testConfigTopic)
	if err != nil {
		t.Fatal(err)
	}
	want := []RouterStatus{
		{Router: "r1", Tenant: "acme", Stored: 2, Applied: 2, Since: since.Add(time.Minute)},
		{Router: "r2", Tenant: "acme", Stored: 2, Applied: 1, Error: "version 2: line 4: boom", Since: since},
	}
	got := snap.Statuses["acme"]
	if len(got) != len(want) {
		t.Fatalf("acme statuses %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("acme status %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(snap.Statuses["beta"]) != 1 {
		t.Errorf("beta statuses %+v", snap.Statuses["beta"])
	}
	if got := strings.Join(snap.Tenants(), ","); got != "acme,beta" {
		t.Errorf("tenants = %s", got)
	}
	if _, ok := snap.Pipelines["beta"]; ok {
		t.Errorf("a status made a pipeline")
	}
}

// change is one onChange call of FollowConfig.
type change struct {
	tenant string
	src    string
	del    bool
}

// follower runs FollowConfig in the background and records what it sees.
type follower struct {
	mu       sync.Mutex
	changes  []change
	caughtUp int
	// nAtCaughtUp is len(changes) when onCaughtUp was called.
	nAtCaughtUp int
	done        chan error
}

func startFollower(t *testing.T, opts []kgo.Opt) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	f := &follower{done: make(chan error, 1)}
	go func() {
		f.done <- FollowConfig(ctx, opts, testConfigTopic, func(tenant string, src []byte) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changes = append(f.changes, change{tenant: tenant, src: string(src), del: src == nil})
		}, func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.caughtUp++
			f.nAtCaughtUp = len(f.changes)
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-f.done:
			if err != nil {
				t.Errorf("FollowConfig: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("FollowConfig did not return after cancel")
		}
	})
	return f
}

// waitFor polls cond until it holds or the test times out.
func (f *follower) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		f.mu.Lock()
		ok := cond()
		f.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			f.mu.Lock()
			defer f.mu.Unlock()
			t.Fatalf("timed out waiting for %s; changes %+v, caught up %d", what, f.changes, f.caughtUp)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFollowConfig(t *testing.T) {
	opts, cl := newConfigCluster(t)
	ctx := testCtx(t)
	if err := EnsureConfigTopic(ctx, kadm.NewClient(cl), testConfigTopic); err != nil {
		t.Fatal(err)
	}
	// Initial state: two versions of acme, a status, beta, and garbage.
	for _, doc := range [][]byte{testPipeline("acme", 1), testPipeline("acme", 2), testPipeline("beta", 1)} {
		if _, err := ApplyPipeline(ctx, cl, testConfigTopic, doc); err != nil {
			t.Fatal(err)
		}
	}
	if err := PublishStatus(ctx, cl, testConfigTopic, RouterStatus{Router: "r1", Tenant: "acme", Applied: 2}); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: testConfigTopic, Key: []byte("gamma"), Value: []byte("\x00garbage")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	f := startFollower(t, opts)
	f.waitFor(t, "caught up", func() bool { return f.caughtUp == 1 })
	f.mu.Lock()
	initial := append([]change(nil), f.changes[:f.nAtCaughtUp]...)
	f.mu.Unlock()
	want := []change{
		{tenant: "acme", src: string(testPipeline("acme", 1))},
		{tenant: "acme", src: string(testPipeline("acme", 2))},
		{tenant: "beta", src: string(testPipeline("beta", 1))},
		{tenant: "gamma", src: "\x00garbage"},
	}
	if fmt.Sprint(initial) != fmt.Sprint(want) {
		t.Errorf("initial changes\n got %+v\nwant %+v", initial, want)
	}

	// Live changes, then a deletion.
	if _, err := ApplyPipeline(ctx, cl, testConfigTopic, testPipeline("beta", 2)); err != nil {
		t.Fatal(err)
	}
	if err := DeletePipeline(ctx, cl, testConfigTopic, "acme"); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "live changes", func() bool { return len(f.changes) == len(want)+2 })
	f.mu.Lock()
	live := append([]change(nil), f.changes[len(want):]...)
	caughtUp := f.caughtUp
	f.mu.Unlock()
	wantLive := []change{
		{tenant: "beta", src: string(testPipeline("beta", 2))},
		{tenant: "acme", del: true},
	}
	if fmt.Sprint(live) != fmt.Sprint(wantLive) {
		t.Errorf("live changes\n got %+v\nwant %+v", live, wantLive)
	}
	if caughtUp != 1 {
		t.Errorf("onCaughtUp called %d times, want 1", caughtUp)
	}
}

func TestFollowConfigMissingTopic(t *testing.T) {
	opts, cl := newConfigCluster(t)
	ctx := testCtx(t)
	f := startFollower(t, opts)
	f.waitFor(t, "caught up on a missing topic", func() bool { return f.caughtUp == 1 })

	// The topic created afterwards is picked up.
	if err := EnsureConfigTopic(ctx, kadm.NewClient(cl), testConfigTopic); err != nil {
		t.Fatal(err)
	}
	if _, err := ApplyPipeline(ctx, cl, testConfigTopic, testPipeline("acme", 1)); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "a change after creation", func() bool { return len(f.changes) == 1 })
}

// FuzzStoredVersion checks that any stored value, garbage included, is
// reported without a panic, and that a value that parses has its version.
func FuzzStoredVersion(f *testing.F) {
	f.Add([]byte("not: [a pipeline"))
	f.Add([]byte("version: 9\nsteps: 3\n"))
	f.Add(testPipeline("acme", 3))
	f.Add([]byte("a: &a [*a, *a]\nversion: 1\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		v, err := storedVersion("acme", src)
		if err == nil {
			spec, perr := Parse(src)
			if perr != nil || spec.Version != v {
				t.Fatalf("storedVersion = %d, nil but Parse = %v, %v", v, spec, perr)
			}
		}
	})
}
