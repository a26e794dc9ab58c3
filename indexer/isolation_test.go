package indexer

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicelogs/sluice/internal/eslite"
	"github.com/sluicelogs/sluice/internal/kafkatest"
	"github.com/sluicelogs/sluice/internal/testwait"
)

// healthyWithin is how soon a healthy tenant's records must all be stored
// while another tenant's index refuses its documents.
const healthyWithin = 5 * time.Second

// TestIndexFailureIsolation: one tenant's index refuses its documents (a
// write block, the flood-stage block, auto-creation refused, closed, a
// failing or missing default pipeline, the shard limit). Beside it, a
// healthy tenant's records are all stored within a few seconds and
// committed; the failing tenant's records are parked, then stored once the
// index takes them again, or dead-lettered with the reason once the
// indexer gives up (at once for a document the pipeline refuses, and for
// later documents failing as the given-up index does). No
// offset is ever committed past a record neither stored nor
// dead-lettered.
func TestIndexFailureIsolation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  eslite.IndexFault
		giveUp string // SLUICE_INDEXER_GIVE_UP; "" to clear the fault instead
		reason string // of the dead letters, when given up
	}{
		{name: "write block, lifted", fault: eslite.WriteBlock},
		{name: "flood stage, given up", fault: eslite.FloodStage, giveUp: "blocked=4s", reason: "blocked"},
		{name: "auto-create refused, given up", fault: eslite.NoAutoCreate, giveUp: "index_missing=4s", reason: "index_missing"},
		{name: "closed, given up", fault: eslite.Closed, giveUp: "index_closed=4s", reason: "index_closed"},
		{name: "pipeline fails", fault: eslite.PipelineFails, giveUp: "-", reason: "pipeline"},
		{name: "pipeline missing, created", fault: eslite.PipelineMissing},
		{name: "shard limit, raised", fault: eslite.ShardLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testCluster(t, "logs.parsed.shop", "logs.parsed.pay", "logs.dlq.shop", "logs.dlq.pay")
			es := eslite.Start(t)
			es.SetIndexFault("sluice-pay-*", tc.fault)
			cl := kafkatest.Client(t, c)
			adm := kadm.NewClient(cl)
			env := map[string]string{}
			if tc.giveUp != "" && tc.giveUp != "-" {
				env["SLUICE_INDEXER_GIVE_UP"] = tc.giveUp
			}
			var s sent
			s.watchCommits(t, adm, es, "sluice-indexer")
			_, reg, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), env))

			// The failing tenant first, in every batch for a while.
			s.produce(t, cl, "logs.parsed.pay", 400, 0, nil)
			if tc.reason != "pipeline" {
				testwait.For(t, 20*time.Second, "pay's documents parked", func() (bool, string) {
					v := metricValue(t, reg, "sluice_indexer_parked_documents", nil)
					return v > 0, fmt.Sprintf("sluice_indexer_parked_documents %v", v)
				})
			}
			start := time.Now()
			s.produce(t, cl, "logs.parsed.shop", 400, 0, nil)
			testwait.For(t, 30*time.Second, "every shop record stored", func() (bool, string) {
				n := storedCount(es, "logs.parsed.shop")
				return n == 400, fmt.Sprintf("%d stored", n)
			})
			took := time.Since(start)
			if took > healthyWithin {
				t.Errorf("the healthy tenant's records took %s to be stored, want within %s", took, healthyWithin)
			}
			t.Logf("the healthy tenant's 400 records stored within %s", took.Round(time.Millisecond))
			waitCommitted(t, 20*time.Second, "shop committed", cl, "sluice-indexer", "logs.parsed.shop")

			if tc.giveUp == "" {
				if committedAll(t, cl, "sluice-indexer", "logs.parsed.pay") {
					t.Fatal("pay committed while its index refused every document")
				}
				es.SetIndexFault("sluice-pay-*", eslite.NoIndexFault)
			}
			waitCommitted(t, 30*time.Second, "pay committed", cl, "sluice-indexer", "logs.parsed.pay")
			wantDead, total := 0, 800
			if tc.reason != "" {
				wantDead = 400
			}
			if tc.giveUp != "" && tc.giveUp != "-" {
				// Given up: documents failing the same way from now on
				// are dead-lettered at once, not parked for another
				// period (4s here).
				start := time.Now()
				s.produce(t, cl, "logs.parsed.pay", 100, 0, nil)
				waitCommitted(t, 30*time.Second, "pay's later records committed", cl, "sluice-indexer", "logs.parsed.pay")
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("records failing as their given-up index does took %s to be dead-lettered: parked again?", took)
				}
				wantDead, total = wantDead+100, total+100
			}
			stop()
			dead := readDeadLetters(t, c, "logs.dlq.shop", "logs.dlq.pay")
			stored, dlq := s.accountFor(t, es, dead)
			if stored != total-wantDead || dlq != wantDead {
				t.Errorf("%d stored, %d dead-lettered; want %d and %d", stored, dlq, total-wantDead, wantDead)
			}
			for p, d := range dead {
				if d.Reason != tc.reason || d.Index == "" || d.Error == "" {
					t.Errorf("dead letter of %s: reason %q, index %q, error %q; want reason %q with the index and error", p, d.Reason, d.Index, d.Error, tc.reason)
					break
				}
			}
			if got := metricValue(t, reg, "sluice_indexer_parked_documents", nil); got != 0 {
				t.Errorf("%v documents still parked", got)
			}
		})
	}
}

// storedCount counts the records of topic Elasticsearch holds (test ids
// are <topic>-<n>).
func storedCount(es *eslite.Store, topic string) int {
	n := 0
	for id := range es.IDs() {
		if rest, ok := strings.CutPrefix(id, topic+"-"); ok {
			if _, err := strconv.Atoi(rest); err == nil {
				n++
			}
		}
	}
	return n
}

// TestDeadLetterIsolation: a tenant whose dead-letter topic is missing
// backs off alone: another tenant's dead letters are written, and its
// records committed, within a few seconds, even with a long retry wait.
func TestDeadLetterIsolation(t *testing.T) {
	c := testCluster(t, "logs.parsed.shop", "logs.parsed.pay", "logs.dlq.pay")
	es := eslite.Start(t)
	cl := kafkatest.Client(t, c)
	var s sent
	_, reg, _ := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), map[string]string{"SLUICE_INDEXER_RETRY_MAX": "20s"}))
	s.produce(t, cl, "logs.parsed.shop", 300, 10, nil) // 30 dead letters with nowhere to go
	testwait.For(t, 30*time.Second, "shop's dead letters refused six times", func() (bool, string) {
		v := metricValue(t, reg, "sluice_indexer_dead_letter_errors_total", map[string]string{"tenant": "shop"})
		return v >= 6*30, fmt.Sprintf("sluice_indexer_dead_letter_errors_total %v", v)
	})
	for round := range 3 {
		start := time.Now()
		s.produce(t, cl, "logs.parsed.pay", 300, 10, nil)
		waitCommitted(t, 30*time.Second, "pay committed", cl, "sluice-indexer", "logs.parsed.pay")
		took := time.Since(start)
		if took > healthyWithin {
			t.Errorf("round %d: pay's records and dead letters took %s, want within %s", round, took, healthyWithin)
		}
		t.Logf("round %d: pay's records and dead letters committed within %s", round, took.Round(time.Millisecond))
	}
	if got := metricValue(t, reg, "sluice_indexer_paused_partitions", map[string]string{"reason": "dead_letters"}); got == 0 {
		t.Error("no partition of shop paused")
	}
	if committedAll(t, cl, "sluice-indexer", "logs.parsed.shop") {
		t.Error("shop committed although its dead letters could not be written")
	}
	if got := metricValue(t, reg, "sluice_indexer_dead_lettered_total", map[string]string{"tenant": "pay", "reason": "decode"}); got != 90 {
		t.Errorf("pay: %v dead letters written, want 90", got)
	}
}

// TestParkingIsBounded: a tenant whose index refuses everything, with far
// more records waiting than the parking may hold: its partitions stop
// being fetched, parked memory stays bounded, the healthy tenant is
// stored meanwhile, and everything is stored once the block is lifted.
func TestParkingIsBounded(t *testing.T) {
	c := testCluster(t, "logs.parsed.shop", "logs.parsed.pay", "logs.dlq.shop", "logs.dlq.pay")
	es := eslite.Start(t)
	es.SetIndexFault("sluice-pay-*", eslite.WriteBlock)
	cl := kafkatest.Client(t, c)
	const parkMax = 256 << 10
	_, reg, stop := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), map[string]string{"SLUICE_INDEXER_PARK_MAX_BYTES": strconv.Itoa(parkMax)}))
	var s sent
	filler := strings.Repeat("x", 2000)
	const payRecords = 6000 // about 12 MB: several times what a fetch brings
	s.produce(t, cl, "logs.parsed.pay", payRecords, 0, func(int) map[string]any { return map[string]any{"filler": filler} })

	received := func() float64 {
		return metricValue(t, reg, "sluice_indexer_records_received_total", map[string]string{"tenant": "pay"})
	}
	testwait.For(t, 20*time.Second, "pay's partitions paused", func() (bool, string) {
		v := metricValue(t, reg, "sluice_indexer_paused_partitions", map[string]string{"reason": "parked"})
		return v == 3, fmt.Sprintf("sluice_indexer_paused_partitions %v", v)
	})
	// Paused: what was fetched before the pause took hold is all that
	// comes in.
	var last float64
	testwait.For(t, 20*time.Second, "pay's consumption to stop", func() (bool, string) {
		prev := last
		time.Sleep(300 * time.Millisecond)
		last = received()
		return last == prev, ""
	})
	if last >= payRecords {
		t.Fatalf("all %v records of pay consumed although its partitions were paused", last)
	}
	// The bound: the parking's, plus what fetches had brought before the
	// partitions paused (a fetch is at most 4 MiB here).
	if got := metricValue(t, reg, "sluice_indexer_parked_bytes", nil); got > parkMax+4<<20 {
		t.Errorf("%v bytes parked, bound %d", got, parkMax+4<<20)
	}

	start := time.Now()
	s.produce(t, cl, "logs.parsed.shop", 300, 0, nil)
	testwait.For(t, 30*time.Second, "every shop record stored", func() (bool, string) {
		n := storedCount(es, "logs.parsed.shop")
		return n == 300, fmt.Sprintf("%d stored", n)
	})
	took := time.Since(start)
	if took > healthyWithin {
		t.Errorf("the healthy tenant's records took %s to be stored, want within %s", took, healthyWithin)
	}
	t.Logf("%v records of pay consumed of %d, %v bytes parked (bound %d); the healthy tenant's 300 records stored within %s",
		last, payRecords, metricValue(t, reg, "sluice_indexer_parked_bytes", nil), parkMax, took.Round(time.Millisecond))

	es.SetIndexFault("sluice-pay-*", eslite.NoIndexFault)
	waitCommitted(t, 60*time.Second, "pay committed", cl, "sluice-indexer", "logs.parsed.pay")
	stop()
	stored, dlq := s.accountFor(t, es, nil)
	if stored != payRecords+300 || dlq != 0 {
		t.Errorf("%d stored, %d dead-lettered", stored, dlq)
	}
	if got := metricValue(t, reg, "sluice_indexer_paused_partitions", map[string]string{"reason": "parked"}); got != 0 {
		t.Errorf("%v partitions still paused", got)
	}
}

// TestRebalanceWithParkedDocuments: a second indexer joins while the first
// holds parked documents of a tenant whose index refuses them and whose
// partitions are paused. The rebalance does not wait for them (it would
// for SLUICE_INDEXER_REVOKE_TIMEOUT), the healthy tenant keeps flowing,
// and once the index takes documents every record is stored: partitions
// that moved are fetched by their new owner, those that stayed were not
// left paused.
func TestRebalanceWithParkedDocuments(t *testing.T) {
	topics := []string{"logs.parsed.shop", "logs.parsed.pay", "logs.dlq.shop", "logs.dlq.pay"}
	c := testCluster(t, topics...)
	es := eslite.Start(t)
	es.SetIndexFault("sluice-pay-*", eslite.WriteBlock)
	cl := kafkatest.Client(t, c)
	adm := kadm.NewClient(cl)
	var s sent
	s.watchCommits(t, adm, es, "sluice-indexer")
	env := map[string]string{"SLUICE_INDEXER_REVOKE_TIMEOUT": "30s", "SLUICE_INDEXER_PARK_MAX_BYTES": "16384"}
	_, regA, _ := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), env))
	s.produce(t, cl, "logs.parsed.pay", 600, 0, nil)
	testwait.For(t, 20*time.Second, "pay's partitions paused", func() (bool, string) {
		v := metricValue(t, regA, "sluice_indexer_paused_partitions", map[string]string{"reason": "parked"})
		return v > 0, fmt.Sprintf("sluice_indexer_paused_partitions %v", v)
	})

	start := time.Now()
	_, regB, _ := runIndexer(t, testConfig(t, c.ListenAddrs(), es.URL(), env))
	s.produce(t, cl, "logs.parsed.shop", 300, 0, nil)
	testwait.For(t, 20*time.Second, "every shop record stored", func() (bool, string) {
		n := storedCount(es, "logs.parsed.shop")
		return n == 300, fmt.Sprintf("%d stored", n)
	})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the healthy tenant's records took %s across the rebalance; the revocation waited for parked documents?", took)
	}
	testwait.For(t, 20*time.Second, "both indexers to own partitions", func() (bool, string) {
		return metricValue(t, regB, "sluice_indexer_records_received_total", map[string]string{"tenant": "pay"})+
			metricValue(t, regB, "sluice_indexer_records_received_total", map[string]string{"tenant": "shop"}) > 0, ""
	})
	es.SetIndexFault("sluice-pay-*", eslite.NoIndexFault)
	s.produce(t, cl, "logs.parsed.pay", 300, 0, nil)
	waitCommitted(t, 60*time.Second, "every offset committed", cl, "sluice-indexer", topics[:2]...)
	stored, dlq := s.accountFor(t, es, nil)
	if stored != s.total || dlq != 0 {
		t.Errorf("%d of %d records stored, %d dead-lettered", stored, s.total, dlq)
	}
}
