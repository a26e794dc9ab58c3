package shipper

import (
	"math/bits"
	"sync"
)

// Buffers for long messages: partial lines being joined, and the encoded
// records of long messages. They are pooled by size class (powers of two
// from 8 KiB to 1 MiB), so that a node writing long lines does not
// allocate a fresh buffer, and grow it by doubling, for every one of them.
// sync.Pool drops what is unused at each garbage collection, so the pools
// hold no memory a quiet node does not need.
const (
	minBufShift = 13 // 8 KiB
	maxBufShift = 20 // 1 MiB
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

// bufClass returns the size class holding n bytes, or -1 above the largest.
func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return 0
	}
	c := bits.Len(uint(n-1)) - minBufShift
	if c >= len(bufPools) {
		return -1
	}
	return c
}

// getBuf returns an empty buffer with room for at least n bytes.
func getBuf(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if b, ok := bufPools[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 1<<(c+minBufShift))
}

// putBuf gives b back for reuse. The caller must not use b afterwards.
func putBuf(b []byte) {
	n := cap(b)
	c := bufClass(n)
	if c < 0 || n != 1<<(c+minBufShift) {
		return // not one of ours
	}
	b = b[:0]
	bufPools[c].Put(&b)
}

// appendPooled is append for a buffer from getBuf: when src does not fit,
// the buffer is replaced by a larger pooled one and the old one given back.
func appendPooled(dst, src []byte) []byte {
	if len(dst)+len(src) <= cap(dst) {
		return append(dst, src...)
	}
	nb := getBuf(max(2*cap(dst), len(dst)+len(src)))
	nb = append(append(nb, dst...), src...)
	putBuf(dst)
	return nb
}
