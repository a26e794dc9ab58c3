package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/apptest"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/nodelog"
	"github.com/sluicelogs/sluice/internal/testwait"
	"github.com/sluicelogs/sluice/schemas"
)

func TestMain(m *testing.M) {
	runBenchBroker() // exits here when this process is a benchmark's Kafka broker
	os.Exit(apptest.Main(m))
}

// crashSetup builds the binary (before anything is written), starts a
// Kafka with the topics of tenants alpha and beta, and returns its
// brokers, a node tree and the environment of a shipper tailing it with
// fast timers.
func crashSetup(t *testing.T) (brokers []string, node *nodelog.Node, env []string) {
	t.Helper()
	apptest.Binary(t)
	brokers = kafkatest.Cluster(t, kafkatest.Topics(2, "logs.raw.alpha", "logs.raw.beta")).ListenAddrs()
	node = &nodelog.Node{Root: t.TempDir()}
	env = append(shipperEnv(node, brokers, "info"),
		"SLUICE_SHIPPER_RESCAN_INTERVAL=200ms",
		"SLUICE_SHIPPER_POLL_INTERVAL=20ms",
		"SLUICE_SHIPPER_CHECKPOINT_INTERVAL=100ms",
	)
	return brokers, node, env
}

// shipperEnv is the environment of a shipper process tailing node and
// producing to brokers, without a telemetry server.
func shipperEnv(node *nodelog.Node, brokers []string, logLevel string) []string {
	return []string{
		"SLUICE_KAFKA_BROKERS=" + strings.Join(brokers, ","),
		"SLUICE_SHIPPER_PATHS=" + node.ContainersGlob(),
		"SLUICE_SHIPPER_CHECKPOINT_DIR=" + filepath.Join(node.Root, "checkpoints"),
		"SLUICE_NODE_NAME=test-node",
		"SLUICE_TELEMETRY_ADDR=",
		"SLUICE_LOG_LEVEL=" + logLevel,
	}
}

// TestShipperSurvivesKill9 runs the real binary, kills it with SIGKILL at
// random moments while four containers write lines (some split into
// partial lines) and rotate, restarts it each time, and finally checks that
// every line is in Kafka and that every duplicate carries the id of its
// first copy.
func TestShipperSurvivesKill9(t *testing.T) {
	brokers, node, env := crashSetup(t)
	root := node.Root

	var containers []*nodelog.Container
	for i, ns := range []string{"alpha", "alpha", "beta", "beta"} {
		c, err := node.AddContainer(ns, fmt.Sprintf("pod-%d", i), "app", nodelog.CRI)
		if err != nil {
			t.Fatal(err)
		}
		c.SplitAt = 150
		containers = append(containers, c)
	}

	// The first shipper starts on a node it has never seen: it reads the
	// current files from their start, so it must be up before the writers
	// rotate anything.
	first := apptest.Sluice(t, env, "shipper")
	cpFile := filepath.Join(root, "checkpoints", "checkpoints.json")
	testwait.For(t, 10*time.Second, "the first shipper to start (its checkpoints file)", func() (bool, string) {
		_, err := os.Stat(cpFile)
		return err == nil, fmt.Sprint(err)
	})

	// Writers: each container writes numbered messages and rotates every
	// 250 of them, until stopped.
	var stopWriting atomic.Bool
	written := make([]int, len(containers))
	var wg sync.WaitGroup
	for i, c := range containers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for n := 0; !stopWriting.Load(); n++ {
				size := 30 + rng.IntN(120)
				if n%9 == 4 {
					size = 400 // three partial lines
				}
				msg := c.Pod + "#" + strconv.Itoa(n) + " " + strings.Repeat("x", size)
				if err := c.Write(time.Now(), "stdout", msg); err != nil {
					t.Error(err)
					return
				}
				written[i] = n + 1
				if n%250 == 249 {
					if _, err := c.Rotate(); err != nil {
						t.Error(err)
						return
					}
				}
				time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
			}
		})
	}

	rng := rand.New(rand.NewPCG(42, 42))
	const kills = 6
	for k := range kills {
		p := first
		if k > 0 {
			p = apptest.Sluice(t, env, "shipper")
		}
		time.Sleep(time.Duration(300+rng.IntN(900)) * time.Millisecond)
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("kill %d/%d after %d log bytes", k+1, kills, len(p.Output()))
	}
	stopWriting.Store(true)
	wg.Wait()
	total := 0
	for _, n := range written {
		total += n
	}

	final := apptest.Sluice(t, env, "shipper")

	// Read everything back; stop when every line was seen.
	cl := kafkatest.ClientAt(t, brokers, kgo.ConsumeTopics("logs.raw.alpha", "logs.raw.beta"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	dec := schemas.NewDecoder()
	firstID := make(map[string]string) // "pod#n" -> id of the first copy
	records, dups := 0, 0
	testwait.Eventually(t, 60*time.Second, fmt.Sprintf("all %d lines in Kafka", total), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			rec, _, err := dec.Decode(context.Background(), r.Value)
			if err != nil {
				t.Errorf("decode: %v", err)
				return
			}
			records++
			head, _, _ := strings.Cut(rec.Log, " ")
			if id, ok := firstID[head]; ok {
				dups++
				if id != rec.ID {
					t.Errorf("duplicate of %s has id %s, first copy had %s", head, rec.ID, id)
				}
				return
			}
			firstID[head] = rec.ID
		})
		return len(firstID) >= total, fmt.Sprintf("%d distinct lines read", len(firstID))
	})

	final.Terminate(t)

	missing := 0
	for i, c := range containers {
		for n := range written[i] {
			if _, ok := firstID[c.Pod+"#"+strconv.Itoa(n)]; !ok {
				if missing < 20 {
					t.Errorf("%s#%d missing from Kafka", c.Pod, n)
				}
				missing++
			}
		}
	}
	t.Logf("%d lines written, %d records read, %d duplicates (same id), %d missing", total, records, dups, missing)
	if missing > 0 {
		t.Errorf("%d lines missing", missing)
	}
}
