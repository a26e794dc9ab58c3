package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelogs/sluice/internal/kafka"
	"github.com/sluicelogs/sluice/internal/telemetry"
)

// fenceAge is how long a transaction of another router of the group may be
// open before it is taken for abandoned and fenced, and fenceInterval how
// often the router looks. A live router keeps a transaction open for one
// batch: at most SLUICE_ROUTER_BATCH_MAX_TIME of processing (250ms by
// default, at most a tenth of the transaction timeout), then one flush; 15s
// leaves a wide margin for a slow flush. It stays below the transaction
// timeout (SLUICE_ROUTER_TRANSACTION_TIMEOUT, 60s by default) so that an
// abandoned transaction is aborted after at most fenceAge+fenceInterval
// (20s) instead of the full timeout.
const (
	fenceAge      = 15 * time.Second
	fenceInterval = fenceAge / 3
)

// fencer aborts the transactions that routers of this group left open
// when they went away.
//
// Every router's transactional id is <group>-<router id>, and the router id
// defaults to the host name. A router that crashes leaves its transaction
// open; when its replacement has another name (a Deployment's pod) nothing
// re-initialises the crashed router's transactional id, so the open
// transaction holds the last stable offset of every partition it wrote to
// (read_committed consumers, the indexers, see nothing past it) until the
// broker's transaction timeout aborts it.
//
// fenceAbandoned lists the Ongoing transactions, keeps those whose
// transactional id starts with "<group>-" and is not this router's own, and
// describes them. A transaction open for longer than olderThan is taken for
// abandoned, because a live router never keeps one open that long: the
// caller passes a bound well above how long a batch can take (fenceAge).
// The age is the broker's transaction start time against the local clock,
// so clock skew between the router and the brokers counts towards it; the
// bound is seconds, skew under NTP is milliseconds. The bound must stay
// below the transaction timeout, or the broker aborts the transaction
// first and fencing only adds work.
//
// When the broker does not report a start time, a transaction is taken for
// abandoned only when two checks at least olderThan apart saw the same
// transaction Ongoing: the same producer id and epoch, and on each of its
// partitions the same first offset of the open transaction (from
// DescribeProducers). The epoch alone does not tell two transactions apart
// on brokers that keep the epoch across transactions (before Kafka 4.0),
// where a busy live router is Ongoing at almost every check; the first
// offset does, as each transaction starts after the previous one's end.
// A transaction whose partitions cannot be described is left alone.
//
// Fencing initialises a producer with the transactional id, as a router
// restarted under the same name would: a short-lived client loads its
// producer id (InitProducerID), the coordinator aborts the open
// transaction, bumps the epoch and answers once the abort markers are
// written, so the last stable offsets move on; then the client is closed.
// The aborted records are consumed again by whichever router now owns the
// partitions, from the offsets committed before the transaction.
//
// A live router is not fenced, its transaction being younger than the
// bound. Should one be fenced anyway (stuck longer than olderThan, or a
// router restarted under the same name between the check and the fence),
// its next transactional request fails with PRODUCER_FENCED, Run returns
// and the process restarts: its transaction is aborted and consumed again,
// nothing is lost or duplicated.
//
// A transactional id of another router group whose name starts with
// "<group>-" also matches; it is fenced only when abandoned for olderThan
// as well, which aborts a transaction the broker would abort at its
// timeout anyway.
//
// The router's Kafka user needs DESCRIBE on the transactional ids with the
// prefix "<group>-" (to list and describe them; ListTransactions returns
// only those it may describe) and WRITE on them (to initialise a producer):
// what the Helm chart's router user has already, for its own transactional
// id. The fallback also needs READ on the topics the transactions wrote to
// (DescribeProducers); without it, it fences nothing.
type fencer struct {
	adm       *kadm.Client
	base      []kgo.Opt // connection options for the fencing clients
	prefix    string    // "<group>-"
	self      string    // this router's transactional id
	olderThan time.Duration
	log       *slog.Logger
	fenced    prometheus.Counter
	limiter   *telemetry.Limiter

	// describe is adm.DescribeTransactions.
	describe func(context.Context, ...string) (kadm.DescribedTransactions, error)
	// seen holds, for the fallback, transactions without a start time by
	// transactional id: what was seen Ongoing, and since when.
	seen map[string]sighting
}

// sighting is an Ongoing transaction without a start time, as first seen.
type sighting struct {
	id    txnIdentity
	since time.Time
}

// txnIdentity tells one transaction from another: the producer id and
// epoch, and where the transaction starts in each of its partitions.
type txnIdentity struct {
	producerID int64
	epoch      int16
	starts     string // "topic/partition@offset" sorted, comma separated
}

// newFencer prepares the fencing of abandoned transactions of group's
// routers; self is this router's id (its transactional id is
// <group>-<self>). base are the Kafka connection options (the client id
// included) of the short-lived fencing clients. fenced counts fences; it
// may be nil.
func newFencer(adm *kadm.Client, base []kgo.Opt, group, self string, olderThan time.Duration, log *slog.Logger, fenced prometheus.Counter) *fencer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fenced == nil {
		fenced = prometheus.NewCounter(prometheus.CounterOpts{Name: "unused"})
	}
	return &fencer{
		adm:       adm,
		base:      slices.Clip(base),
		prefix:    group + "-",
		self:      group + "-" + self,
		olderThan: olderThan,
		log:       log,
		fenced:    fenced,
		limiter:   telemetry.NewLimiter(5 * time.Minute),
		describe:  adm.DescribeTransactions,
		seen:      map[string]sighting{},
	}
}

// run fences at once, then every interval, until ctx ends. Failures are
// logged (at most every few minutes) and the next round tries again.
func (f *fencer) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		roundCtx, cancel := context.WithTimeout(ctx, max(every, 10*time.Second))
		_, err := f.fenceAbandoned(roundCtx)
		cancel()
		if err != nil && ctx.Err() == nil {
			if suppressed, ok := f.limiter.Allow("fence"); ok {
				f.log.Warn("looking for abandoned transactions failed; they are aborted at the transaction timeout instead",
					"err", err, "suppressed", suppressed)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fenceAbandoned aborts the transactions of routers of this group that are
// gone (see fencer) and returns their transactional ids, sorted. It fences
// what it can and returns the errors of the rest, and of listing, joined.
func (f *fencer) fenceAbandoned(ctx context.Context) (fenced []string, err error) {
	listed, listErr := f.adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	var ids []string
	for id, l := range listed {
		// Brokers before ListTransactions v1 ignore the state filter.
		if l.State == "Ongoing" && strings.HasPrefix(id, f.prefix) && len(id) > len(f.prefix) && id != f.self {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		clear(f.seen)
		return nil, listErr
	}
	slices.Sort(ids)
	described, descErr := f.describe(ctx, ids...)
	errs := []error{listErr, descErr}
	now := time.Now()
	var unknownStart []kadm.DescribedTransaction
	var abandoned []kadm.DescribedTransaction
	for _, id := range ids {
		d, ok := described[id]
		if !ok || d.Err != nil || d.State != "Ongoing" {
			continue
		}
		if d.StartTimestamp < 0 {
			unknownStart = append(unknownStart, d)
			continue
		}
		if now.Sub(time.UnixMilli(d.StartTimestamp)) >= f.olderThan {
			abandoned = append(abandoned, d)
		}
	}
	more, err := f.sightings(ctx, now, unknownStart)
	errs = append(errs, err)
	abandoned = append(abandoned, more...)

	for _, d := range abandoned {
		if err := f.fence(ctx, d.TxnID); err != nil {
			errs = append(errs, fmt.Errorf("fencing transactional id %s: %w", d.TxnID, err))
			continue
		}
		delete(f.seen, d.TxnID)
		fenced = append(fenced, d.TxnID)
		f.fenced.Inc()
		partitions := 0
		d.Topics.Each(func(string, int32) { partitions++ })
		args := []any{"transactional_id", d.TxnID, "producer_id", d.ProducerID, "producer_epoch", d.ProducerEpoch,
			"partitions", partitions}
		if d.StartTimestamp >= 0 {
			args = append(args, "open_for", now.Sub(time.UnixMilli(d.StartTimestamp)).Round(time.Millisecond))
		}
		f.log.Info("aborted the open transaction of a router that is gone by fencing its transactional id", args...)
	}
	slices.Sort(fenced)
	return fenced, errors.Join(errs...)
}

// sightings applies the fallback to the Ongoing transactions without a
// start time: it returns those seen as the same transaction at least
// olderThan ago, and remembers the others from now.
func (f *fencer) sightings(ctx context.Context, now time.Time, ds []kadm.DescribedTransaction) ([]kadm.DescribedTransaction, error) {
	prev := f.seen
	f.seen = map[string]sighting{}
	if len(ds) == 0 {
		return nil, nil
	}
	parts := make(kadm.TopicsSet)
	for _, d := range ds {
		parts.Merge(d.Topics)
	}
	var producers kadm.DescribedProducersTopics
	var err error
	if len(parts) > 0 {
		producers, err = f.adm.DescribeProducers(ctx, parts)
	}
	var old []kadm.DescribedTransaction
	for _, d := range ds {
		id, ok := identify(d, producers)
		if !ok {
			continue // cannot tell this transaction from the next: leave it alone
		}
		s, seen := prev[d.TxnID]
		if !seen || s.id != id {
			s = sighting{id: id, since: now}
		}
		if now.Sub(s.since) >= f.olderThan {
			old = append(old, d)
			continue
		}
		f.seen[d.TxnID] = s
	}
	return old, err
}

// identify returns what tells transaction d from the others of its
// transactional id, if every partition of d is described with d's producer
// in it.
func identify(d kadm.DescribedTransaction, producers kadm.DescribedProducersTopics) (txnIdentity, bool) {
	var starts []string
	for _, tp := range d.Topics.IntoList() {
		for _, p := range tp.Partitions {
			dp, ok := producers[tp.Topic].Partitions[p]
			if !ok || dp.Err != nil {
				return txnIdentity{}, false
			}
			pr, ok := dp.ActiveProducers[d.ProducerID]
			if !ok || pr.ProducerEpoch != d.ProducerEpoch || pr.CurrentTxnStartOffset < 0 {
				return txnIdentity{}, false
			}
			starts = append(starts, fmt.Sprintf("%s/%d@%d", tp.Topic, p, pr.CurrentTxnStartOffset))
		}
	}
	if len(starts) == 0 {
		return txnIdentity{}, false
	}
	slices.Sort(starts)
	return txnIdentity{producerID: d.ProducerID, epoch: d.ProducerEpoch, starts: strings.Join(starts, ",")}, true
}

// fence initialises a producer with the transactional id, which aborts its
// open transaction and bumps its epoch.
func (f *fencer) fence(ctx context.Context, txnID string) error {
	cl, err := kafka.NewClient(append(f.base, kgo.TransactionalID(txnID))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, _, err = cl.ProducerID(ctx)
	return err
}
