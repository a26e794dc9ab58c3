package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/router"
	"github.com/sluicelogs/sluice/schemas"
)

// TestRouterSurvivesKill9 runs the real binary as the router, kills it with
// SIGKILL at random moments while records stream into two tenants' raw
// topics, restarts it each time, and checks that a read_committed consumer
// of the parsed topics sees every input record exactly once.
//
// It runs twice: at the defaults, and with SLUICE_ROUTER_BATCH_MAX_TIME at
// 1ms, where every tenant is left out of nearly every transaction, so that
// the kills also hit rewound, paused partitions, work going on in the
// background and its kept outputs.
func TestRouterSurvivesKill9(t *testing.T) {
	for _, c := range []struct {
		name string
		env  []string
	}{
		{"defaults", nil},
		{"every tenant left out", []string{"SLUICE_ROUTER_BATCH_MAX_TIME=1ms"}},
	} {
		t.Run(c.name, func(t *testing.T) { routerSurvivesKill9(t, c.env) })
	}
}

func routerSurvivesKill9(t *testing.T, extraEnv []string) {
	apptest.Binary(t)
	tenants := []string{"alpha", "beta"}
	var topics []string
	var state []string
	for _, tn := range tenants {
		topics = append(topics, "logs.raw."+tn, "logs.parsed."+tn, "logs.dlq."+tn)
		state = append(state, "logs.config."+tn, "logs.status."+tn)
	}
	cluster := kafkatest.Cluster(t, kafkatest.Topics(3, topics...), kafkatest.Topics(1, state...))
	brokers := cluster.ListenAddrs()
	cl := kafkatest.Client(t, cluster)
	if _, err := router.ApplyPipeline(context.Background(), cl, kafka.Topics{Prefix: "logs"},
		[]byte("tenant: alpha\nversion: 1\nsteps:\n  - json: {field: log}\n  - set: {field: routed, value: yes}\n")); err != nil {
		t.Fatal(err)
	}
	// beta joins continuation lines: joined records must survive the kills
	// whole, and exactly once.
	if _, err := router.ApplyPipeline(context.Background(), cl, kafka.Topics{Prefix: "logs"},
		[]byte("tenant: beta\nversion: 1\nsteps:\n  - multiline: {continuation: '^\\tat ', max_wait: 500ms}\n")); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"SLUICE_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"SLUICE_ROUTER_ID=crash-router",
		"SLUICE_ROUTER_RESCAN_INTERVAL=500ms",
		"SLUICE_TELEMETRY_ADDR=",
		"SLUICE_LOG_LEVEL=warn",
		// A killed router leaves its transaction open. Kafka ends it as
		// soon as the next router with the same transactional id starts;
		// with kfake the next router was measured to wait for it to time
		// out (about 50s of a 70s run at the default 60s), and on a busy
		// machine that wait could outlast the wait for the last records
		// below.
		"SLUICE_ROUTER_TRANSACTION_TIMEOUT=10s",
	}
	env = append(env, extraEnv...)

	// A producer streams numbered records into both raw topics; each of
	// beta's is followed by a continuation line.
	var stop atomic.Bool
	var produced atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; !stop.Load(); n++ {
			tn := tenants[n%2]
			v := fmt.Sprintf(`{"seq":%d,"msg":"record %d"}`, n, n)
			key := fmt.Sprintf("c%d", n%7)
			rs := []*kgo.Record{{Topic: "logs.raw." + tn, Key: []byte(key), Value: []byte(v)}}
			if tn == "beta" {
				rs = append(rs, &kgo.Record{Topic: "logs.raw.beta", Key: []byte(key), Value: []byte(fmt.Sprintf("\tat frame %d", n))})
			}
			if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
				t.Error(err)
				return
			}
			produced.Store(int64(n + 1))
			if n%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	})

	rng := rand.New(rand.NewPCG(3, 9))
	var killedLogs strings.Builder
	for k := range 6 {
		p := apptest.Sluice(t, env, "router")
		time.Sleep(time.Duration(700+rng.IntN(1500)) * time.Millisecond)
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		killedLogs.WriteString(p.Output())
		t.Logf("kill %d", k+1)
	}
	stop.Store(true)
	wg.Wait()
	total := int(produced.Load())

	// The last router, never killed, drains what is left at the defaults:
	// the extra settings are for the routers that are killed. (With every
	// tenant left out of every transaction, a backlog drains one
	// background round at a time; on a machine loaded by the other tests
	// that has outlasted the wait below.)
	final := apptest.Sluice(t, env[:len(env)-len(extraEnv)], "router")
	cons := kafkatest.Client(t, cluster, kgo.ConsumeTopics("logs.parsed.alpha", "logs.parsed.beta", "logs.dlq.alpha", "logs.dlq.beta"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(100*time.Millisecond))
	dec := schemas.NewDecoder()
	seen := make(map[int64]int)
	dlq := 0
	testwait.Eventually(t, 90*time.Second, fmt.Sprintf("all %d records in the parsed topics", total), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if strings.Contains(r.Topic, ".dlq.") {
				dlq++
				return
			}
			rec, _, err := dec.Decode(context.Background(), r.Value)
			if err != nil {
				t.Errorf("decode: %v", err)
				return
			}
			var seq int64
			if r.Topic == "logs.parsed.alpha" {
				seq, _ = rec.Attributes["seq"].(int64)
				if rec.Attributes["routed"] != "yes" {
					t.Errorf("alpha record not processed by its pipeline: %v", rec.Attributes)
				}
			} else if _, err := fmt.Sscanf(rec.Log, `{"seq":%d`, &seq); err != nil {
				t.Errorf("beta record %q: %v", rec.Log, err)
			} else if want := fmt.Sprintf(`{"seq":%d,"msg":"record %d"}`+"\n\tat frame %d", seq, seq, seq); rec.Log != want {
				t.Errorf("beta record not joined whole: %q, want %q", rec.Log, want)
			}
			seen[seq]++
		})
		return len(seen) >= total, fmt.Sprintf("%d distinct records read, %d dead letters", len(seen), dlq)
	})
	// Anything committed twice would be visible by now.
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { t.Errorf("late record on %s at %d", r.Topic, r.Offset) })
	cancel()

	final.Terminate(t)
	if len(extraEnv) > 0 && !strings.Contains(killedLogs.String(), "finishing it in the background") {
		t.Error("no tenant was left out of a transaction: the run did not exercise the background path")
	}

	missing, dups := 0, 0
	for n := range total {
		switch c := seen[int64(n)]; {
		case c == 0:
			missing++
			if missing <= 10 {
				t.Errorf("record %d missing from the parsed topics", n)
			}
		case c > 1:
			dups++
			if dups <= 10 {
				t.Errorf("record %d seen %d times", n, c)
			}
		}
	}
	t.Logf("%d records produced, %d seen, %d missing, %d duplicated, %d dead letters", total, len(seen), missing, dups, dlq)
	if dlq != 0 {
		t.Errorf("%d records dead-lettered, want none", dlq)
	}
}
