package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// makeTenants creates the config and status topics of tenants, as sluice
// tenant create does.
func makeTenants(t *testing.T, cl *kgo.Client, tenants ...string) {
	t.Helper()
	for _, tn := range tenants {
		if _, err := kafka.CreateTopics(testCtx(t), kadm.NewClient(cl), 1, -1, kafka.CompactedConfigs(), kafka.TenantStateTopics(testTopics, tn)...); err != nil {
			t.Fatal(err)
		}
		// The client's metadata may say the topics are missing for a while.
		for _, topic := range kafka.TenantStateTopics(testTopics, tn) {
			testwait.For(t, 10*time.Second, "topic "+topic+" to be seen", func() (bool, string) {
				ok, err := topicExists(testCtx(t), cl, topic)
				return ok, fmt.Sprintf("exists %v, %v", ok, err)
			})
		}
	}
}

const testConfigTopic = "logs.config"

var testTopics = kafka.Topics{Prefix: "logs"}

// newConfigCluster starts a one-broker kfake cluster and returns client
// options for it and a client, both cleaned up at the end of the test.
func newConfigCluster(t *testing.T) ([]kgo.Opt, *kgo.Client) {
	t.Helper()
	c := kafkatest.Cluster(t)
	// Topics are made and used at once: metadata must not be cached long.
	return []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, kafkatest.Client(t, c, kgo.MetadataMinAge(50*time.Millisecond))
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

func TestEnsureCompactedTopic(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(cl)
	topic := testTopics.Status()
	for i := range 2 { // idempotent
		if err := EnsureCompactedTopic(ctx, adm, topic); err != nil {
			t.Fatalf("ensure #%d: %v", i+1, err)
		}
	}
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(details[topic].Partitions); n != 1 {
		t.Errorf("partitions = %d, want 1", n)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(topic, nil)
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
	const other = "other.status"
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, other); err != nil {
		t.Fatal(err)
	}
	if err := EnsureCompactedTopic(ctx, adm, other); !errors.Is(err, ErrConfigTopicNotCompacted) {
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
	if len(snap.Pipelines) != 0 {
		t.Errorf("missing topic: %+v, want empty", snap)
	}
	st, err := ReadStatus(ctx, cl, testTopics.Status(), "")
	if err != nil {
		t.Fatalf("read missing status topic: %v", err)
	}
	if len(st.Tenants()) != 0 {
		t.Errorf("missing status topic: %+v", st)
	}
	if _, err := ReadPipeline(ctx, cl, testTopics, "none"); !errors.Is(err, ErrNoConfigTopic) {
		t.Errorf("read pipeline without a config topic: %v, want ErrNoConfigTopic", err)
	}
	makeTenants(t, cl, "acme")
	if sp, err := ReadPipeline(ctx, cl, testTopics, "acme"); err != nil || sp != nil {
		t.Errorf("read empty config topic: %+v, %v", sp, err)
	}
}

func TestApplyReadDelete(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	if _, err := ApplyPipeline(ctx, cl, testTopics, testPipeline("none", 1)); !errors.Is(err, ErrNoConfigTopic) ||
		!strings.Contains(err.Error(), "sluice tenant create none") {
		t.Errorf("apply without a config topic: %v, want ErrNoConfigTopic naming the command", err)
	}
	makeTenants(t, cl, "acme", "beta")

	for _, doc := range [][]byte{testPipeline("acme", 1), testPipeline("beta", 7), testPipeline("acme", 2)} {
		p, err := ApplyPipeline(ctx, cl, testTopics, doc)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if p.Tenant == "" || p.Version == 0 {
			t.Errorf("apply returned %+v", p)
		}
	}
	for tenant, want := range map[string]int64{"acme": 2, "beta": 7} {
		sp, err := ReadPipeline(ctx, cl, testTopics, tenant)
		if err != nil || sp == nil || sp.Err != nil || sp.Version != want || string(sp.Source) != string(testPipeline(tenant, want)) ||
			sp.Topic != "logs.config."+tenant {
			t.Errorf("%s: got %+v %v, want version %d with its source", tenant, sp, err, want)
		}
	}

	// The version must increase.
	for _, v := range []int64{2, 1} {
		_, err := ApplyPipeline(ctx, cl, testTopics, testPipeline("acme", v))
		if !errors.Is(err, ErrVersionNotIncreasing) {
			t.Errorf("re-apply version %d: %v, want ErrVersionNotIncreasing", v, err)
		}
	}

	if err := DeletePipeline(ctx, cl, testTopics, "acme"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := DeletePipeline(ctx, cl, testTopics, "acme"); !errors.Is(err, ErrNoPipeline) {
		t.Errorf("delete again: %v, want ErrNoPipeline", err)
	}
	if sp, err := ReadPipeline(ctx, cl, testTopics, "acme"); err != nil || sp != nil {
		t.Errorf("acme after delete: %+v %v", sp, err)
	}
	// The deletion is an empty value, which compaction keeps.
	var last *kgo.Record
	if err := readToEnd(ctx, cl, "logs.config.acme", func(r *kgo.Record) { last = r }); err != nil {
		t.Fatal(err)
	}
	if last == nil || last.Value == nil || len(last.Value) != 0 || string(last.Key) != PipelineKey {
		t.Errorf("deletion record %+v, want an empty, non-nil value under %q", last, PipelineKey)
	}
	// After a deletion any version may be applied again.
	if _, err := ApplyPipeline(ctx, cl, testTopics, testPipeline("acme", 1)); err != nil {
		t.Errorf("apply after delete: %v", err)
	}
}

func TestApplyInvalidWritesNothing(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	makeTenants(t, cl, "acme")
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
			_, err := ApplyPipeline(ctx, cl, testTopics, []byte(tt.doc))
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
			if sp, err := ReadPipeline(ctx, cl, testTopics, "acme"); err != nil || sp != nil {
				t.Errorf("something was written: %+v %v", sp, err)
			}
		})
	}
}

func TestReadReportsBrokenDocuments(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	makeTenants(t, cl, "acme", "beta", "delta")
	produce := func(topic, key string, value []byte) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("logs.config.acme", PipelineKey, []byte("not: [a pipeline"))
	produce("logs.config.acme", "other", testPipeline("acme", 5))      // not the pipeline key: ignored
	produce("logs.config.beta", PipelineKey, testPipeline("gamma", 4)) // names another tenant
	produce("logs.config.delta", PipelineKey, []byte("tenant: delta\nversion: 9\nsteps:\n  - retired-step: {}\n"))
	for tenant, version := range map[string]int64{"acme": 0, "beta": 4, "delta": 9} {
		sp, err := ReadPipeline(ctx, cl, testTopics, tenant)
		if err != nil || sp == nil || sp.Err == nil || !errors.Is(sp.Err, ErrInvalidSpec) || sp.Version != version {
			t.Errorf("%s: got %+v %v, want a stored document with an ErrInvalidSpec error and version %d", tenant, sp, err, version)
		}
	}
	if sp, _ := ReadPipeline(ctx, cl, testTopics, "beta"); sp == nil || !strings.Contains(fmt.Sprint(sp.Err), `names tenant "gamma"`) {
		t.Errorf("beta: %+v, want an error naming the other tenant", sp)
	}
	// The version check holds against the leniently read version.
	if _, err := ApplyPipeline(ctx, cl, testTopics, testPipeline("delta", 9)); !errors.Is(err, ErrVersionNotIncreasing) {
		t.Errorf("apply over a broken version 9: %v, want ErrVersionNotIncreasing", err)
	}
	if _, err := ApplyPipeline(ctx, cl, testTopics, testPipeline("acme", 1)); err != nil {
		t.Errorf("apply over a broken document without version: %v", err)
	}

	// The legacy topic, key = tenant.
	if err := EnsureCompactedTopic(ctx, kadm.NewClient(cl), testConfigTopic); err != nil {
		t.Fatal(err)
	}
	produce(testConfigTopic, "acme", []byte("not: [a pipeline"))
	produce(testConfigTopic, "beta", testPipeline("gamma", 4))
	produce(testConfigTopic, "omega", testPipeline("omega", 3))
	produce(testConfigTopic, "status/acme/r1", []byte("{garbage"))
	produce(testConfigTopic, "", []byte("no key"))
	snap, err := ReadConfig(ctx, cl, testConfigTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Pipelines) != 3 || snap.Pipelines["acme"].Err == nil || snap.Pipelines["beta"].Err == nil ||
		snap.Pipelines["omega"].Err != nil || snap.Pipelines["omega"].Version != 3 {
		t.Errorf("legacy pipelines %+v", snap.Pipelines)
	}
}

func TestReadStatus(t *testing.T) {
	_, cl := newConfigCluster(t)
	ctx := testCtx(t)
	if err := EnsureCompactedTopic(ctx, kadm.NewClient(cl), testTopics.Status()); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	produce := func(key string, v any) {
		t.Helper()
		var value []byte
		switch v := v.(type) {
		case []byte:
			value = v
		case nil:
		default:
			value, _ = json.Marshal(v)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: testTopics.Status(), Key: []byte(key), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(StatusKey("acme", "r2"), RouterStatus{Router: "r2", Tenant: "acme", Stored: 2, Applied: 1, Error: "boom", Since: since})
	produce(StatusKey("acme", "r1"), RouterStatus{Router: "r1", Tenant: "acme", Stored: 1, Applied: 1, Since: since})
	produce(StatusKey("acme", "r1"), RouterStatus{Router: "r1", Tenant: "acme", Stored: 2, Applied: 2, Since: since.Add(time.Minute)})
	produce(StatusKey("beta", "r1"), RouterStatus{Router: "ignored", Tenant: "ignored", Paused: "output topic missing", PausedUntil: since})
	produce(StatusKey("beta", "r3"), []byte("{garbage"))
	produce(StatusKey("gone", "r1"), RouterStatus{Router: "r1"})
	produce(StatusKey("gone", "r1"), nil)
	produce(GoodKeyPrefix+"acme", GoodPipeline{Tenant: "acme", Version: 2, Source: string(testPipeline("acme", 2))})
	produce(GoodKeyPrefix+"beta", GoodPipeline{Tenant: "other", Version: 2}) // names another tenant
	produce(RetiredKeyPrefix+"acme", Retired{Tenant: "acme", Versions: []RetiredVersion{{Version: 3, Reason: "panicked"}}})

	snap, err := ReadStatus(ctx, cl, testTopics.Status(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []RouterStatus{
		{Router: "r1", Tenant: "acme", Stored: 2, Applied: 2, Since: since.Add(time.Minute)},
		{Router: "r2", Tenant: "acme", Stored: 2, Applied: 1, Error: "boom", Since: since},
	}
	if got := snap.Statuses["acme"]; !slices.Equal(got, want) {
		t.Errorf("acme statuses\n got %+v\nwant %+v", got, want)
	}
	beta := snap.Statuses["beta"]
	if len(beta) != 2 || beta[0].Router != "r1" || beta[0].Tenant != "beta" || beta[0].Paused == "" ||
		!strings.Contains(beta[1].Error, "undecodable") {
		t.Errorf("beta statuses %+v", beta)
	}
	if got := strings.Join(snap.Tenants(), ","); got != "acme,beta" {
		t.Errorf("tenants = %s", got)
	}
	if g := snap.Good["acme"]; g == nil || g.Version != 2 || len(snap.Good) != 1 {
		t.Errorf("good %+v", snap.Good)
	}
	if r := snap.Retired["acme"]; r == nil || len(r.Versions) != 1 || r.Versions[0].Version != 3 {
		t.Errorf("retired %+v", snap.Retired)
	}
	only, err := ReadStatus(ctx, cl, testTopics.Status(), "beta")
	if err != nil || len(only.Tenants()) != 1 || len(only.Good)+len(only.Retired) != 0 {
		t.Errorf("beta's status only: %+v %v", only, err)
	}
}

// follower runs FollowConfig in the background and records what it sees.
type follower struct {
	mu       sync.Mutex
	events   []string
	caughtUp int
	// nAtCaughtUp is len(events) when onCaughtUp was called.
	nAtCaughtUp int
	done        chan error
}

// eventString describes an event briefly.
func eventString(ev ConfigEvent) string {
	switch ev.Source {
	case SourceTenant, SourceLegacy:
		what := "own"
		if ev.Source == SourceLegacy {
			what = "legacy"
		}
		if len(ev.Src) == 0 {
			return what + " " + ev.Tenant + " deleted"
		}
		return fmt.Sprintf("%s %s %q", what, ev.Tenant, ev.Src)
	case SourceGood:
		if ev.Good == nil {
			return "good " + ev.Tenant + " none"
		}
		return fmt.Sprintf("good %s %d", ev.Tenant, ev.Good.Version)
	case SourceRetired:
		if ev.Retired == nil {
			return "retired " + ev.Tenant + " none"
		}
		return fmt.Sprintf("retired %s %d", ev.Tenant, len(ev.Retired.Versions))
	}
	return "?"
}

func startFollower(t *testing.T, opts []kgo.Opt) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	f := &follower{done: make(chan error, 1)}
	go func() {
		f.done <- FollowConfig(ctx, append(opts, kgo.MetadataMaxAge(200*time.Millisecond), kgo.MetadataMinAge(50*time.Millisecond)),
			testTopics, func(ev ConfigEvent) {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.events = append(f.events, eventString(ev))
			}, func() {
				f.mu.Lock()
				defer f.mu.Unlock()
				f.caughtUp++
				f.nAtCaughtUp = len(f.events)
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

// waitFor waits until cond, called with f locked, holds.
func (f *follower) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testwait.For(t, 15*time.Second, what, func() (bool, string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return cond(), fmt.Sprintf("events %q, caught up %d", f.events, f.caughtUp)
	})
}

func TestFollowConfig(t *testing.T) {
	opts, cl := newConfigCluster(t)
	ctx := testCtx(t)
	makeTenants(t, cl, "acme", "beta")
	for _, topic := range []string{testTopics.Status(), testConfigTopic} {
		if err := EnsureCompactedTopic(ctx, kadm.NewClient(cl), topic); err != nil {
			t.Fatal(err)
		}
	}
	produce := func(topic, key string, value []byte) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Initial state: two versions of acme, beta, garbage, keys that are
	// not followed, the legacy topic and the status topic.
	for _, doc := range [][]byte{testPipeline("acme", 1), testPipeline("acme", 2), testPipeline("beta", 1)} {
		if _, err := ApplyPipeline(ctx, cl, testTopics, doc); err != nil {
			t.Fatal(err)
		}
	}
	produce("logs.config.beta", "other-key", []byte("ignored"))
	produce("logs.status.acme", StatusKey("acme", "r1"), []byte("{}"))
	produce(testConfigTopic, "gamma", []byte("\x00garbage"))
	produce(testConfigTopic, "status/gamma/r1", []byte("{}"))
	produce(testTopics.Status(), StatusKey("acme", "r1"), []byte("{}"))
	g, _ := json.Marshal(GoodPipeline{Tenant: "acme", Version: 2, Source: string(testPipeline("acme", 2))})
	produce(testTopics.Status(), GoodKeyPrefix+"acme", g)
	rv, _ := json.Marshal(Retired{Tenant: "beta", Versions: []RetiredVersion{{Version: 1}}})
	produce(testTopics.Status(), RetiredKeyPrefix+"beta", rv)

	f := startFollower(t, opts)
	f.waitFor(t, "caught up", func() bool { return f.caughtUp == 1 })
	f.mu.Lock()
	initial := slices.Clone(f.events[:f.nAtCaughtUp])
	f.mu.Unlock()
	slices.Sort(initial) // order is per topic only
	want := []string{
		"good acme 2",
		"legacy gamma \"\\x00garbage\"",
		fmt.Sprintf("own acme %q", testPipeline("acme", 1)),
		fmt.Sprintf("own acme %q", testPipeline("acme", 2)),
		fmt.Sprintf("own beta %q", testPipeline("beta", 1)),
		"retired beta 1",
	}
	if !slices.Equal(initial, want) {
		t.Errorf("initial events\n got %q\nwant %q", initial, want)
	}

	// Live changes, a deletion, and a tenant made later.
	if _, err := ApplyPipeline(ctx, cl, testTopics, testPipeline("beta", 2)); err != nil {
		t.Fatal(err)
	}
	if err := DeletePipeline(ctx, cl, testTopics, "acme"); err != nil {
		t.Fatal(err)
	}
	makeTenants(t, cl, "late")
	if _, err := ApplyPipeline(ctx, cl, testTopics, testPipeline("late", 1)); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "live changes", func() bool { return len(f.events) == len(want)+3 })
	f.mu.Lock()
	live := slices.Clone(f.events[len(want):])
	caughtUp := f.caughtUp
	f.mu.Unlock()
	slices.Sort(live)
	wantLive := []string{"own acme deleted", fmt.Sprintf("own beta %q", testPipeline("beta", 2)), fmt.Sprintf("own late %q", testPipeline("late", 1))}
	if !slices.Equal(live, wantLive) {
		t.Errorf("live events\n got %q\nwant %q", live, wantLive)
	}
	if caughtUp != 1 {
		t.Errorf("onCaughtUp called %d times, want 1", caughtUp)
	}
}

func TestFollowConfigNoTopics(t *testing.T) {
	opts, cl := newConfigCluster(t)
	f := startFollower(t, opts)
	f.waitFor(t, "caught up without any topic", func() bool { return f.caughtUp == 1 })
	makeTenants(t, cl, "acme")
	if _, err := ApplyPipeline(testCtx(t), cl, testTopics, testPipeline("acme", 1)); err != nil {
		t.Fatal(err)
	}
	f.waitFor(t, "a pipeline after the topic was made", func() bool { return len(f.events) == 1 })
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
