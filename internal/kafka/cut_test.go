package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluicelogs/sluice/internal/kafkatest"
)

// testRec is a record to encode; nil key or value is null.
type testRec struct {
	tsDelta int64
	key     []byte
	value   []byte
	headers []kgo.RecordHeader
}

func appendField(b, f []byte) []byte {
	if f == nil {
		return binary.AppendVarint(b, -1)
	}
	return append(binary.AppendVarint(b, int64(len(f))), f...)
}

// appendRecords appends rs as v2 records, their offset deltas 0, 1, ...
func appendRecords(dst []byte, rs ...testRec) []byte {
	for i, r := range rs {
		body := []byte{0}
		body = binary.AppendVarint(body, r.tsDelta)
		body = binary.AppendVarint(body, int64(i))
		body = appendField(body, r.key)
		body = appendField(body, r.value)
		body = binary.AppendVarint(body, int64(len(r.headers)))
		for _, h := range r.headers {
			body = appendField(body, []byte(h.Key))
			body = appendField(body, h.Value)
		}
		dst = binary.AppendVarint(dst, int64(len(body)))
		dst = append(dst, body...)
	}
	return dst
}

// franzRecords parses raw v2 records with franz-go, as the records of an
// uncompressed batch of n records at offset 100.
func franzRecords(t testing.TB, raw []byte, n int) []*kgo.Record {
	t.Helper()
	b := kmsg.RecordBatch{
		FirstOffset:          100,
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       1_700_000_000_000,
		MaxTimestamp:         1_700_000_000_000,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(n),
		Records:              raw,
	}
	enc := b.AppendTo(nil)
	binary.BigEndian.PutUint32(enc[8:], uint32(len(enc)-12))
	binary.BigEndian.PutUint32(enc[17:], crc32.Checksum(enc[21:], crc32.MakeTable(crc32.Castagnoli)))
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.RecordBatches = enc
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: testTopic}, &rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("franz-go parsing %d bytes of records: %v", len(raw), fp.Err)
	}
	if len(fp.Records) != n {
		t.Fatalf("franz-go parsed %d records of %d", len(fp.Records), n)
	}
	return fp.Records
}

func TestCutSize(t *testing.T) {
	for _, tt := range []struct {
		headers []kgo.RecordHeader
		n       int
		ok      bool
	}{
		{nil, 0, false},
		{[]kgo.RecordHeader{{Key: "a", Value: []byte("1")}}, 0, false},
		{[]kgo.RecordHeader{{Key: CutHeader, Value: []byte("314572800")}}, 300 << 20, true},
		{[]kgo.RecordHeader{{Key: CutHeader, Value: []byte("1")}, {Key: CutHeader, Value: []byte("2")}}, 2, true},
		{[]kgo.RecordHeader{{Key: CutHeader, Value: []byte("-1")}}, 0, false},
		{[]kgo.RecordHeader{{Key: CutHeader, Value: []byte("x")}}, 0, false},
	} {
		if n, ok := CutSize(&kgo.Record{Headers: tt.headers}); n != tt.n || ok != tt.ok {
			t.Errorf("CutSize(%v) = %d, %v, want %d, %v", tt.headers, n, ok, tt.n, tt.ok)
		}
	}
}

// The levels go down by quarters from the cut of the first to none, and
// each record's size at the last level is the least of all.
func TestCutLevels(t *testing.T) {
	levels := newCutLevels(DefaultMaxRecord)
	want := []int{64 << 10, 16 << 10, 4 << 10, 1 << 10, 256, 64, 0}
	if len(levels) != len(want) || levels[0].keep != DefaultMaxRecord {
		t.Fatalf("levels %+v", levels)
	}
	for i, l := range levels {
		if l.value != want[i] {
			t.Errorf("level %d cuts values to %d, want %d", i, l.value, want[i])
		}
	}
	last := levels[len(levels)-1]
	for _, r := range []recInfo{
		{enc: 10, fixed: 3, key: -1, value: 4},
		{enc: 70, fixed: 16, key: 20, value: 20, hdrLen: 10, nh: 1},
		{enc: 5 << 20, fixed: 16, key: 1 << 20, value: 4 << 20, hdrLen: 1000, nh: 7},
	} {
		stub := last.size(&r)
		if stub > stubRecord+1 {
			t.Errorf("%+v: %d bytes at the last level", r, stub)
		}
		for i := range levels {
			if s := levels[i].size(&r); s < stub {
				t.Errorf("%+v: level %d gives %d, under the last level's %d", r, i, s, stub)
			}
		}
	}
}

// checkCut checks that got, the records franz-go parses from the output,
// are the records of orig, each whole or cut.
func checkCut(t *testing.T, orig, got []*kgo.Record, maxRecord int) (cut int) {
	t.Helper()
	if len(got) != len(orig) {
		t.Fatalf("%d records, want %d", len(got), len(orig))
	}
	for i, o := range orig {
		g := got[i]
		if g.Offset != o.Offset || !g.Timestamp.Equal(o.Timestamp) || g.Attrs != o.Attrs {
			t.Errorf("record %d: offset %d at %v, want %d at %v", i, g.Offset, g.Timestamp, o.Offset, o.Timestamp)
		}
		n, ok := CutSize(g)
		if !ok {
			if !bytes.Equal(g.Key, o.Key) || !bytes.Equal(g.Value, o.Value) || (g.Key == nil) != (o.Key == nil) ||
				(g.Value == nil) != (o.Value == nil) || fmt.Sprint(g.Headers) != fmt.Sprint(o.Headers) {
				t.Errorf("record %d changed without a cut header", i)
			}
			continue
		}
		cut++
		if n != len(o.Value) {
			t.Errorf("record %d: cut size %d, want %d", i, n, len(o.Value))
		}
		if len(g.Value) > CutBytes || !bytes.HasPrefix(o.Value, g.Value) || (g.Value == nil) != (o.Value == nil) {
			t.Errorf("record %d: cut value of %d bytes is not a prefix of the %d", i, len(g.Value), len(o.Value))
		}
		if len(g.Key) > CutKeyBytes || !bytes.HasPrefix(o.Key, g.Key) || (g.Key == nil) != (o.Key == nil) {
			t.Errorf("record %d: cut key of %d bytes is not a prefix of the %d", i, len(g.Key), len(o.Key))
		}
		if h := g.Headers[:len(g.Headers)-1]; len(h) > 0 && fmt.Sprint(h) != fmt.Sprint(o.Headers) {
			t.Errorf("record %d: cut headers %v, want %v or none", i, h, o.Headers)
		}
		if last := g.Headers[len(g.Headers)-1]; last.Key != CutHeader || string(last.Value) != strconv.Itoa(len(o.Value)) {
			t.Errorf("record %d: last header %v", i, last)
		}
	}
	return cut
}

// mixedRecords is a batch of small records and records past the max
// record size by their value, key or headers, and how many of them are
// past it.
func mixedRecords() ([]testRec, int) {
	// Random, so that the batch compresses little and stays within its
	// ratio bound: only the records past the max record are cut.
	big := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{5}).Read(big)
	hdrs := []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "empty"}}
	return []testRec{
		{tsDelta: 0, key: []byte("k0"), value: []byte("small"), headers: hdrs},
		{tsDelta: 5, value: big, headers: hdrs},            // value past it, small headers kept
		{tsDelta: 7, key: []byte("k2")},                    // null value
		{tsDelta: 9, key: big[:2<<20], value: []byte("v")}, // key past it
		{tsDelta: 11, key: []byte("k4"), value: []byte("v4"), headers: []kgo.RecordHeader{{Key: "huge", Value: big[:(1<<20)+1]}}},
		{tsDelta: 12, value: big[:DefaultMaxRecord-100]}, // just under
		{tsDelta: -3, key: []byte{}, value: []byte{}},
	}, 3
}

// A batch mixing small and huge records: the small ones come out byte for
// byte, the huge ones cut, in every format.
func TestCutMixedBatch(t *testing.T) {
	recs, huge := mixedRecords()
	raw := appendRecords(nil, recs...)
	orig := franzRecords(t, raw, len(recs))
	d := NewBoundedDecompressor(0, 0, 0)
	for _, c := range encodings(t, raw) {
		t.Run(c.name, func(t *testing.T) {
			out, err := d.Decompress(c.src, c.codec)
			if err != nil {
				t.Fatal(err)
			}
			if limit := d.Limit(len(c.src)); len(out) > limit {
				t.Errorf("%d bytes past the limit %d", len(out), limit)
			}
			if n := checkCut(t, orig, franzRecords(t, out, len(recs)), DefaultMaxRecord); n != huge {
				t.Errorf("%d records cut, want %d", n, huge)
			}
			// The first record, small, is there byte for byte.
			first := appendRecords(nil, recs[0])
			if !bytes.HasPrefix(out, first) {
				t.Error("the first record changed")
			}
		})
	}
}

// A batch over its ratio bound is cut further, down to the bound: many huge
// records in a few compressed bytes.
func TestCutToRatioBound(t *testing.T) {
	var recs []testRec
	zeros := make([]byte, 2<<20)
	for i := range 12 {
		recs = append(recs, testRec{tsDelta: int64(i), key: []byte(strconv.Itoa(i)), value: zeros})
	}
	raw := appendRecords(nil, recs...)
	orig := franzRecords(t, raw, len(recs))
	for _, ratio := range []int{64, 4} {
		d := NewBoundedDecompressor(0, ratio, 0)
		for _, c := range encodings(t, raw) {
			t.Run(fmt.Sprintf("%d/%s", ratio, c.name), func(t *testing.T) {
				out, err := d.Decompress(c.src, c.codec)
				if err != nil {
					t.Fatal(err)
				}
				limit := d.Limit(len(c.src))
				if len(out) > limit {
					t.Errorf("%d bytes past the limit %d", len(out), limit)
				}
				got := franzRecords(t, out, len(recs))
				if n := checkCut(t, orig, got, DefaultMaxRecord); n != len(recs) {
					t.Errorf("%d records cut, want all", n)
				}
				t.Logf("%d compressed bytes, limit %d: %d bytes, values cut to %d", len(c.src), limit, len(out), len(got[0].Value))
			})
		}
	}
}

// A batch of tiny records past the bound cannot be cut: it is refused.
func TestCutTinyRecordsRefused(t *testing.T) {
	var recs []testRec
	for range 200_000 {
		recs = append(recs, testRec{value: []byte("x")})
	}
	raw := appendRecords(nil, recs...)
	d := NewBoundedDecompressor(1<<20, 0, 0)
	c := encodings(t, raw)[5] // zstd
	if _, err := d.Decompress(c.src, c.codec); !errors.Is(err, kgo.ErrMaxDecompress) {
		t.Fatalf("%d tiny records, %d bytes in %d: %v, want ErrMaxDecompress", len(recs), len(raw), len(c.src), err)
	}
}

// recordBombs returns, in every format, a small record, a record of a
// 64 MiB value of zeros, and a small record.
func recordBombs(t *testing.T) []compressed {
	raw := appendRecords(nil,
		testRec{value: []byte("before")},
		testRec{key: []byte("bomb"), value: make([]byte, 64<<20)},
		testRec{value: []byte("after")})
	return encodings(t, raw)
}

// Bombs of every codec are cut within their bound, taking little memory
// doing so. A raw snappy block decodes whole, so one past twice the max
// batch is refused.
func TestCutBombs(t *testing.T) {
	d := NewBoundedDecompressor(0, 0, 0)
	for _, b := range recordBombs(t) {
		t.Run(b.name, func(t *testing.T) {
			limit := d.Limit(len(b.src))
			out, err := d.Decompress(b.src, b.codec)
			t.Logf("%d compressed bytes, limit %d: %d bytes out: %v", len(b.src), limit, len(out), err)
			if b.name == "snappy-raw" {
				if !errors.Is(err, kgo.ErrMaxDecompress) {
					t.Fatalf("a 64 MiB snappy block: %v, want ErrMaxDecompress", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(out) > limit {
				t.Errorf("%d bytes past the limit %d", len(out), limit)
			}
			got := franzRecords(t, out, 3)
			if string(got[0].Value) != "before" || string(got[2].Value) != "after" {
				t.Errorf("records around the bomb: %q, %q", got[0].Value, got[2].Value)
			}
			if n, ok := CutSize(got[1]); !ok || n != 64<<20 || string(got[1].Key) != "bomb" {
				t.Errorf("bomb: cut size %d, %v, key %q", n, ok, got[1].Key)
			}
		})
	}
}

// produceBomb produces "before", a batch of one record of a 300 MiB value
// of zeros (zstd, about 30 KB), and "after", returning the bomb's offset.
func produceBomb(t *testing.T, ctx context.Context, addrs []string) int64 {
	t.Helper()
	// Raw produce requests name topics up to Kafka 3.9's version.
	prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(testTopic),
		kgo.MaxVersions(kversion.V3_9_0()), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	bomb := zstdRecordBomb(t, 300<<20)
	t.Logf("300 MiB record compressed to %d bytes", len(bomb))
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = testTopic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = rawBatch(kgo.CodecZstd, bomb)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce bomb: error code %d", code)
	}
	if err := prod.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0].BaseOffset
}

// pollAll polls until it has n records, failing on any fetch error.
func pollAll(t *testing.T, ctx context.Context, poll func(context.Context) kgo.Fetches, n int) []*kgo.Record {
	t.Helper()
	var got []*kgo.Record
	for len(got) < n {
		fs := poll(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records: %v", len(got), ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		got = append(got, fs.Records()...)
	}
	return got
}

func checkBomb(t *testing.T, r *kgo.Record, offset int64) {
	t.Helper()
	if r.Offset != offset {
		t.Errorf("bomb at %d, want %d", r.Offset, offset)
	}
	if n, ok := CutSize(r); !ok || n != 300<<20 {
		t.Errorf("bomb: cut size %d, %v", n, ok)
	}
	if len(r.Value) == 0 || len(r.Value) > CutBytes || !bytes.Equal(r.Value, make([]byte, len(r.Value))) {
		t.Errorf("bomb value of %d bytes, want a prefix of zeros of at most %d", len(r.Value), CutBytes)
	}
}

// A tenant's 300 MiB record, about 30 KB compressed, reaches a transactional
// group consumer cut, between the records around it, with no fetch error and
// little memory; and a consumer of a group whose committed offset is the
// bomb's, as after a restart, reads it and goes on.
func TestBoundedFetchCutsBomb(t *testing.T) {
	cluster := kafkatest.Cluster(t, kafkatest.Topics(1, testTopic))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bombOffset := produceBomb(t, ctx, cluster.ListenAddrs())

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sess, err := kgo.NewGroupTransactSession(append(BoundedFetchOpts(0, 0, 0),
		kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumerGroup("router"), kgo.ConsumeTopics(testTopic),
		kgo.TransactionalID("router-tx"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	got := pollAll(t, ctx, sess.PollFetches, 3)
	sess.Close()
	runtime.ReadMemStats(&after)
	if len(got) != 3 || string(got[0].Value) != "before" || string(got[2].Value) != "after" {
		t.Fatalf("consumed %d records", len(got))
	}
	checkBomb(t, got[1], bombOffset)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	consumed := after.TotalAlloc - before.TotalAlloc
	t.Logf("consuming allocated %d MiB; heap in use after: %d MiB", consumed>>20, ms.HeapInuse>>20)
	if consumed > 64<<20 {
		t.Errorf("consuming the three records allocated %d MiB", consumed>>20)
	}
	if ms.HeapInuse > 128<<20 {
		t.Errorf("heap in use %d MiB after cutting the bomb", ms.HeapInuse>>20)
	}

	// The restart: the group's committed offset is the bomb's.
	var offsets kadm.Offsets
	offsets.Add(kadm.Offset{Topic: testTopic, Partition: 0, At: bombOffset, LeaderEpoch: -1})
	if err := kafkatest.Admin(t, cluster).CommitAllOffsets(ctx, "restarted", offsets); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append(BoundedFetchOpts(0, 0, 0),
		kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.ConsumerGroup("restarted"), kgo.ConsumeTopics(testTopic),
		kgo.FetchMaxWait(100*time.Millisecond),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got = pollAll(t, ctx, cl.PollFetches, 2)
	if len(got) != 2 || string(got[1].Value) != "after" {
		t.Fatalf("after the restart: %d records", len(got))
	}
	checkBomb(t, got[0], bombOffset)
}
