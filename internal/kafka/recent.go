package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Recent is what a topic received since a moment: how a tenant's
// dead-letter topic is summed up for the tenant's Pipeline status.
type Recent struct {
	// Records is the number of committed records since the moment. It is
	// exact unless Estimated.
	Records int64
	// Estimated says Records counts offsets instead of records, because
	// more than the reading bound arrived: commit markers of transactional
	// producers are counted too, a small excess when transactions carry
	// many records each, as they do when that many arrive.
	Estimated bool
	// Last is the newest committed record of the window (by timestamp), nil
	// when none was read.
	Last *kgo.Record
}

// ErrNoTopic is returned by ReadRecent for a topic that does not exist.
var ErrNoTopic = errors.New("topic does not exist")

// ReadLimit bounds what ReadRecent reads to count: a topic anyone can fill
// with large records (a tenant's dead letters) must not make the reader
// fetch gigabytes.
type ReadLimit struct {
	Records int64 // offsets in the window
	Bytes   int64 // record values read
}

// tailRecords is how many of each partition's last offsets are read for
// the newest record when the window is past the limit: a commit marker
// or two may sit after it.
const tailRecords = 4

// ReadRecent counts the committed records topic received since since, and
// returns the newest. The window is read whole while it holds at most
// limit.Records offsets and limit.Bytes of values; past either, the count
// comes from the offsets alone and only each partition's last few records
// are read, for Last.
//
// The window is found by timestamp (ListOffsets), so it goes by the
// records' timestamps, which producers set when they write. Reading stops
// at the last stable offset: a transaction still open is not counted yet.
// Records are read by a client of its own built from cl's options, with
// read_committed; cl itself is only used for the listings.
func ReadRecent(ctx context.Context, cl *kgo.Client, topic string, since time.Time, limit ReadLimit) (Recent, error) {
	adm := kadm.NewClient(cl)
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return Recent{}, fmt.Errorf("list offsets of %s: %w", topic, err)
	}
	if err := listedErr(ends, topic); err != nil {
		return Recent{}, err
	}
	starts, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err != nil {
		return Recent{}, fmt.Errorf("list offsets of %s at %s: %w", topic, since.Format(time.RFC3339), err)
	}
	if err := listedErr(starts, topic); err != nil {
		return Recent{}, err
	}

	var res Recent
	from := map[int32]kgo.Offset{}
	end := map[int32]int64{}
	for p, e := range ends[topic] {
		s, ok := starts[topic][p]
		if !ok || s.Offset < 0 || s.Offset > e.Offset {
			continue // nothing since, or not committed yet
		}
		if n := e.Offset - s.Offset; n > 0 {
			res.Records += n
			from[p], end[p] = kgo.NewOffset().At(s.Offset), e.Offset
		}
	}
	if len(from) == 0 {
		return Recent{}, nil
	}
	if res.Records <= limit.Records {
		count, last, whole, err := readCommitted(ctx, cl, topic, from, end, limit.Bytes)
		if err != nil {
			return Recent{}, err
		}
		if whole {
			res.Records, res.Last = count, last
			return res, nil
		}
	}
	// Past the limit: the offsets' count, and only the tail of each
	// partition, for the newest record.
	res.Estimated = true
	for p := range from {
		from[p] = kgo.NewOffset().At(max(end[p]-tailRecords, 0))
	}
	_, last, _, err := readCommitted(ctx, cl, topic, from, end, -1)
	if err != nil {
		return Recent{}, err
	}
	res.Last = last
	return res, nil
}

// listedErr returns the error of a topic's offset listing: ErrNoTopic when
// it does not exist.
func listedErr(l kadm.ListedOffsets, topic string) error {
	for _, o := range l[topic] {
		if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("%s: %w", topic, ErrNoTopic)
		}
		if o.Err != nil {
			return fmt.Errorf("list offsets of %s: %w", topic, o.Err)
		}
	}
	return nil
}

// readCommitted reads topic's partitions from the given offsets to their
// ends (last stable offsets) with read_committed, control records kept so
// that a partition whose last offset is a commit marker is seen to end.
// It returns the committed records read and the newest of them; whole is
// false when it stopped because their values passed maxBytes (-1: no
// bound).
func readCommitted(ctx context.Context, cl *kgo.Client, topic string, from map[int32]kgo.Offset, end map[int32]int64, maxBytes int64) (count int64, last *kgo.Record, whole bool, err error) {
	reader, err := NewClient(append(cl.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return 0, nil, false, err
	}
	defer reader.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var read int64
	for len(end) > 0 {
		if maxBytes >= 0 && read > maxBytes {
			return count, last, false, nil
		}
		fetches := reader.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, nil, false, fmt.Errorf("read %s: %w", topic, err)
		}
		var fatal error
		fetches.EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, kerr.TopicAuthorizationFailed) {
				fatal = err
			}
		})
		if fatal != nil {
			return 0, nil, false, fmt.Errorf("read %s: %w", topic, fatal)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			e, ok := end[r.Partition]
			if !ok || r.Offset >= e {
				return
			}
			if !r.Attrs.IsControl() {
				count++
				read += int64(len(r.Value))
				if last == nil || !r.Timestamp.Before(last.Timestamp) {
					last = r
				}
			}
			if r.Offset == e-1 {
				delete(end, r.Partition)
			}
		})
	}
	return count, last, true, nil
}
