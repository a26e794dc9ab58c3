package schemas

import (
	"context"
	"testing"
)

// Benchmarks use sampleRecord: a ~300-byte log line with kubernetes
// metadata, three labels, one annotation and four attributes. SetBytes is
// the encoded size, so MB/s compares formats on their own bytes.

func BenchmarkEncode(b *testing.B) {
	r := sampleRecord()
	_, cl := testRegistry(b)
	ctx := context.Background()
	for _, enc := range []Encoder{SingleObjectEncoder{}, NewConfluentEncoder(cl), JSONEncoder{}} {
		b.Run(enc.Format().String(), func(b *testing.B) {
			buf, err := enc.AppendEncode(ctx, nil, testTopic, &r) // registers, for Confluent
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = enc.AppendEncode(ctx, buf[:0], testTopic, &r)
			}
		})
	}
	// What AppendAvro replaces: goavro from a native map built per record.
	b.Run("goavro-reference", func(b *testing.B) {
		codec := currentSchema().codec
		buf, _ := codec.SingleFromNative(nil, toNative(&r))
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = codec.SingleFromNative(buf[:0], toNative(&r))
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	r := sampleRecord()
	_, cl := testRegistry(b)
	ctx := context.Background()
	dec := NewDecoder(WithRegistry(cl))
	for _, enc := range []Encoder{SingleObjectEncoder{}, NewConfluentEncoder(cl), JSONEncoder{}} {
		b.Run(enc.Format().String(), func(b *testing.B) {
			buf, err := enc.AppendEncode(ctx, nil, testTopic, &r)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := dec.Decode(ctx, buf); err != nil { // warms the schema cache
				b.Fatal(err)
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := dec.Decode(ctx, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// What decodeFastBody replaces: the same single-object value through
	// checkAvro, goavro and recordFromNative.
	b.Run("goavro-reference", func(b *testing.B) {
		buf, _ := AppendSingleObject(nil, &r)
		s := currentSchema()
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeGoavroBody(s, buf[singleObjectHeaderLen:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The router's per-record Avro work: decode a single-object value and
	// encode the Record again.
	b.Run("avro-decode-encode", func(b *testing.B) {
		in, _ := AppendSingleObject(nil, &r)
		out := make([]byte, 0, 2*len(in))
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			rec, err := DecodeSingleObject(in)
			if err != nil {
				b.Fatal(err)
			}
			out, _ = AppendSingleObject(out[:0], &rec)
		}
	})
}
