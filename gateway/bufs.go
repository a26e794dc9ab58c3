package gateway

import "sync"

// Request bodies and encoded records are read into, and encoded into,
// pooled buffers: a request of a few hundred kilobytes would otherwise
// allocate (and clear) its buffers anew, which costs more than the
// records' encoding.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// pooledMax is the largest buffer kept for reuse: most requests are far
// smaller, and a buffer grown for a rare large one would stay in the pool.
const pooledMax = 4 << 20

// buf returns an empty buffer of at least n bytes' capacity, given back to
// the pool when the call ends.
func (c *call) buf(n int) *[]byte {
	p := bufPool.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, 0, n)
	}
	*p = (*p)[:0]
	c.bufs = append(c.bufs, p)
	return p
}

// putBufs gives the call's buffers back.
func (c *call) putBufs() {
	for _, p := range c.bufs {
		if cap(*p) <= pooledMax {
			*p = (*p)[:0]
			bufPool.Put(p)
		}
	}
	c.bufs = nil
}
